"""The rehearsal wrapper behind `python -m tests.testcloud -- CMD` and
`python -m tests.osbed -- CMD`: enter a loopback-only network namespace,
start the bed in a temp dir, run CMD with the bed's environment and a temp
HOME, print the requests served, stop the bed and exit with CMD's status."""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile


class Unavailable(Exception):
    """The bed cannot start on this machine (one line: what to install)."""


def main(argv, *, name, usage, keep_var, open_bed):
    """open_bed(tmp) is a context manager (entered after unshare, with no
    threads yet) that starts the bed and yields (env, ready_line,
    request_counts): the environment CMD runs with, less HOME; the line
    printed once the bed is up; a callable giving {service: requests}."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write(usage)
        return 2
    from tests.testcloud.netns import enter_loopback_namespace
    # Always a namespace of its own, even when started from one already
    # (the test session's): a bed's sshd takes port 22 there and its fixed
    # IP ranges are routed to lo, so a second bed in the same namespace
    # sends jump-host forwards to the first bed's sshd, which knows none of
    # the second bed's servers (`inv up` waits out BOOT_TIMEOUT).
    enter_loopback_namespace(new=True)
    tmp = tempfile.mkdtemp(prefix=name + "-")
    keep = os.environ.get(keep_var) == "1"
    try:
        with contextlib.ExitStack() as stack:
            try:
                env, ready, request_counts = stack.enter_context(open_bed(tmp))
            except Unavailable as e:
                sys.stderr.write("%s: %s\n" % (name, e))
                return 2
            home = os.path.join(tmp, "home")
            os.makedirs(home)
            env = dict(env, HOME=home)
            print("%s: %s" % (name, ready), flush=True)
            try:
                rc = subprocess.call(argv, env=env)
            except FileNotFoundError as e:
                sys.stderr.write("%s: %s\n" % (name, e))
                rc = 127
            print("%s: requests served: %s" % (name, ", ".join(
                "%s=%d" % kv for kv in sorted(request_counts().items()))),
                flush=True)
            return rc
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
