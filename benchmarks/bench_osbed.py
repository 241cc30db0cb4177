"""OpenStack bed start-up benchmark: `OSBed.start` N times from the database
template, and once without it (a fresh template directory: the start builds
the template first, as after a venv update).

    python benchmarks/bench_osbed.py [--runs 3] [--no-cold]

Prints, per start, the seconds to each phase (bed.timings) and the total
(bed.startup_seconds), with the 1-minute load average before the start:
the machine's other work shows in the figures. Goal (issue 9): well under
60 s on 2 cores. Asserts nothing: figures depend on the machine. Runs
inside a loopback-only network namespace (needs root).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.testcloud.netns import enter_loopback_namespace  # noqa: E402


def start_once(label, work):
    from tests.osbed import OSBed
    load = os.getloadavg()[0]
    bed = OSBed.start(os.path.join(work, label.replace(" ", "-")))
    try:
        phases = ", ".join("%s %.1f" % kv for kv in bed.timings.items())
        print(f"  {label:<12} {bed.startup_seconds:6.1f} s  (load {load:4.1f})"
              f"  {phases}", flush=True)
        return bed.startup_seconds
    finally:
        bed.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts from the template")
    parser.add_argument("--no-cold", action="store_true", help="skip the start without a template")
    args = parser.parse_args()

    enter_loopback_namespace()
    from tests.osbed import available, template
    from tests.osbed.bed import venv_dir
    why = available()
    if why:
        sys.exit("bench_osbed: " + why)
    work = tempfile.mkdtemp(prefix="bench-osbed-")
    try:
        print(f"OpenStack bed start-up ({os.cpu_count()} cores)", flush=True)
        t0 = time.monotonic()
        directory, built = template.ensure(venv_dir())
        print(f"  template {os.path.basename(directory)}: "
              + (f"built in {built:.1f} s" if built else "up to date")
              + f" ({time.monotonic() - t0:.1f} s)", flush=True)
        warm = [start_once(f"template {i + 1}", work) for i in range(args.runs)]
        if warm:
            print(f"  from the template: min {min(warm):.1f} s, "
                  f"max {max(warm):.1f} s (goal: well under 60 s)", flush=True)
        if not args.no_cold:
            # A template directory of its own: the real one stays as it is.
            os.environ["OSBED_TEMPLATE_DIR"] = os.path.join(work, "template")
            start_once("no template", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
