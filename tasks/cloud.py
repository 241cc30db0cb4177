"""Identity, the service catalog, and the retry policy every API call shares.

Rackspace Identity v2.0 with an API key (rackspaceauth's plugin for
keystoneauth1) on the legacy cloud, Keystone v3 on OpenStack (Rackspace
Flex); credentials.py decides which and from what.
Endpoints come from the catalog by type, name and the region; the
*_ENDPOINT settings override them for private clouds and tests.
"""

import functools
import logging

from . import lazy
from .errors import CloudError

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
RETRY_STATUSES = [408, 413, 429, 500, 502, 503, 504]
# For creates, 5xx is ambiguous (the server may exist after all): callers
# look the resource up by name before trying again, so only rate limits are
# retried blindly.
RETRY_STATUSES_CREATE = [408, 413, 429]
RETRIES = 6
CONNECT_RETRIES = 3
# Seconds a request may wait on the socket: a hung connection fails (and is
# retried or, for a create, looked up) instead of stalling the run forever.
REQUEST_TIMEOUT = 60

# keystoneauth logs each retry at WARNING; keep our output to our own lines.
logging.getLogger("keystoneauth").setLevel(logging.ERROR)


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
        self.session = ks_session.Session(auth=credentials.auth_plugin(creds), timeout=REQUEST_TIMEOUT,
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
        except ks_exc.ConnectFailure:
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
                return url.rstrip("/")
        regions = sorted({e.get("region") for svc in catalog.catalog if svc.get("type") == service_type
                          for e in svc.get("endpoints", []) if e.get("region")})
        raise CloudError(
            f"no {service_name} ({service_type}) endpoint in region OS_REGION_NAME={region or '(any)'}; "
            f"the catalog has it in: {', '.join(regions) or 'no region'} (or set {override_name})")

    def adapter(self, service, interface=None):
        """A keystoneauth Adapter for `service` that retries, with
        exponential backoff and Retry-After honoured, on RETRY_STATUSES."""
        return ks_adapter.Adapter(
            self.session, endpoint_override=self.endpoint(service, interface),
            status_code_retries=RETRIES, retriable_status_codes=RETRY_STATUSES,
            connect_retries=CONNECT_RETRIES)


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
