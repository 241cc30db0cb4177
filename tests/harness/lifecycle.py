"""The start/stop lifecycle both beds share."""
import os
import signal
import subprocess
import time


def stop_process_groups(procs, grace=5.0):
    """SIGTERM each process's group (every bed process is started with
    start_new_session=True), wait up to `grace` seconds for all of them,
    then SIGKILL what is left of each group."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)   # stragglers in the group
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.wait(5)


class Bed:
    """A bed of services on loopback: ``Cls.start(workdir, **options)``
    starts it (and stops whatever had started when the start fails);
    ``.stop()`` (idempotent) or use it as a context manager.

    Subclasses implement _start(), stop(), env() (what the tool needs),
    request_counts() and resources() (a snapshot of what up/down could
    touch, for before/after comparisons)."""

    __test__ = False   # not a pytest test class
    startup_seconds = None

    @classmethod
    def start(cls, workdir, **kwargs):
        self = cls(workdir, **kwargs)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def env(self):
        raise NotImplementedError

    def request_counts(self):
        raise NotImplementedError

    def resources(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
