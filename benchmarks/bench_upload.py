"""Upload benchmark against the test cloud's real Swift on loopback.

    python benchmarks/bench_upload.py [--size-mib 512] [--rounds 3] [--profile DIR] [--variant SETTING=VALUE]

Uploads one random file (a stand-in for the server tarball) three ways,
interleaved over --rounds rounds (inv, swift, curl, inv, swift, curl...: the
machine may be shared, and load that comes and goes weighs on all alike):
`inv upload` (fresh: nothing cached, nothing stored), the `swift upload`
command of python-swiftclient (plain, and segmented like ours: 100 MiB
segments, 4 threads), a plain `curl -T` PUT, and `curl -T` with `openssl dgst -sha256`
of the file running beside it (the floor for any client that must hash a
fresh file on the same cores); then an `inv upload` of the unchanged file.
--variant SETTING=VALUE adds a fresh `inv upload` with that setting
(e.g. UPLOAD_CONCURRENCY=2) to the same rounds. Each one's work time is its wall time minus its start-up
(the median of `inv --list`, `swift --help`, `curl --version`, timed in the
same rounds). Prints the medians side by side, the ratios to curl and the
load average. Goals: `inv upload`'s work within 1.1x curl's, ahead of
`swift upload`, the unchanged re-upload under 1 s. --profile DIR records
a fresh `inv upload` of its own with py-spy (pip install py-spy) into
DIR/inv-upload.svg (flame graph) and .txt (collapsed stacks). Asserts nothing: figures depend on the machine. Runs
inside a loopback-only network namespace (needs root).
"""

import argparse
import os
import shutil
import statistics
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


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="record the first fresh inv upload with py-spy into this directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--variant", action="append", default=[], metavar="SETTING=VALUE",
                        help="also time a fresh inv upload with this setting, in the same rounds "
                             "(e.g. UPLOAD_CONCURRENCY=2); repeatable")
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

        token = cloud.token()
        storage = cloud.storage_url
        container = "bench-others"
        auth_file = work / "auth-header"  # keeps the token out of process arguments
        auth_file.write_text(f"X-Auth-Token: {token}\n")
        auth_file.chmod(0o600)
        subprocess.run(["curl", "-sf", "-X", "PUT", "-H", f"@{auth_file}", f"{storage}/{container}"], check=True)
        swift_env = dict(env, OS_AUTH_TOKEN=token, OS_STORAGE_URL=storage)
        swift = str(bindir / "swift")

        # The page cache holds the file for every contender alike.
        subprocess.run(["cat", str(blob)], stdout=subprocess.DEVNULL, check=True)
        times = {name: [] for name in ("inv upload (fresh)", "swift upload", "swift upload -S 100M, 4 threads",
                                       "curl -T", "curl -T + openssl sha256 beside it", "inv upload (unchanged)")}
        for variant in args.variant:
            times[f"inv upload ({variant})"] = []
        startup = {name: [] for name in ("inv", "swift", "curl")}
        if args.profile:   # a run of its own: the profiler slows what it records
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            for fmt, ext in (("flamegraph", "svg"), ("raw", "txt")):
                out = str(Path(args.profile) / f"inv-upload.{ext}")
                shutil.rmtree(work / "cache", ignore_errors=True)
                timed([str(bindir / "py-spy"), "record", "--threads", "--format", fmt, "-o", out, "--"]
                      + inv + ["upload"], dict(env, INSTANCE_PREFIX=f"profile-{ext}"))
                print(f"py-spy profile of a fresh inv upload: {out}")
        load_before = loadavg()
        for round_ in range(args.rounds):
            # Fresh: another object name, and no cached digests.
            inv_env = dict(env, INSTANCE_PREFIX=f"bench{round_}")
            shutil.rmtree(work / "cache", ignore_errors=True)
            startup["inv"].append(timed(inv + ["--list"], inv_env))
            times["inv upload (fresh)"].append(timed(inv + ["upload"], inv_env))
            times["inv upload (unchanged)"].append(timed(inv + ["upload"], inv_env))
            for n, variant in enumerate(args.variant):
                key, _, value = variant.partition("=")
                shutil.rmtree(work / "cache", ignore_errors=True)
                times[f"inv upload ({variant})"].append(
                    timed(inv + ["upload"], dict(inv_env, INSTANCE_PREFIX=f"bench{round_}v{n}", **{key: value})))
            startup["swift"].append(timed([swift, "--help"], swift_env))
            times["swift upload"].append(timed(
                [swift, "upload", "--object-name", f"swift-plain-{round_}", container, str(blob)], swift_env))
            times["swift upload -S 100M, 4 threads"].append(timed(
                [swift, "upload", "--object-name", f"swift-segmented-{round_}", "--segment-size", "100M",
                 "--segment-threads", "4", container, str(blob)], swift_env))
            startup["curl"].append(timed(["curl", "--version"], env))
            times["curl -T"].append(timed(["curl", "-sf", "-o", "/dev/null", "-H", f"@{auth_file}", "-T", str(blob),
                                           f"{storage}/{container}/curl-{round_}"], env))
            # The floor for any client that must hash a fresh file: the
            # hash's CPU taken from the same 2 cores as the transfer. OpenSSL,
            # like Python's hashlib (coreutils' sha256sum is 4x slower here).
            times["curl -T + openssl sha256 beside it"].append(timed(
                ["sh", "-c", 'openssl dgst -sha256 "$1" >/dev/null & curl -sf -o /dev/null -H "@$2" -T "$1" "$3"; wait',
                 "sh", str(blob), str(auth_file), f"{storage}/{container}/curl-hash-{round_}"], env))
        load_after = loadavg()

        def work_time(name):
            tool = name.split()[0]
            return statistics.median(t - s for t, s in zip(times[name], startup[tool]))

        mib = size / 2**20
        curl_work = work_time("curl -T")
        print(f"upload of {mib:.0f} MiB to Swift on loopback ({os.cpu_count()} cores; test cloud started in "
              f"{cloud.startup_seconds:.1f}s); medians of {args.rounds} interleaved rounds; "
              f"load average {load_before} before, {load_after} after")
        print(f"  {'':<34} {'wall':>8} {'start-up':>9} {'work':>8} {'MiB/s':>8} {'work/curl':>10}")
        for name in times:
            tool = name.split()[0]
            wall = statistics.median(times[name])
            work_s = work_time(name)
            print(f"  {name:<34} {wall:7.2f}s {statistics.median(startup[tool]):8.2f}s {work_s:7.2f}s "
                  f"{mib / max(work_s, 1e-3):8.1f} {work_s / curl_work:9.2f}x")
        fresh = work_time("inv upload (fresh)")
        print(f"inv/curl {fresh / curl_work:.2f} (goal <= 1.10); inv/swift {fresh / work_time('swift upload'):.2f} "
              f"(goal < 1); unchanged {statistics.median(times['inv upload (unchanged)']):.2f} s wall (goal < 1 s)")
    finally:
        cloud.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
