"""Upload benchmark against the test cloud's real Swift on loopback.

    python benchmarks/bench_upload.py [--size-mib 512]

Uploads one random file (a stand-in for the server tarball) three ways in
one run: `inv upload` (fresh: nothing cached, nothing stored), the `swift
upload` command of python-swiftclient, and a plain `curl -T` PUT; then a
second `inv upload` of the unchanged file. Prints each time and the ratios.
Goals: `inv upload` within 1.1x curl, ahead of `swift upload`, and the
unchanged re-upload under 1 s. Asserts nothing: figures depend on the
machine. Runs inside a loopback-only network namespace (needs root).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.testcloud.netns import enter_loopback_namespace  # noqa: E402

TARBALL = "kubernetes-server-linux-amd64.tar.gz"


def timed(argv, env, cwd=REPO):
    start = time.monotonic()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} failed ({result.returncode}):\n"
                 f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    enter_loopback_namespace()
    from tests.testcloud.cloud import TestCloud  # after entering: it starts threads

    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    cloud = TestCloud.start(str(work / "cloud"))
    try:
        root = work / "kubernetes"
        (root / "server").mkdir(parents=True)
        blob = root / "server" / TARBALL
        with open(blob, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        size = blob.stat().st_size
        bindir = Path(sys.executable).parent
        env = dict(os.environ, **cloud.env(), HOME=str(work / "home"), KUBE_ROOT=str(root),
                   INSTANCE_PREFIX="bench", KUBE_DOWNLOAD_DIR=str(work / "cache"),
                   KUBE_STATE_DIR=str(work / "state"))
        inv = [sys.executable, "-m", "invoke"]

        # The page cache holds the file for every contender alike.
        subprocess.run(["cat", str(blob)], stdout=subprocess.DEVNULL, check=True)
        t_inv = timed(inv + ["upload"], env)
        t_again = timed(inv + ["upload"], env)

        token = cloud.token()
        storage = cloud.storage_url
        container = "bench-others"
        auth_file = work / "auth-header"  # keeps the token out of process arguments
        auth_file.write_text(f"X-Auth-Token: {token}\n")
        auth_file.chmod(0o600)
        subprocess.run(["curl", "-sf", "-X", "PUT", "-H", f"@{auth_file}", f"{storage}/{container}"], check=True)
        swift_env = dict(env, OS_AUTH_TOKEN=token, OS_STORAGE_URL=storage)
        swift_cmd = [str(bindir / "swift"), "upload", "--object-name", "swift-plain", container, str(blob)]
        t_swift = timed(swift_cmd, swift_env)
        t_swift_seg = timed([str(bindir / "swift"), "upload", "--object-name", "swift-segmented",
                             "--segment-size", "100M", "--segment-threads", "4", container, str(blob)], swift_env)
        t_curl = timed(["curl", "-sf", "-o", "/dev/null", "-H", f"@{auth_file}", "-T", str(blob),
                        f"{storage}/{container}/curl"], env)

        mib = size / 2**20
        print(f"upload of {mib:.0f} MiB to Swift on loopback ({os.cpu_count()} cores; "
              f"test cloud started in {cloud.startup_seconds:.1f}s)")
        rows = [("inv upload (fresh)", t_inv), ("swift upload", t_swift),
                ("swift upload -S 100M, 4 threads", t_swift_seg), ("curl -T", t_curl)]
        for name, t in rows:
            print(f"  {name:<34} {t:7.2f} s  {mib / t:7.1f} MiB/s  {t / t_curl:5.2f}x curl")
        print(f"  {'inv upload (unchanged)':<34} {t_again:7.2f} s")
        print(f"inv/curl {t_inv / t_curl:.2f} (goal <= 1.10); inv/swift {t_inv / t_swift:.2f} (goal < 1); "
              f"unchanged {t_again:.2f} s (goal < 1 s)")
    finally:
        cloud.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
