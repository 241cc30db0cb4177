"""Running the real `inv` command line from a test."""
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_inv(args, env, check=True, timeout=600):
    """Run the real `inv` command line from the repo root, with no stdin
    (a question such as down's confirmation must never wait on the
    terminal that runs pytest -s). Returns the CompletedProcess (text,
    stdout+stderr); check=True raises with the output when it fails."""
    proc = subprocess.run([sys.executable, "-m", "invoke", *args],
                          cwd=REPO_ROOT, env=env, text=True,
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("inv %s exited %d:\n%s"
                             % (" ".join(args), proc.returncode, proc.stdout))
    return proc
