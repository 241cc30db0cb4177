"""One cluster, one writer: the lock in the cluster's state directory, seen
through the real `inv` command line while another process holds it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tasks.steps import lock
from tasks.model import settings
from tests.harness import run_inv
from tests.testcloud.util import REPO_ROOT

# Holds the lock until its stdin closes.
HOLD = """
import sys
from tasks.model import settings
from tasks.steps import lock
with lock.held(settings.load(), "up"):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(cloud_env):
    procs = []

    def start():
        proc = subprocess.Popen([sys.executable, "-c", HOLD], cwd=REPO_ROOT, env=cloud_env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_writer_stops_with_one_line_naming_the_holder(cloud_env, holder):
    proc = holder()
    result = run_inv(["network"], dict(cloud_env, LOCK_WAIT="0"), check=False)
    assert result.returncode == 1
    prefix = cloud_env["INSTANCE_PREFIX"]
    assert result.stdout.startswith(f"error: cluster {prefix} is being changed by `inv up` (PID {proc.pid}, started ")
    assert result.stdout.count("\n") == 1, result.stdout


def test_a_second_writer_waits_with_a_progress_line(cloud_env, holder):
    proc = holder()
    waiter = subprocess.Popen([sys.executable, "-m", "invoke", "network"], cwd=REPO_ROOT,
                              env=dict(cloud_env, LOCK_WAIT="60"), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = waiter.stdout.readline()
    proc.stdin.close()        # the holder finishes
    rest = waiter.stdout.read()
    assert waiter.wait() == 0, first + rest
    result = subprocess.CompletedProcess([], 0, first + rest)
    assert f"waiting for cluster {cloud_env['INSTANCE_PREFIX']}'s lock: held by `inv up` (PID {proc.pid}" \
        in result.stdout
    assert proc.wait() == 0
    run_inv(["down", "--yes"], cloud_env)


def test_a_writer_gives_up_after_lock_wait(cloud_env, holder):
    holder()
    start = time.monotonic()
    result = run_inv(["upload"], dict(cloud_env, LOCK_WAIT="2"), check=False)
    assert result.returncode == 1 and time.monotonic() - start < 30
    assert "is still being changed by `inv up` (PID " in result.stdout.splitlines()[-1]
    assert "after LOCK_WAIT=2s" in result.stdout


def test_a_stale_lock_of_a_dead_process_is_taken_over(cloud_env, holder):
    proc = holder()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = run_inv(["network"], dict(cloud_env, LOCK_WAIT="0"))
    assert f"taking over the lock of cluster {cloud_env['INSTANCE_PREFIX']} left by `inv up` (PID {proc.pid}" \
        in result.stdout
    run_inv(["down", "--yes"], cloud_env)


def test_read_only_tasks_need_no_lock(cloud_env, holder):
    holder()
    for args in (["status"], ["config"]):
        result = run_inv(args, dict(cloud_env, LOCK_WAIT="0"), check=False)
        assert result.returncode == 0, result.stdout


def test_the_lock_is_reentrant_and_leaves_no_record(tmp_path):
    s = settings.load(environ={"KUBE_STATE_DIR": str(tmp_path), "INSTANCE_PREFIX": "c1"})
    with lock.held(s, "up"):
        with lock.held(s, "nodes"):      # `up` runs the stages' code: no waiting for itself
            pass
        record = (tmp_path / "c1" / "lock").read_text()
        assert f'"pid": {os.getpid()}' in record and '"command": "up"' in record
    assert (tmp_path / "c1" / "lock").read_text() == ""
    assert lock.describe({"pid": 7, "started": 0, "command": "down"}) == \
        "`inv down` (PID 7, started 1970-01-01 00:00:00 UTC)"
