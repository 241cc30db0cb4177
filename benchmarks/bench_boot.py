"""Boot benchmark: `inv master nodes` against the test cloud, with Mimic's
`build` behavior holding every server in BUILD for D seconds.

    python benchmarks/bench_boot.py [--duration 20] [--nodes 2 20]

For each node count: wall time of `inv master nodes` divided by D, and the
compute API requests it made (all of them, and all but the creates: the
requests that scale with waiting, which should not grow with the cluster).
Network, keypair and upload are done beforehand, so the figure is the
servers' part. Goals: 20 nodes in under 1.3 D, and no more requests while
waiting for 20 nodes than for 2. Asserts nothing: figures depend on the
machine. Runs inside a loopback-only network namespace (needs root).
"""

import argparse
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
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="D: seconds each server stays in BUILD")
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 20])
    args = parser.parse_args()

    enter_loopback_namespace()
    from tests.testcloud.cloud import TestCloud  # after entering: it starts threads

    work = Path(tempfile.mkdtemp(prefix="bench-boot-"))
    cloud = TestCloud.start(str(work / "cloud"))
    inv = [sys.executable, "-m", "invoke"]
    rows = []
    try:
        for count in args.nodes:
            prefix = f"bench{count}"
            env = dict(os.environ, **cloud.env(), HOME=str(work / "home"), INSTANCE_PREFIX=prefix,
                       NUM_NODES=str(count), KUBE_IMAGE="CoreOS (Stable)", KUBE_DOWNLOAD_DIR=str(work / "cache"),
                       KUBE_STATE_DIR=str(work / "state"), BOOT_TIMEOUT=str(int(args.duration * 5)))
            run(inv + ["build", "--release"], env)
            run(inv + ["network", "keypair", "upload"], env)
            behavior = cloud.inject_nova_behavior("build", {"duration": args.duration}, server_name=f"^{prefix}-")
            try:
                cloud.reset_request_counts()
                elapsed = run(inv + ["master", "nodes"], env)
                compute = cloud.compute_request_count()
            finally:
                cloud.remove_nova_behavior(behavior)
            rows.append((count, elapsed, compute, compute - (count + 1)))
    finally:
        cloud.stop()

    print(f"D = {args.duration:.0f} s (every server in BUILD for D), CREATE_CONCURRENCY default")
    print(f"{'nodes':>5}  {'wall s':>7}  {'wall/D':>6}  {'compute requests':>16}  {'of which not creates':>20}")
    for count, elapsed, compute, other in rows:
        print(f"{count:>5}  {elapsed:>7.1f}  {elapsed / args.duration:>6.2f}  {compute:>16}  {other:>20}")
    print("goals: wall/D < 1.3 for 20 nodes; 'not creates' no higher for 20 nodes than for 2")


if __name__ == "__main__":
    main()
