"""Scale benchmark: `inv nodes` for 150 nodes under a compute POST rate
limit, against the test cloud, for each of its limiter models.

    sudo .venv/bin/python benchmarks/bench_scale.py [--limit 100] [--window 60] [--duration 5] [--nodes 150]
                                                    [--models leaky fixed sliding]

The test cloud enforces a limit of L POSTs per W seconds (413 +
Retry-After beyond it; /limits shows the rate section) by one of three
models: Nova's leaky bucket, a fixed window, a sliding window (see
tests/testcloud/mimic_ext.py), and holds every node in BUILD for D seconds
(Mimic's `build` behavior); it pages at Nova's default of 1000 a page. The
master, network, keypair and upload are made beforehand. For each model and
node count N it prints: the 413 answers, the wall time of `inv nodes` (its
start-up included), the floor that the strictest model (a sliding window)
allows, (ceil(N/L) - 1) x W + D: L at once, the next L one window later...,
wall/floor, the compute requests other than the creates (the polls, which
should not grow with N), and the load average beside each run (the machine
is shared). Goals at 150 nodes: zero 413s and wall/floor <= 1.1 under every
model. Asserts nothing: figures depend on the machine. Needs root (a
loopback-only network namespace).
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.testcloud.netns import enter_loopback_namespace  # noqa: E402


def run(argv, env):
    start = time.monotonic()
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv[2:])} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return elapsed, result.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100, help="L: POSTs allowed per window")
    parser.add_argument("--window", type=float, default=60.0, help="W: the window, seconds (1 or 60)")
    parser.add_argument("--duration", type=float, default=5.0, help="D: seconds each node stays in BUILD")
    parser.add_argument("--nodes", type=int, nargs="+", default=[150])
    parser.add_argument("--models", nargs="+", default=["leaky", "fixed", "sliding"])
    args = parser.parse_args()

    enter_loopback_namespace()
    from tests.testcloud.cloud import TestCloud  # after entering: it starts threads

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    cloud = TestCloud.start(str(work / "cloud"))
    inv = [sys.executable, "-m", "invoke"]
    rows = []
    try:
        cloud.set_compute_limits(page_size=1000, post_limit=0)
        for model in args.models:
            for count in args.nodes:
                prefix = f"scale{count}{model[0]}"
                env = dict(os.environ, **cloud.env(), HOME=str(work / "home"), INSTANCE_PREFIX=prefix,
                           NUM_NODES=str(count), KUBE_DOWNLOAD_DIR=str(work / "cache"),
                           KUBE_STATE_DIR=str(work / "state"), BOOT_TIMEOUT=str(int(args.duration * 10 + 600)),
                           NOVA_NETWORK="192.168.0.0/22")
                run(inv + ["build", "--release"], env)
                run(inv + ["network", "keypair", "upload", "master"], env)
                behavior = cloud.inject_nova_behavior("build", {"duration": args.duration},
                                                      server_name=f"^{prefix}-node-")
                try:
                    cloud.set_compute_limits(post_limit=args.limit, window=args.window, model=model)
                    cloud.reset_request_counts()
                    load = loadavg()
                    elapsed, log = run(inv + ["nodes"], env)
                    load = f"{load}-{loadavg()}"
                    compute = cloud.compute_request_count()
                    limits = cloud.compute_limits()
                finally:
                    cloud.set_compute_limits(post_limit=0)
                    cloud.remove_nova_behavior(behavior)
                floor = (math.ceil(count / args.limit) - 1) * args.window + args.duration
                pacing = sum(1 for line in log.splitlines() if line.startswith("pacing:"))
                rows.append((model, count, limits["over_limit"], elapsed, floor, compute - limits["posts"],
                             pacing, load))
                print(rows[-1], flush=True)
                run(inv + ["down", "--yes"], env)
    finally:
        cloud.stop()

    print(f"L = {args.limit} POSTs per W = {args.window:g} s, D = {args.duration:g} s in BUILD, pages of 1000; "
          f"floor = (ceil(N/L) - 1) x W + D, the strictest model's (sliding window)")
    print(f"{'model':>7}  {'nodes':>5}  {'413s':>4}  {'wall s':>7}  {'floor s':>7}  {'wall/floor':>10}  "
          f"{'compute requests but creates':>28}  {'pacing lines':>12}  {'load (1 min)':>12}")
    for model, count, over, elapsed, floor, other, pacing, load in rows:
        print(f"{model:>7}  {count:>5}  {over:>4}  {elapsed:>7.1f}  {floor:>7.1f}  {elapsed / floor:>10.2f}  "
              f"{other:>28}  {pacing:>12}  {load:>12}")
    print("goals: zero 413s and wall/floor <= 1.1 at 150 nodes under every model; "
          "'compute requests but creates' no higher for more nodes")


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


if __name__ == "__main__":
    main()
