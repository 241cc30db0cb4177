"""
Rehearsal:  python -m tests.osbed -- CMD [ARGS...]   (as root, repo root)

Enters a loopback-only network namespace, starts the OpenStack bed in a
temp dir with a release mirror that serves Kubernetes (`inv build
--release`) and a signed Flatcar channel (`inv image`), runs CMD with the
bed's environment (OS_CLOUD, clouds.yaml, SSH_CONFIG, KUBE_RELEASE_URL,
KUBE_VERSION, FLATCAR_*, and a temp HOME), stops the bed
and exits with CMD's status. KUBE_IMAGE is left to its default, as for a
user: the image `inv image` uploaded, else the bed's own Flatcar-like one.  OSBED_KEEP=1 keeps the
temp dir and its logs.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from tests.testcloud.netns import enter_loopback_namespace

VERSION = "v1.31.4"      # the release the mirror serves, as tests.testcloud's


def main(argv):
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    enter_loopback_namespace()
    from tests.osbed import OSBed, available   # after unshare, no threads
    from tests.testcloud.release_mirror import FlatcarMirror, ReleaseMirror
    why = available()
    if why:
        sys.stderr.write("osbed: %s\n" % why)
        return 2
    tmp = tempfile.mkdtemp(prefix="osbed-")
    keep = os.environ.get("OSBED_KEEP") == "1"
    mirror = None
    try:
        with OSBed.start(os.path.join(tmp, "bed")) as bed:
            mirror = ReleaseMirror(os.path.join(tmp, "mirror"), VERSION)
            flatcar = FlatcarMirror(mirror.root, mirror.base_url)
            home = os.path.join(tmp, "home")
            os.makedirs(home)
            env = dict(os.environ, **bed.env())
            env.pop("KUBE_IMAGE", None)
            env.update(flatcar.env(), HOME=home,
                       KUBE_RELEASE_URL=mirror.base_url, KUBE_VERSION=VERSION)
            print("osbed: ready in %.1fs (%s; identity %s, workdir %s)" % (
                bed.startup_seconds, ", ".join(
                    "%s %ss" % kv for kv in bed.timings.items()),
                bed.auth_url, tmp), flush=True)
            try:
                rc = subprocess.call(argv, env=env)
            except FileNotFoundError as e:
                sys.stderr.write("osbed: %s\n" % e)
                rc = 127
            print("osbed: requests served: %s" % ", ".join(
                "%s=%d" % kv for kv in sorted(bed.request_counts().items())),
                flush=True)
            return rc
    finally:
        if mirror is not None:
            mirror.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
