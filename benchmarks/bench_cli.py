"""Start-up cost of the command line.

    python benchmarks/bench_cli.py [--runs 9]

`inv --list`, `inv --help up` and shell completion import tasks.py and
every stage module but run no task, so they should cost little more than
invoke itself. The commands run interleaved (A, B, C, ..., A, B, C, ...:
the machine may be shared, and a load that comes and goes then weighs on
all alike); prints each one's median wall time over --runs rounds, its ratio
to `python -c "import invoke.program"` (the median of the per-round
ratios) and the load average before and after. Goal: `inv --list` within
1.5x. Asserts nothing: tests/test_cli_speed.py guards the cause (what
`import tasks` may load).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def seconds(argv):
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    inv = str(BIN / "inv")
    commands = {
        'python -c "import invoke.program"': [sys.executable, "-c", "import invoke.program"],
        "inv --list": [inv, "--list"],
        "inv --help up": [inv, "--help", "up"],
        "inv --complete -- inv do": [inv, "--complete", "--", "inv", "do"],
        'python -c "import invoke.program, tasks"': [sys.executable, "-c", "import invoke.program, tasks"],
        'python -c "import tasks" (+ clients, before lazy imports)':
            [sys.executable, "-c", "import tasks, tasks.services.compute, tasks.services.objects, tasks.services.ssh, "
                                   "tasks.model.userdata, tasks.model.pki, tasks.services.session; tasks.services.session.ks_session.Session"],
    }
    for argv in commands.values():   # warm the page cache and the .pyc files
        seconds(argv)
    before = loadavg()
    times = {label: [] for label in commands}
    for _ in range(args.runs):
        for label, argv in commands.items():
            times[label].append(seconds(argv))
    after = loadavg()
    base = next(iter(commands))
    print(f"{args.runs} interleaved rounds, medians; load average {before} before, {after} after "
          f"({len(Path('/proc/cpuinfo').read_text().split('processor')) - 1} cores)")
    for label, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, times[base]))
        print(f"{label:60s} {statistics.median(values) * 1000:7.0f} ms  {ratio:5.2f}x")


if __name__ == "__main__":
    main()
