"""Cloud Servers (Nova): the only module that calls the compute API.

python-novaclient on the shared session, API version 2.0 (what Rackspace and
Mimic speak). Every request retries transient failures (session.RetryingSession);
creates retry blindly only on 408/413/429: a 5xx, a reset or a timeout may
hide a server or keypair that was made after all, so they are looked up
before the next attempt (calls.create_or_find).
"""

import base64
import difflib
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from keystoneauth1 import exceptions as ks_exc
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from . import calls
from ..model import flatcar, names
from ..support import progress
from ..support.errors import CloudError, ConfigError
from ..model.servers import FLAVOR_SETTINGS, GONE, Server, flavor_problem

# Nova rejects user_data whose base64 form exceeds 65535 bytes.
USER_DATA_LIMIT = 65535

def describe(exc):
    """One line from a novaclient or keystoneauth exception."""
    if isinstance(exc, nova_exc.ClientException):
        message = (exc.message or "").strip().splitlines()[0] if exc.message else type(exc).__name__
        return f"{message} (HTTP {exc.code})"
    if isinstance(exc, ks_exc.HttpError):
        return calls.describe(exc)
    return f"{type(exc).__name__}: {exc}"


def _ambiguous(exc):
    """Did the create perhaps happen although we got no success answer?"""
    if isinstance(exc, nova_exc.ClientException):
        return exc.code is None or exc.code >= 500 or exc.code == 408
    if isinstance(exc, ks_exc.HttpError):
        return exc.http_status >= 500 or exc.http_status == 408
    return isinstance(exc, ks_exc.ConnectionError)


class ImageNotFound(ConfigError):
    """KUBE_IMAGE's default found no Flatcar image; what to do depends on
    the cloud kind, which the caller (steps/boot.image_id) adds."""


class Unavailable(CloudError):
    """Nova kept failing (5xx, timeouts) after every retry: a wait may poll
    on through it; anything else stops the run like any CloudError."""


@dataclass(frozen=True)
class CreateRequest:
    """Everything a server create sends (a test compares it to what Nova got)."""
    name: str
    image_id: str
    flavor_id: str
    key_name: str
    nics: tuple               # Nova's networks, in NIC order ({"net-id": ...} or {"port-id": ...})
    metadata: dict
    user_data: bytes          # raw (maybe gzipped) bytes; base64 is added on the wire

    def check(self):
        size = len(base64.b64encode(self.user_data))
        if size > USER_DATA_LIMIT:
            raise ConfigError(
                f"user data for {self.name} is {size} bytes in base64, over Nova's limit of {USER_DATA_LIMIT}; "
                "shorten the cloud-config")


class CloudServers:
    def __init__(self, cloud):
        self.cloud = cloud
        self.endpoint = cloud.endpoint("compute")
        common = dict(session=cloud.session, endpoint_override=self.endpoint,
                      region_name=cloud.region or None)
        self.nova = nova_client.Client("2", **common)
        self._pacers = None
        self._pacers_lock = threading.Lock()
        cloud.session.pace("POST", self.endpoint, self)
        self._images = None
        self._flavors = None

    # -- rate limits (the session calls these around every compute POST) -----
    def acquire(self):
        """Wait for our turn under the account's POST limits (read from
        /limits once, at the first POST)."""
        with self._pacers_lock:
            if self._pacers is None:
                self._pacers = self._make_pacers()
        for pacer in self._pacers:
            pacer.acquire()

    def release(self, status=None, headers=None):
        for pacer in self._pacers:
            pacer.release(status, headers)

    def _make_pacers(self):
        s = self.cloud.settings
        try:
            body = self.nova.client.get("/limits")[1] or {}
        except (nova_exc.ClientException, ks_exc.ClientException):
            body = {}   # pacing by the setting is the safe side
        found = post_limits(body)
        if not found:
            found = [(s.COMPUTE_POST_LIMIT, 60, 0, "COMPUTE_POST_LIMIT")]
        return [calls.Pacer(value, seconds, source, used=used, report=progress.info)
                for value, seconds, used, source in found]

    # -- errors ------------------------------------------------------------
    def _fail(self, what, exc):
        if isinstance(exc, (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure)):
            raise Unavailable(f"{what}: cannot reach Cloud Servers at {self.endpoint} ({exc})") from None
        if _ambiguous(exc):
            raise Unavailable(f"{what}: {describe(exc)}") from None
        raise CloudError(f"{what}: {describe(exc)}") from None

    def _get(self, what, url):
        try:
            return self.nova.client.get(url)[1]
        except (nova_exc.ClientException, ks_exc.ClientException) as exc:
            self._fail(what, exc)

    def _pages(self, what, url, key):
        """GET a list, following Nova's `<key>_links` next links."""
        items = []
        while url:
            body = self._get(what, url) or {}
            items.extend(body.get(key) or [])
            url = next((link["href"] for link in body.get(f"{key}_links") or [] if link.get("rel") == "next"), None)
        return items

    # -- images and flavors --------------------------------------------------
    def image_id(self, ref):
        """KUBE_IMAGE as an ID or a name. Its default stands for the newest
        image `inv image` uploaded for FLATCAR_CHANNEL, else the cloud's own
        image of that name."""
        if self._images is None:
            self._images = self._pages("listing images", "/images/detail", "images")
        s = self.cloud.settings
        region = self.cloud.region or "any region"
        if s.source("KUBE_IMAGE") != "default":
            return _resolve("KUBE_IMAGE", ref, self._images, "image", region)
        ours = flatcar.default_image(self._images, s.FLATCAR_CHANNEL)
        if ours:
            return ours
        try:
            return _resolve("KUBE_IMAGE", ref, self._images, "image", region)
        except ConfigError:
            raise ImageNotFound(f"no Flatcar image in {region}: none uploaded by `inv image` for FLATCAR_CHANNEL="
                                f"{s.FLATCAR_CHANNEL}, none named {ref!r}") from None

    def flavor_id(self, role, ref):
        """KUBE_MASTER_FLAVOR / KUBE_NODE_FLAVOR (by `role`) as an ID or a
        name; ConfigError when it is below the role's minimum size."""
        if self._flavors is None:
            # /detail: the plain list has no vcpus or ram.
            self._flavors = self._pages("listing flavors", "/flavors/detail", "flavors")
        flavor_id = _resolve(FLAVOR_SETTINGS[role], ref, self._flavors, "flavor", self.cloud.region or "any region")
        flavor = next(f for f in self._flavors if f.get("id") == flavor_id)
        problem = flavor_problem(role, flavor, self._flavors, self.image_minimums())
        if problem:
            raise ConfigError(problem)
        return flavor_id

    def image_minimums(self):
        """(min_disk GB, min_ram MiB) of KUBE_IMAGE as Nova lists it
        (minDisk, minRam; `inv image` sets both); (0, 0) when KUBE_IMAGE
        finds no image: image_id() says so in its own line."""
        try:
            image_id = self.image_id(self.cloud.settings.KUBE_IMAGE)
        except ConfigError:
            return 0, 0
        image = next((i for i in self._images if i.get("id") == image_id), {})

        def number(key):
            try:
                return int(image.get(key) or 0)
            except (TypeError, ValueError):
                return 0
        return number("minDisk"), number("minRam")

    def flavor_details(self):
        """Every flavor with its size (vcpus, ram, disk)."""
        if self._flavors is None:
            self._flavors = self._pages("listing flavors", "/flavors/detail", "flavors")
        return self._flavors

    # -- keypairs ------------------------------------------------------------
    def keypair(self, name):
        """(name, public_key, fingerprint) of the keypair, or None."""
        try:
            kp = self.nova.keypairs.get(name)
        except nova_exc.NotFound:
            return None
        except (nova_exc.ClientException, ks_exc.ClientException) as exc:
            self._fail(f"reading keypair {name}", exc)
        return kp.name, kp.public_key, kp.fingerprint

    def create_keypair(self, name, public_key, sleep=time.sleep):
        """Register `public_key`; returns the keypair as `keypair()` does.
        A 409 (a concurrent run made it) is answered by reading it back, an
        unknown outcome by a look-up and, when there is none, another try."""
        what = f"registering keypair {name}"

        def create():
            try:
                kp = self.nova.keypairs.create(name, public_key=public_key)
            except nova_exc.Conflict:
                return self.keypair(name)
            except (nova_exc.ClientException, ks_exc.ClientException) as exc:
                if not _ambiguous(exc):
                    self._fail(what, exc)
                raise
            return kp.name, kp.public_key, kp.fingerprint

        return calls.create_or_find(what, create, lambda: self.keypair(name), _ambiguous, sleep=sleep, describe=describe)

    def delete_keypair(self, name):
        """True when deleted, False when there was none."""
        try:
            self.nova.keypairs.delete(name)
        except nova_exc.NotFound:
            return False
        except (nova_exc.ClientException, ks_exc.ClientException) as exc:
            self._fail(f"deleting keypair {name}", exc)
        return True

    # -- servers -------------------------------------------------------------
    def list_servers(self, prefix):
        """Every server whose name contains `prefix-`, in one request per page.
        Nova treats `name` as a regular expression (Mimic as a substring);
        our prefixes hold no regex metacharacters, so both return a superset
        that servers.py narrows by name and metadata."""
        url = "/servers/detail?" + urlencode({"name": f"{prefix}-"})
        return [Server.from_api(d) for d in self._pages(f"listing servers {prefix}-*", url, "servers")]

    def find(self, s, name, ignore_ids=()):
        """Our live servers called exactly `name` (but those in `ignore_ids`:
        servers we just deleted may still be listed for a while)."""
        return [srv for srv in self.list_servers(s.INSTANCE_PREFIX)
                if srv.name == name and names.is_cluster_server(s, srv.name, srv.metadata)
                and srv.status not in GONE and srv.id not in ignore_ids]

    def server_exists(self, server_id):
        """True while Nova has the server (in any state but deleted)."""
        try:
            status = (self.nova.servers.get(server_id).status or "").upper()
        except nova_exc.NotFound:
            return False
        except (nova_exc.ClientException, ks_exc.ClientException) as exc:
            self._fail(f"reading server {server_id}", exc)
        return status not in GONE

    def delete_server(self, server):
        try:
            self.nova.servers.delete(server.id)
        except nova_exc.NotFound:
            pass
        except (nova_exc.ClientException, ks_exc.ClientException) as exc:
            self._fail(f"deleting server {server.name} ({server.id})", exc)

    def create_server(self, s, request, ignore_ids=(), sleep=time.sleep):
        """Create one server; returns its id. A 4xx stops with the API's
        message; a 5xx, reset or timeout is followed by a look-up by name
        and only then, if no server appeared, by another attempt."""
        request.check()
        what = f"creating server {request.name}"

        def create():
            try:
                return self.nova.servers.create(
                    request.name, image=request.image_id, flavor=request.flavor_id, meta=request.metadata,
                    userdata=request.user_data, key_name=request.key_name, config_drive=True,
                    nics=[dict(nic) for nic in request.nics]).id
            except (nova_exc.ClientException, ks_exc.ClientException) as exc:
                if not _ambiguous(exc):
                    self._fail(what, exc)
                raise

        def find():
            found = self.find(s, request.name, ignore_ids)
            return found[0].id if found else None

        return calls.create_or_find(what, create, find, _ambiguous, sleep=sleep, describe=describe)


UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def post_limits(body):
    """Pure: [(value, seconds, used, source)] of the POST limits in a
    /limits answer's rate section that apply to server creates (regex ".*"
    or one matching /servers); `used` = value - remaining."""
    found = []
    for entry in (body.get("limits") or {}).get("rate") or []:
        regex = entry.get("regex") or ".*"
        try:
            applies = re.search(regex, "/servers") is not None
        except re.error:
            applies = False
        if not applies:
            continue
        for limit in entry.get("limit") or []:
            unit = str(limit.get("unit", "")).upper()
            try:
                value = int(limit.get("value"))
                remaining = int(limit.get("remaining", value))
            except (TypeError, ValueError):
                continue
            if limit.get("verb", "").upper() == "POST" and unit in UNITS and value > 0:
                found.append((value, UNITS[unit], max(0, value - remaining),
                              f"/limits: {entry.get('uri', regex)}"))
    return found


def _resolve(setting, ref, items, kind, region):
    """An ID or a name to an ID; unknown: one line with the close matches."""
    for item in items:
        if item.get("id") == ref:
            return ref
    named = [item for item in items if item.get("name") == ref]
    if len(named) == 1:
        return named[0]["id"]
    if len(named) > 1:
        ids = ", ".join(item["id"] for item in named)
        raise ConfigError(f"{setting}={ref!r} names several {kind}s ({ids}); set {setting} to one of the IDs")
    labels = [item.get("name") or "" for item in items]
    lowered = ref.lower()
    close = [n for n in labels if lowered in n.lower()]
    close += [n for n in difflib.get_close_matches(ref, labels, n=5, cutoff=0.6) if n not in close]
    hint = f"close matches: {', '.join(repr(n) for n in close[:5])}" if close else \
        f"no {kind} name is close (there are {len(items)})"
    article = "an" if kind[0] in "aeiou" else "a"
    raise ConfigError(f"{setting}={ref!r} is neither the ID nor the name of {article} {kind} in {region}; {hint}")
