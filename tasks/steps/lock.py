"""One cluster, one writer: a lock in the cluster's state directory.

Tasks that change the cluster (up, down, upload, network, keypair, master,
nodes, kubeconfig) hold it for their run; read-only ones (status, plan,
config, ssh) do not. The lock is an flock(2) on STATE/lock, so the kernel
lets go of it when its process dies however it dies; the file also records
who holds it (PID, start time, command) for the line the next command shows.
A record left by a process that is gone is a stale lock: it is taken over,
and said so.

A second writer waits up to LOCK_WAIT seconds with a progress line, then
stops with one line naming the holder; LOCK_WAIT=0 stops at once.
"""

import contextlib
import functools
import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone

from ..model import names
from ..support import progress
from ..support.errors import UserError

_held = {}   # path -> depth: a task that runs another's code does not wait for itself


def describe(record):
    """`inv up` (PID 123 on host, started 2026-11-28 15:02:11 UTC), from a lock record."""
    started = datetime.fromtimestamp(record.get("started", 0), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    host = record.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"`inv {record.get('command', '?')}` (PID {record.get('pid', '?')}{where}, started {started})"


def alive(record):
    """False when the record names a process of this host that is gone."""
    if record.get("host") not in (None, socket.gethostname()):
        return True   # cannot tell; the flock decides anyway
    try:
        os.kill(int(record.get("pid", 0)), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _read(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 4096)
    try:
        record = json.loads(data) if data.strip() else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _try(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def held(s, command, wait=None, sleep=time.sleep):
    """Hold the cluster's lock for the block; `command` names the task in
    the record. Waits up to `wait` seconds (LOCK_WAIT) for another holder."""
    directory = names.state_dir(s)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = str(directory / "lock")
    if _held.get(path):
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    wait = s.LOCK_WAIT if wait is None else wait
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try(fd):
            holder = _read(fd) or {}
            if wait <= 0:
                raise UserError(f"cluster {s.INSTANCE_PREFIX} is being changed by {describe(holder)}; "
                                f"wait for it to finish (or set LOCK_WAIT to wait), lock {path}")
            with progress.waiting(f"cluster {s.INSTANCE_PREFIX}'s lock", wait) as waiting:
                waiting.update(f"held by {describe(holder)}")
                while not _try(fd):
                    if waiting.expired:
                        raise UserError(f"cluster {s.INSTANCE_PREFIX} is still being changed by "
                                        f"{describe(_read(fd) or holder)} after LOCK_WAIT={wait}s; "
                                        f"wait for it to finish, or raise LOCK_WAIT (lock {path})")
                    sleep(0.2)
                waiting.update("ours")
        previous = _read(fd)
        if previous and previous.get("pid") != os.getpid() and not alive(previous):
            progress.info(f"taking over the lock of cluster {s.INSTANCE_PREFIX} left by {describe(previous)}, "
                          "which is no longer running")
        record = {"pid": os.getpid(), "started": time.time(), "command": command, "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(fd, 0)   # a clean exit leaves no record to take over
    finally:
        os.close(fd)   # closing releases the flock


def writer(fn):
    """For a task that changes the cluster: hold the cluster's lock while it
    runs (under @task, so invoke still sees the task's own signature)."""
    @functools.wraps(fn)
    def run(c, *args, **kwargs):
        from ..model import settings

        with held(settings.load(), fn.__name__):
            return fn(c, *args, **kwargs)
    return run
