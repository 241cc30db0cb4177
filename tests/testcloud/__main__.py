"""
Rehearsal:  python -m tests.testcloud -- CMD [ARGS...]   (as root, repo root)

Enters a loopback-only network namespace, starts the whole test cloud in a
temp dir, runs CMD with the cloud's environment (plus KUBE_ENV_FILE and a
temp HOME), stops the cloud and exits with CMD's status.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from tests.testcloud.netns import enter_loopback_namespace


def main(argv):
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    enter_loopback_namespace()
    from tests.testcloud.cloud import TestCloud   # after unshare, no threads
    tmp = tempfile.mkdtemp(prefix="testcloud-")
    keep = os.environ.get("TESTCLOUD_KEEP") == "1"
    try:
        with TestCloud.start(os.path.join(tmp, "cloud")) as cloud:
            home = os.path.join(tmp, "home")
            os.makedirs(home)
            env = dict(os.environ, **cloud.env())
            env.update(KUBE_ENV_FILE=cloud.env_file, HOME=home)
            print("testcloud: ready in %.1fs (Mimic %s, Swift %s, sshd :%d, "
                  "workdir %s)" % (cloud.startup_seconds, cloud.mimic_url,
                                   cloud.swift_url, cloud.sshd_port, tmp),
                  flush=True)
            try:
                rc = subprocess.call(argv, env=env)
            except FileNotFoundError as e:
                sys.stderr.write("testcloud: %s\n" % e)
                rc = 127
            counts = cloud.request_counts()
            print("testcloud: requests served: %s" % ", ".join(
                "%s=%d" % kv for kv in sorted(counts.items())), flush=True)
            return rc
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
