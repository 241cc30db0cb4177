"""Identity, the service catalog, the retrying session every API call goes
through, and the Cloud object the service clients hang off (cloud.compute,
cloud.network, cloud.images).

Rackspace Identity v2.0 with an API key (rackspaceauth's plugin for
keystoneauth1) on the legacy cloud, Keystone v3 on OpenStack (Rackspace
Flex); credentials.py decides which and from what.
Endpoints come from the catalog by type, name and the region; the
*_ENDPOINT settings override them for private clouds and tests.
The helpers the clients share (backoff, pacing, create_or_find, describe)
live in calls.py, below both; their names are kept here too.
"""

import functools
import logging
import threading
import time

from ..support import lazy
from ..support.errors import CloudError
from .calls import (  # noqa: F401 - also this module's names (tests, objects.py)
    BACKOFF_MAX, BACKOFF_START, CREATE_ATTEMPTS, LOOKUP_DELAY_MAX, MAX_RETRY_AFTER, WINDOW_MARGIN,
    Pacer, create_or_find, describe, describe_any, fail, next_send, retry_delay)

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

# keystoneauth logs each retry at WARNING; keep our output to our own lines.
logging.getLogger("keystoneauth").setLevel(logging.ERROR)


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
        self._clients = {}
        self._clients_lock = threading.Lock()

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

    # The service clients, made on first use and kept for the life of the
    # Cloud (like openstacksdk's proxies): `inv up` lists images and flavors
    # once. Imported here, not at the top: `inv --list` must not import
    # novaclient (tests/test_cli_speed.py), and the clients import calls.py,
    # never this module, so the direction stays session -> clients.
    def _client(self, name, make):
        # Under a lock: threads booting servers may ask at once, and a second
        # CloudServers would register a second compute pacer.
        with self._clients_lock:
            if name not in self._clients:
                self._clients[name] = make(self)
            return self._clients[name]

    @property
    def compute(self):
        """Nova (services/compute.CloudServers)."""
        from .compute import CloudServers

        return self._client("compute", CloudServers)

    @property
    def network(self):
        """Neutron or Rackspace Cloud Networks (services/network.CloudNetworks)."""
        from .network import CloudNetworks

        return self._client("network", CloudNetworks)

    @property
    def images(self):
        """Glance (services/images.Glance)."""
        from .images import Glance

        return self._client("images", Glance)


def versioned(service, url):
    """Keystone catalogs list Neutron without its API version (Rackspace's
    Cloud Networks with it): the network client's paths need /v2.0."""
    if service == "network" and not url.endswith("/v2.0"):
        return url + "/v2.0"
    return url
