"""Progress for long steps: live at a terminal, plain lines in logs.

    with progress.transfer("uploading release", total_bytes) as advance:
        advance(n)                       # n more bytes done (thread-safe)

    with progress.waiting("servers ACTIVE", timeout) as wait:
        wait.update("3/5 ACTIVE")        # what we are waiting for, now
        wait.expired                     # True after `timeout` seconds

At a terminal these draw with rich; otherwise they print a line when the
step starts, at most every LOG_INTERVAL seconds while it runs, and when it
ends, so CI logs stay readable.
"""

import contextlib
import sys
import threading
import time

LOG_INTERVAL = 10.0


def info(message):
    """One plain line of progress to stderr (stdout stays for results)."""
    # One write per line: node creates report from several threads at once.
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def _live():
    return sys.stderr.isatty()


def _size(n):
    if n is None:
        return "? B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


@contextlib.contextmanager
def transfer(description, total):
    start = time.monotonic()
    lock = threading.Lock()
    done = [0]
    if _live():
        from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                                   TransferSpeedColumn)

        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), TimeRemainingColumn(), transient=False,
                      console=_console()) as bar:
            task_id = bar.add_task(description, total=total)

            def advance(n):
                bar.advance(task_id, n)
            yield advance
        return
    info(f"{description}: {_size(total)}")
    last = [start]

    def advance(n):
        with lock:
            done[0] += n
            now = time.monotonic()
            if now - last[0] >= LOG_INTERVAL:
                last[0] = now
                info(f"{description}: {_size(done[0])} of {_size(total)}")
    yield advance
    elapsed = time.monotonic() - start
    info(f"{description}: done, {_size(total)} in {elapsed:.1f}s")


@contextlib.contextmanager
def transfers(steps):
    """Several transfers that run at once (the stages of a pipeline), one
    bar each: `steps` is [(description, total or None)]; yields one
    advance(n) per step. A total of None is unknown until the end."""
    if _live():
        from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                                   TransferSpeedColumn)

        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), TimeRemainingColumn(), transient=False,
                      console=_console()) as bar:
            ids = [bar.add_task(description, total=total) for description, total in steps]
            yield [lambda n, task_id=task_id: bar.advance(task_id, n) for task_id in ids]
        return
    start = time.monotonic()
    lock = threading.Lock()
    done = [0] * len(steps)
    last = [start]
    for description, total in steps:
        info(f"{description}: {_size(total)}")

    def advancer(i):
        def advance(n):
            with lock:
                done[i] += n
                now = time.monotonic()
                if now - last[0] >= LOG_INTERVAL:
                    last[0] = now
                    info("; ".join(f"{d}: {_size(done[j])} of {_size(t)}" for j, (d, t) in enumerate(steps)))
        return advance
    yield [advancer(i) for i in range(len(steps))]
    elapsed = time.monotonic() - start
    info("; ".join(f"{d}: {_size(done[j])}" for j, (d, _) in enumerate(steps)) + f", in {elapsed:.1f}s")


class Wait:
    def __init__(self, description, timeout, status):
        self.description = description
        self.timeout = timeout
        self.start = time.monotonic()
        self._status = status
        self._last_line = 0.0
        self.state = ""

    @property
    def elapsed(self):
        return time.monotonic() - self.start

    @property
    def expired(self):
        return self.elapsed >= self.timeout

    def update(self, state):
        self.state = state
        text = f"waiting for {self.description}: {state} ({self.elapsed:.0f}s of {self.timeout:.0f}s)"
        if self._status is not None:
            self._status.update(text)
        elif state != getattr(self, "_logged", None) or time.monotonic() - self._last_line >= LOG_INTERVAL:
            self._logged = state
            self._last_line = time.monotonic()
            info(text)


@contextlib.contextmanager
def waiting(description, timeout):
    if _live():
        with _console().status(f"waiting for {description}") as status:
            wait = Wait(description, timeout, status)
            yield wait
    else:
        wait = Wait(description, timeout, None)
        yield wait
    info(f"{description}: {wait.state or 'done'} after {wait.elapsed:.0f}s")


def _console():
    from rich.console import Console

    return Console(stderr=True)
