"""
Rehearsal:  python -m tests.testcloud -- CMD [ARGS...]   (as root, repo root)

Enters a loopback-only network namespace, starts the whole test cloud in a
temp dir, runs CMD with the cloud's environment (plus KUBE_ENV_FILE and a
temp HOME), stops the cloud and exits with CMD's status.
TESTCLOUD_KEEP=1 keeps the temp dir and its logs.
"""
import contextlib
import os
import sys

from tests.harness import rehearsal


@contextlib.contextmanager
def open_cloud(tmp):
    from tests.testcloud.cloud import TestCloud   # after unshare, no threads
    with TestCloud.start(os.path.join(tmp, "cloud")) as cloud:
        env = dict(os.environ, **cloud.env())
        env.update(KUBE_ENV_FILE=cloud.env_file)
        yield env, ("ready in %.1fs (Mimic %s, Swift %s, sshd :%d, workdir %s)" % (
            cloud.startup_seconds, cloud.mimic_url, cloud.swift_url,
            cloud.sshd_port, tmp)), cloud.request_counts


if __name__ == "__main__":
    sys.exit(rehearsal.main(sys.argv[1:], name="testcloud", usage=__doc__,
                            keep_var="TESTCLOUD_KEEP", open_bed=open_cloud))
