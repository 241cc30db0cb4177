"""What every API client shares below the session: the backoff between
tries, pacing under a rate limit, creates whose outcome is unknown
(create_or_find), and one line from an API error (describe, fail).

A module of its own so that the clients (compute, network, images) need not
import session.py, which makes them (Cloud.compute, .network, .images):
session -> clients -> calls, one direction.
"""

import random
import threading
import time

from ..support import lazy
from ..support.errors import CloudError

ks_exc = lazy.module("keystoneauth1.exceptions")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
MAX_RETRY_AFTER = 120.0
# Creates whose outcome is unknown are looked up and tried again this often.
CREATE_ATTEMPTS = 8
LOOKUP_DELAY_MAX = 4.0

def retry_delay(attempt, headers=None, rng=random.random):
    """Seconds to wait before retry number `attempt` (0-based): Retry-After
    when the service sent one in seconds (capped), else exponential backoff
    with jitter."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return min(max(float(value), 0.0), MAX_RETRY_AFTER)
            except (TypeError, ValueError):
                break   # an HTTP date: fall back to backoff
    return min(BACKOFF_MAX, BACKOFF_START * 2.0 ** attempt) * (0.5 + rng() / 2)



# A window of our own is this much longer than the service's: its clock may
# count in whole seconds or run a little apart from ours.
WINDOW_MARGIN = 0.01


def next_send(now, in_flight, done, budget, window, last=None, spacing=0.0, hold=0.0):
    """Pure: the earliest time >= `now` at which one more request may be
    sent so that no window of `window` seconds ever holds more than `budget`
    of ours at the service, whatever its limiter (sliding or fixed window,
    leaky bucket); None while `in_flight` requests alone fill the budget
    (wait for one to finish).

    The service counts a request at some moment between its sending and its
    answer, so an earlier request is counted while in flight and until
    `window` after its answer (`done`: answer times). A set that a service
    could see in one window then has its last-sent member reserved with all
    the others counted. `last`/`spacing`: no closer to the previous send
    than `spacing` (after a refusal: no bursts); `hold`: not before it
    (Retry-After)."""
    room = budget - 1 - in_flight
    if room < 0:
        return None
    recent = sorted((d for d in done if d > now - window), reverse=True)
    t = now
    if len(recent) > room:
        t = max(t, recent[room] + window)
    if last is not None:
        t = max(t, last + spacing)
    return max(t, hold)


class Pacer:
    """Keeps our requests under a rate limit of `value` per `seconds`, shared
    by every thread, whatever model the service enforces it by: no window
    of `seconds` ever holds more than value - `used` of ours (`used`: what
    the service already counts for the account, from its "remaining"), so
    the first burst is at most what remains and other clients of the
    account keep what they used. See next_send.

    acquire() before each request (retries too), release(status, headers)
    after its answer or failure. After a 413/429 the run stops bursting:
    the rest is spread evenly (one request per seconds / budget), and
    nothing is sent before its Retry-After. Calls `report(line)` at most
    every `every` seconds while pacing is what requests wait for."""

    def __init__(self, value, seconds, source, used=0, report=None, every=10.0,
                 clock=time.monotonic, wait=None):
        self.budget = max(1, value - max(0, used))
        self.window = seconds * (1 + WINDOW_MARGIN)
        self.describe = f"{value} POSTs per {_per(seconds)} ({source})"
        self._clock = clock
        self._cond = threading.Condition()
        self._wait = wait or (lambda cond, timeout: cond.wait(timeout))
        self._in_flight = 0
        self._done = []          # answer times within the last window
        self._last = None
        self._spacing = 0.0      # seconds between sends once refused
        self._hold = 0.0
        self._report, self._every, self._reported = report, every, None
        self.sent = 0
        self.refused = 0

    def acquire(self):
        """Wait for our turn, then count the request as in flight."""
        with self._cond:
            while True:
                now = self._clock()
                self._done = [d for d in self._done if d > now - self.window]
                at = next_send(now, self._in_flight, self._done, self.budget, self.window,
                               self._last, self._spacing, self._hold)
                if at is not None and at <= now:
                    break
                if at is not None and self._report is not None and (
                        self._reported is None or now - self._reported >= self._every):
                    self._reported = now
                    self._report(f"pacing: waiting {at - now:.1f}s for the compute rate limit, {self.describe}; "
                                 f"{self.sent} POSTs so far")
                self._wait(self._cond, None if at is None else at - now)
            self._in_flight += 1
            self._last = now
            self.sent += 1

    def release(self, status=None, headers=None):
        """The request got its answer (`status`; None: it failed on the way)."""
        with self._cond:
            now = self._clock()
            self._in_flight -= 1
            self._done.append(now)
            if status in (413, 429):
                self.refused += 1
                self._spacing = self.window / self.budget
                self._hold = max(self._hold, now + retry_delay(0, headers, rng=lambda: 1.0))
            self._cond.notify_all()


def _per(seconds):
    names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    return names.get(seconds, f"{seconds:g}s")


def create_or_find(what, create, find, ambiguous, sleep=time.sleep, attempts=CREATE_ATTEMPTS, describe=None):
    """create() -> the new resource. When it fails with an unknown outcome
    (ambiguous(exc): a 5xx, a reset, a timeout), find() -> the resource if
    it was made after all (used as is), or None: then create() runs again,
    up to `attempts` times. Other failures propagate. The user is asked to
    re-run only after every attempt failed and nothing appeared."""
    last = None
    for attempt in range(attempts):
        try:
            return create()
        except Exception as exc:   # noqa: BLE001: ambiguous() decides
            if not ambiguous(exc):
                raise
            last = exc
        # A service may list what it just made a moment late; and a service
        # that fails every create should not hold the run for minutes.
        sleep(min(LOOKUP_DELAY_MAX, BACKOFF_START * 2 ** attempt))
        found = find()
        if found is not None:
            return found
    raise CloudError(f"{what}: {(describe or describe_any)(last)}; nothing was made in {attempts} attempts; "
                     "re-run when the cloud answers again")


def describe_any(exc):
    if isinstance(exc, ks_exc.HttpError):
        return describe(exc)
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__


def describe(exc):
    """The API's own message from a keystoneauth HttpError, one line."""
    status = getattr(exc, "http_status", None)
    response = getattr(exc, "response", None)
    message = None
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            # Nova: {"itemNotFound": {"message": ...}}; Neutron: {"NeutronError": {"message": ...}}
            for value in body.values():
                if isinstance(value, dict) and value.get("message"):
                    message = value["message"]
                    break
        if not message and response.text:
            message = response.text.strip().splitlines()[0][:200]
    message = message or getattr(exc, "message", None) or str(exc)
    return f"{message} (HTTP {status})" if status else message


def fail(exc, what):
    """Raise CloudError naming `what` (the resource and action) and the API's
    message; use for 4xx that retrying cannot fix."""
    raise CloudError(f"{what}: {describe(exc)}") from None
