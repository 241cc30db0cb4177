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
import contextlib
import os
import sys

from tests.harness import rehearsal

VERSION = "v1.31.4"      # the release the mirror serves, as tests.testcloud's


@contextlib.contextmanager
def open_bed(tmp):
    from tests.osbed import OSBed, available   # after unshare, no threads
    from tests.testcloud.release_mirror import FlatcarMirror, ReleaseMirror
    why = available()
    if why:
        raise rehearsal.Unavailable(why)
    with OSBed.start(os.path.join(tmp, "bed")) as bed:
        mirror = ReleaseMirror(os.path.join(tmp, "mirror"), VERSION)
        try:
            flatcar = FlatcarMirror(mirror.root, mirror.base_url)
            env = dict(os.environ, **bed.env())
            env.pop("KUBE_IMAGE", None)
            env.update(flatcar.env(), KUBE_RELEASE_URL=mirror.base_url, KUBE_VERSION=VERSION)
            yield env, "ready in %.1fs (%s; identity %s, workdir %s)" % (
                bed.startup_seconds, ", ".join("%s %ss" % kv for kv in bed.timings.items()),
                bed.auth_url, tmp), bed.request_counts
        finally:
            mirror.stop()


if __name__ == "__main__":
    sys.exit(rehearsal.main(sys.argv[1:], name="osbed", usage=__doc__,
                            keep_var="OSBED_KEEP", open_bed=open_bed))
