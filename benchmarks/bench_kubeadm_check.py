"""kubeadm config check benchmark: the cost of getting the release's kubeadm
out of a release-sized tarball, first time and cached.

    python benchmarks/bench_kubeadm_check.py [--mb 400]

Builds a tarball of about MB megabytes of incompressible data with
kubernetes/server/bin/kubeadm as its LAST member (the worst case: the whole
gzip stream is read), then times
  - the first extraction (tasks/steps/kubeadmcheck.py: kubeadm_binary),
  - a second call with the same digest (the cache: should read nothing),
  - the tarball's sha256 when it is not cached yet (what keys the cache;
    `inv build` and `inv upload` usually have it cached already).
Asserts nothing: figures depend on the machine. Needs no network, no root.
"""

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.steps import kubeadmcheck  # noqa: E402
from tasks.model import release


def make(path, megabytes):
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        chunk = 64 << 20
        left, index = megabytes << 20, 0
        while left > 0:
            size = min(chunk, left)
            info = tarfile.TarInfo(f"kubernetes/server/bin/image-{index}.tar")
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
            left, index = left - size, index + 1
        data = b"#!/bin/sh\necho ok\n" + b"\0" * (90 << 20)   # kubeadm is ~70-90 MB
        info = tarfile.TarInfo(kubeadmcheck.KUBEADM_MEMBER)
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "kubernetes-server-linux-amd64.tar.gz"
        make(tarball, args.mb)
        print(f"tarball: {tarball.stat().st_size / 2**20:.0f} MiB, kubeadm last")
        start = time.monotonic()
        sha256 = release.hash_file(tarball, md5=False)["sha256"]
        print(f"sha256 of the tarball (uncached): {time.monotonic() - start:.2f}s")
        start = time.monotonic()
        kubeadmcheck.kubeadm_binary(Path(tmp) / "downloads", tarball, sha256)
        print(f"first extraction: {time.monotonic() - start:.2f}s")
        start = time.monotonic()
        kubeadmcheck.kubeadm_binary(Path(tmp) / "downloads", tarball, sha256)
        print(f"cached: {(time.monotonic() - start) * 1000:.2f}ms")


if __name__ == "__main__":
    main()
