"""Start-up cost of the command line.

    python benchmarks/bench_cli.py [--runs 7]

`inv --list`, `inv --help up` and shell completion import tasks.py and
every stage module but run no task, so they should cost little more than
invoke itself. Prints the median wall time of each command over --runs
runs and its ratio to `python -c "import invoke.program"`. Goal: `inv
--list` within 1.5x. Asserts nothing: tests/test_cli_speed.py guards the
cause (no client library imported by `import tasks`).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def median_seconds(argv, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    inv = str(BIN / "inv")
    commands = {
        'python -c "import invoke.program"': [sys.executable, "-c", "import invoke.program"],
        "inv --list": [inv, "--list"],
        "inv --help up": [inv, "--help", "up"],
        "inv --complete -- inv do": [inv, "--complete", "--", "inv", "do"],
        'python -c "import tasks" (+ clients, before lazy imports)':
            [sys.executable, "-c", "import tasks, tasks.services.compute, tasks.services.objects, tasks.services.ssh, "
                                   "tasks.model.userdata, tasks.model.pki, tasks.services.session; tasks.services.session.ks_session.Session"],
    }
    base = None
    print(f"median of {args.runs} runs")
    for label, argv in commands.items():
        seconds = median_seconds(argv, args.runs)
        base = base or seconds
        print(f"{label:60s} {seconds * 1000:7.0f} ms  {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
