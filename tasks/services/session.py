"""Identity, the service catalog, and the retry policy every API call shares.

Rackspace Identity v2.0 with an API key (rackspaceauth's plugin for
keystoneauth1) on the legacy cloud, Keystone v3 on OpenStack (Rackspace
Flex); credentials.py decides which and from what.
Endpoints come from the catalog by type, name and the region; the
*_ENDPOINT settings override them for private clouds and tests.
"""

import functools
import logging
import random
import threading
import time

from ..support import lazy
from ..support.errors import CloudError

ks_adapter = lazy.module("keystoneauth1.adapter")
ks_exc = lazy.module("keystoneauth1.exceptions")
ks_session = lazy.module("keystoneauth1.session")

# (settings override, catalog type, Rackspace catalog name)
SERVICES = {
    "compute": ("COMPUTE_ENDPOINT", "compute", "cloudServersOpenStack"),
    "network": ("NETWORK_ENDPOINT", "network", "cloudNetworks"),
    "object-store": ("STORAGE_ENDPOINT", "object-store", "cloudFiles"),
    "image": ("IMAGE_ENDPOINT", "image", "cloudImages"),
}

# Statuses worth retrying for any request: the request was not acted on
# (408, 413/429: Rackspace answers 413 overLimit with Retry-After) or the
# service is struggling (5xx).
RETRY_STATUSES = frozenset({408, 413, 429, 500, 502, 503, 504})
# For creates, 5xx is ambiguous (the resource may exist after all): callers
# look the resource up by name before trying again (`create_or_find`), so
# only the statuses that say "not acted on" are retried blindly.
RETRY_STATUSES_CREATE = frozenset({408, 413, 429})
# Every request gets ATTEMPTS tries within RETRY_BUDGET seconds of waiting,
# whichever runs out first: a quarter of requests failing leaves a run with
# hundreds of requests a chance of about 1e-3 of losing one (0.25**9 each).
ATTEMPTS = 9
RETRY_BUDGET = 300.0
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
MAX_RETRY_AFTER = 120.0
# Creates whose outcome is unknown are looked up and tried again this often.
CREATE_ATTEMPTS = 8
LOOKUP_DELAY_MAX = 4.0

# keystoneauth logs each retry at WARNING; keep our output to our own lines.
logging.getLogger("keystoneauth").setLevel(logging.ERROR)


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


def retriable(method, authenticated=None, status=None, error=None):
    """Pure: may a request that got `status` (or raised `error`) be sent
    again as it is? POSTs that create something are not, unless the answer
    says it was not acted on: a 5xx, a reset or a timeout may hide a create
    that happened (callers look it up, see create_or_find). The token
    request (an unauthenticated POST) creates nothing and is always safe."""
    safe = method.upper() != "POST" or authenticated is False
    if error is not None:
        return safe and isinstance(error, ks_exc.ConnectionError) and not isinstance(error, ks_exc.SSLError)
    return status in (RETRY_STATUSES if safe else RETRY_STATUSES_CREATE)


def RetryingSession(*args, **kwargs):   # noqa: N802 - a class, made on first use
    """A keystoneauth Session that retries: see _session_class."""
    return _session_class()(*args, **kwargs)


@functools.cache
def _session_class():
    # Defined on first use: subclassing needs keystoneauth1, which `inv
    # --list` must not import (see tasks/support/lazy.py).
    class RetryingSession(ks_session.Session):
        """A keystoneauth Session whose every request, whatever the service,
        retries transient failures: ATTEMPTS tries within RETRY_BUDGET seconds,
        backoff with jitter, Retry-After honoured (see `retriable` for what is
        safe to send again). The auth plugin sends the token request through
        this session too, first time and on a refresh after a 401.

        keystoneauth's own retries stay off: they count connect and status
        retries apart, know no time budget, and the auth plugin asks for none."""

        def __init__(self, *args, sleep=time.sleep, **kwargs):
            super().__init__(*args, **kwargs)
            self._sleep = sleep
            self.pacers = {}   # (method, URL prefix) -> Pacer, see pace()

        def pace(self, method, prefix, pacer):
            """Send every `method` request under `prefix` through `pacer`
            (acquire() before, release(status, headers) after; see Pacer),
            retries included."""
            self.pacers[(method.upper(), prefix.rstrip("/"))] = pacer

        def _pacer(self, method, url, endpoint_override):
            if not self.pacers:
                return None
            full = url if "://" in url else f"{(endpoint_override or '').rstrip('/')}/{url.lstrip('/')}"
            for (verb, prefix), pacer in self.pacers.items():
                if verb == method.upper() and (full == prefix or full.startswith(prefix + "/")):
                    return pacer
            return None

        def request(self, url, method, **kwargs):
            for key in ("connect_retries", "status_code_retries"):
                kwargs[key] = 0
            kwargs.pop("retriable_status_codes", None)
            raise_exc = kwargs.pop("raise_exc", True)
            # once=True: one try only, for a body that can be read once (a
            # stream); its caller retries from where the data can be read again.
            attempts = 1 if kwargs.pop("once", False) else ATTEMPTS
            authenticated = kwargs.get("authenticated")
            start = time.monotonic()
            attempt = 0
            slept = 0.0

            def spent(delay):
                # Time since the first try, and at least what we slept (a test's
                # sleep may not take time).
                return max(time.monotonic() - start, slept) + delay

            pacer = self._pacer(method, url, kwargs.get("endpoint_override"))
            while True:
                if pacer is not None:
                    pacer.acquire()
                try:
                    resp = super().request(url, method, raise_exc=False, **kwargs)
                except BaseException as exc:
                    if pacer is not None:
                        pacer.release()
                    if not isinstance(exc, ks_exc.ConnectionError):
                        raise
                    if not retriable(method, authenticated, error=exc):
                        raise
                    delay = retry_delay(attempt)
                    if attempt + 1 >= attempts or spent(delay) > RETRY_BUDGET:
                        raise
                else:
                    if pacer is not None:
                        pacer.release(resp.status_code, resp.headers)
                    if not (retriable(method, authenticated, status=resp.status_code)
                            and attempt + 1 < attempts):
                        if raise_exc and resp.status_code >= 400:
                            raise ks_exc.from_response(resp, method, url)
                        return resp
                    delay = retry_delay(attempt, resp.headers)
                    if spent(delay) > RETRY_BUDGET:
                        if raise_exc:
                            raise ks_exc.from_response(resp, method, url)
                        return resp
                self._sleep(delay)
                slept += delay
                attempt += 1

    return RetryingSession


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


def auth_plugin(s):
    """The keystoneauth plugin the settings call for (see credentials.py)."""
    from . import credentials

    return credentials.auth_plugin(credentials.load(s))


class Cloud:
    """One authenticated session and the endpoints of one region."""

    def __init__(self, s):
        from . import credentials

        self.credentials = creds = credentials.load(s)
        if creds.kind == credentials.LEGACY:
            s.require_credentials()
        credentials.require(creds)
        self.settings = s
        self.kind = creds.kind
        self.region = creds.region
        # API_TIMEOUT: seconds a request may wait on the socket; a hung
        # connection fails (and is retried or, for a create, looked up)
        # instead of stalling the run.
        self.session = RetryingSession(auth=credentials.auth_plugin(creds), timeout=s.API_TIMEOUT,
                                       verify=creds.verify)

    @functools.cached_property
    def access(self):
        creds = self.credentials
        if creds.kind == "legacy":
            service, check = "Rackspace Identity", "check OS_API_KEY / OS_PASSWORD"
            who = f"OS_USERNAME={self.settings.OS_USERNAME}"
        else:
            service, who = "Keystone", creds.who
            check = ("check the application credential" if creds.method == "application_credential"
                     else "check the password (or API key), the domains and the project")
            if creds.cloud_name:
                check += f" in clouds.yaml entry {creds.cloud_name}"
        try:
            return self.session.auth.get_access(self.session)
        except ks_exc.Unauthorized:
            raise CloudError(f"{service} at {creds.auth_url} refused the credentials of {who}; {check}") from None
        except ks_exc.ConnectionError:
            raise CloudError(f"cannot reach the identity service at {creds.auth_url}; "
                             "check OS_AUTH_URL (auth_url) and your network") from None
        except ks_exc.HttpError as exc:
            raise CloudError(f"{service} at {creds.auth_url}: {describe(exc)}") from None

    @property
    def token(self):
        return self.access.auth_token

    @property
    def tenant_id(self):
        return self.access.project_id

    def endpoint(self, service, interface=None):
        """The URL of `service` ('compute', 'network', 'object-store') in
        OS_REGION_NAME. We read the catalog ourselves: rackspaceauth's own
        get_endpoint mangles network URLs (str.strip('/v2.0'))."""
        override_name, service_type, service_name = SERVICES[service]
        interface = interface or self.credentials.interface
        override = self.settings[override_name]
        if override:
            return override
        catalog = self.access.service_catalog
        region = self.region or None
        for name in (service_name, None):
            try:
                url = catalog.url_for(service_type=service_type, service_name=name,
                                      region_name=region, interface=interface)
            except ks_exc.EndpointNotFound:
                continue
            if url:
                return versioned(service, url.rstrip("/"))
        regions = sorted({e.get("region") for svc in catalog.catalog if svc.get("type") == service_type
                          for e in svc.get("endpoints", []) if e.get("region")})
        raise CloudError(
            f"no {service_name} ({service_type}) endpoint in region OS_REGION_NAME={region or '(any)'}; "
            f"the catalog has it in: {', '.join(regions) or 'no region'} (or set {override_name})")

    def adapter(self, service, interface=None):
        """A keystoneauth Adapter for `service` (the session retries)."""
        return ks_adapter.Adapter(self.session, endpoint_override=self.endpoint(service, interface))


def versioned(service, url):
    """Keystone catalogs list Neutron without its API version (Rackspace's
    Cloud Networks with it): the network client's paths need /v2.0."""
    if service == "network" and not url.endswith("/v2.0"):
        return url + "/v2.0"
    return url


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
