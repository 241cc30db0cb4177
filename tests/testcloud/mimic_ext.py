"""
Small, faithful additions to Mimic 2.2 for the test cloud (loaded only in the
Mimic subprocess, see mimic_server.py).  Each addition mirrors real
Rackspace / OpenStack behaviour:

* ``GET /v2/{tenant}/os-keypairs/{name}`` (404 itemNotFound when missing);
  409 on duplicate names, 400 on unparsable public keys.
* real keypair fingerprints: MD5 of the decoded key blob, colon-hex.
* servers booted with ``networks: [{"uuid": <cloud network>}]`` get a port
  (device_id = server id) with a fixed IP; ``addresses`` shows the network
  label; deleting the server deletes its ports.  As on Rackspace, when
  ``networks`` is given, ``public``/``private`` only appear if the
  PublicNet (0000...) / ServiceNet (1111...) uuids are listed.
* unique public IPv4 per server, and ``accessIPv4`` = that address.
* creation behavior ``over-limit``: 413 overLimit with Retry-After.
* paging as Nova's ``osapi_max_limit``: server and image lists answer at
  most ``LIMITS.page_size`` items a page (5 by default, so clients must
  follow ``servers_links`` / ``images_links`` next links; Nova's default is
  1000), ``limit`` and ``marker`` as in Nova.
* rate limits as Nova's legacy limiter (a leaky bucket per account):
  beyond ``LIMITS.post_limit`` POSTs per ``LIMITS.window`` seconds a
  compute POST gets 413 overLimit with Retry-After, and ``/limits`` carries
  the matching ``rate`` section. Off by default.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import json
import random
import threading
import time
from urllib.parse import urlencode

from mimic.model import keypair_objects, nova_objects
from mimic.model.keypair_objects import KeyPair
from mimic.model.nova_objects import (BadRequestError, IPv4Address, Server,
                                      RegionalServerCollection,
                                      server_creation, bad_request)
from mimic.rest.nova_api import NovaRegion

from tests.testcloud import cloud_networks as cn

SERVERS = []            # every Server ever created (all tenants)
KEYPAIR_COLLECTIONS = []  # every RegionalKeyPairCollection


class KeyError400(Exception):
    pass


def md5_fingerprint(public_key):
    """Nova's fingerprint: MD5 over the base64-decoded key blob."""
    try:
        parts = public_key.strip().split()
        blob = base64.b64decode(parts[1], validate=True)
        if not parts[0].startswith(("ssh-", "ecdsa-")):
            raise ValueError(parts[0])
    except Exception:
        raise KeyError400("Keypair data is invalid: failed to generate "
                          "fingerprint")
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def _replace_endpoint(name, fn):
    """Swap the handler of one of NovaRegion's Klein routes (keeping Klein's
    route metadata stored on the original executor)."""
    orig = NovaRegion.app._endpoints[name]
    fn.__dict__.update(orig.__dict__)
    NovaRegion.app._endpoints[name] = fn


def _patch_keypairs():
    KeyPair.fingerprint = property(lambda self: md5_fingerprint(
        self.public_key))
    KeyPair.user_id = "170454"

    orig_cfr = keypair_objects.GlobalKeyPairCollections.collection_for_region

    def collection_for_region(self, region_name):
        coll = orig_cfr(self, region_name)
        if coll not in KEYPAIR_COLLECTIONS:
            KEYPAIR_COLLECTIONS.append(coll)
        return coll
    keypair_objects.GlobalKeyPairCollections.collection_for_region = \
        collection_for_region

    def create_key_pair(self, request, tenant_id):
        try:
            keypair = json.loads(request.content.read())["keypair"]
            name = keypair["name"]
            public_key = keypair["public_key"]
        except (ValueError, KeyError, TypeError):
            return json.dumps(bad_request("Malformed request body", request))
        coll = self._keypair_collection_for_tenant(tenant_id)
        if coll.keypair_by_name(name) is not None:
            return json.dumps(nova_objects.conflicting(
                "Key pair '%s' already exists." % name, request))
        try:
            md5_fingerprint(public_key)
        except KeyError400 as e:
            return json.dumps(bad_request(str(e), request))
        request.setResponseCode(200)
        return json.dumps(coll.create_keypair(
            keypair=KeyPair(name=name, public_key=public_key)))
    _replace_endpoint("create_key_pair", create_key_pair)

    @NovaRegion.app.route("/v2/<string:tenant_id>/os-keypairs/"
                          "<string:keypairname>", methods=["GET"],
                          endpoint="get_key_pair")
    def get_key_pair(self, request, tenant_id, keypairname):
        kp = self._keypair_collection_for_tenant(tenant_id) \
            .keypair_by_name(keypairname)
        if kp is None:
            return json.dumps(nova_objects.not_found(
                "Keypair %s not found for user %s" % (keypairname,
                                                      KeyPair.user_id),
                request))
        return json.dumps(kp.key_json())

    # Nova answers 404 itemNotFound (not a bare JSON string) on delete
    def delete_key_pair(self, request, tenant_id, keypairname):
        try:
            self._keypair_collection_for_tenant(tenant_id) \
                .remove_keypair(keypairname)
        except ValueError:
            return json.dumps(nova_objects.not_found(
                "Keypair %s not found for user %s" % (keypairname,
                                                      KeyPair.user_id),
                request))
        request.setResponseCode(202)
        return b""
    _replace_endpoint("delete_key_pair", delete_key_pair)


def _unique_public_ip(template):
    """Same /16 as Mimic's address, unique among all live servers."""
    a, b = template.split(".")[:2]
    used = {ip.address for s in SERVERS if s.status != "DELETED"
            for ip in s.public_ips}
    while True:
        cand = "%s.%s.%d.%d" % (a, b, random.randrange(1, 255),
                                random.randrange(1, 255))
        if cand not in used:
            return cand


def _patch_servers():
    orig_create = Server.from_creation_request_json.__func__

    def from_creation_request_json(cls, collection, creation_json,
                                   ipsegment=lambda: random.randrange(255),
                                   max_metadata_items=40):
        tenant = collection.tenant_id
        networks = creation_json.get("server", {}).get("networks")
        wanted = []
        if networks is not None:
            if not isinstance(networks, list):
                raise BadRequestError(nova_message="Bad networks format")
            for n in networks:
                uid = (n or {}).get("uuid")
                if uid in (cn.PUBLIC_NET_ID, cn.SERVICENET_ID):
                    continue
                try:
                    cn.STORE.network(tenant, uid)
                except cn.NeutronError:
                    raise BadRequestError(nova_message=(
                        "Network %s could not be found." % uid))
                wanted.append(uid)
        server = orig_create(cls, collection, creation_json, ipsegment,
                             max_metadata_items)
        for ip in server.public_ips:
            if isinstance(ip, IPv4Address):
                ip.address = _unique_public_ip(ip.address)
        if networks is not None:
            uuids = [(n or {}).get("uuid") for n in networks]
            if cn.PUBLIC_NET_ID not in uuids:
                server.public_ips = []
            if cn.SERVICENET_ID not in uuids:
                server.private_ips = []
        for uid in wanted:
            cn.STORE.create_port(tenant, {"port": {"network_id": uid}},
                                 device_id=server.server_id,
                                 device_owner="compute:None")
        SERVERS.append(server)
        return server
    Server.from_creation_request_json = classmethod(from_creation_request_json)

    def addresses_json(self):
        out = {}
        if self.public_ips:
            out["public"] = [a.json() for a in self.public_ips]
        if self.private_ips:
            out["private"] = [a.json() for a in self.private_ips]
        for port in cn.STORE.ports_for_device(self.server_id):
            net = cn.STORE.networks.get(port["network_id"])
            label = net["name"] if net else port["network_id"]
            out.setdefault(label, []).extend(
                {"addr": ip["ip_address"], "version": 6 if ":" in
                 ip["ip_address"] else 4} for ip in port["fixed_ips"])
        return out
    Server.addresses_json = addresses_json

    orig_detail = Server.detail_json

    def detail_json(self, absolutize_url):
        d = orig_detail(self, absolutize_url)
        v4 = [a.address for a in self.public_ips if isinstance(a, IPv4Address)]
        v6 = [a.address for a in self.public_ips
              if not isinstance(a, IPv4Address)]
        d["accessIPv4"] = v4[0] if v4 else ""
        d["accessIPv6"] = v6[0] if v6 else ""
        return d
    Server.detail_json = detail_json

    orig_delete = RegionalServerCollection.request_delete

    def request_delete(self, http_delete_request, server_id):
        result = orig_delete(self, http_delete_request, server_id)
        for s in self.servers:
            if s.server_id == server_id and s.status == "DELETED":
                for port in cn.STORE.ports_for_device(server_id):
                    cn.STORE.ports.pop(port["id"], None)
        return result
    RegionalServerCollection.request_delete = request_delete


def _add_over_limit_behavior():
    @server_creation.declare_behavior_creator("over-limit")
    def over_limit(parameters):
        """413 overLimit + Retry-After, as Nova's rate limiter answers."""
        retry = str(parameters.get("retry_after", 5))
        message = parameters.get("message", "This request was rate-limited.")

        def _fail(collection, http, json_body, absolutize_url):
            http.setResponseCode(413)
            http.setHeader(b"Retry-After", retry.encode())
            return json.dumps({"overLimit": {
                "code": 413, "message": message, "retryAfter": retry,
                "details": parameters.get("details", "")}})
        return _fail


MODELS = ("leaky", "fixed", "sliding")


class Limits:
    """Paging and the compute POST rate limit (set through /testcloud/limits).

    Rackspace does not document which model its API front end limits by,
    so the test cloud has three, all admitting L POSTs per W seconds:

    * leaky: Nova's legacy limiter (nova/api/openstack/compute/limits.py,
      Limit._get_delay): a bucket that holds W seconds of water, each POST
      adds W/L, it leaks in real time; bursts of L, then one per W/L.
    * fixed: a counter per window [k W, (k+1) W) since the limit was set;
      L at the end of one window and L at the start of the next pass.
    * sliding: at most L in ANY W seconds (a log of admitted POSTs), the
      strictest of the three: whatever passes it passes the other two.
    """

    def __init__(self):
        self.page_size = 5
        self.post_limit = 0      # 0: no rate limit
        self.window = 60.0       # seconds
        self.model = "leaky"
        self.over_limit = 0      # 413s answered
        self.posts = 0
        self._lock = threading.Lock()
        self._reset(time.monotonic())

    def _reset(self, now):
        self._level = 0.0        # leaky: the bucket, in seconds of "water"
        self._last = None
        self._epoch = now        # fixed: windows count from here
        self._counts = {}        # fixed: window index -> POSTs admitted
        self._log = collections.deque()   # sliding: admission times

    def configure(self, page_size=None, post_limit=None, window=None, model=None, now=None):
        with self._lock:
            if page_size is not None:
                self.page_size = int(page_size)
            if post_limit is not None:
                self.post_limit = int(post_limit)
            if window is not None:
                self.window = float(window)
            if model is not None:
                if model not in MODELS:
                    raise ValueError("model must be one of %s" % (MODELS,))
                self.model = model
            if self.model != "leaky" and self.window not in (1, 60, 3600, 86400):
                # /limits can only say "per SECOND/MINUTE/HOUR/DAY", and
                # 10 in 2 s is not 5 in 1 s for a window model.
                raise ValueError("a window model needs a window of 1, 60, 3600 or 86400 s")
            self._reset(time.monotonic() if now is None else now)
            self.over_limit = self.posts = 0

    def _leak(self, now):
        if self._last is not None:
            self._level = max(0.0, self._level - (now - self._last))
        self._last = now

    def _used(self, now):
        """(POSTs the limit counts now, seconds until one more is admitted)."""
        if self.model == "leaky":
            self._leak(now)
            cost = self.window / self.post_limit
            used = self.post_limit - int((self.window - self._level) / cost + 1e-9)
            return used, max(0.0, self._level + cost - self.window)
        if self.model == "fixed":
            index = int((now - self._epoch) // self.window)
            used = self._counts.get(index, 0)
            return used, self._epoch + (index + 1) * self.window - now
        while self._log and self._log[0] <= now - self.window:
            self._log.popleft()
        used = len(self._log)
        wait = self._log[used - self.post_limit] + self.window - now if used >= self.post_limit else 0.0
        return used, wait

    def admit_post(self, now=None):
        """None when admitted, else the seconds until one would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.posts += 1
            if not self.post_limit:
                return None
            used, wait = self._used(now)
            if used >= self.post_limit:
                self.over_limit += 1
                return max(wait, 1e-3)
            if self.model == "leaky":
                self._level += self.window / self.post_limit
            elif self.model == "fixed":
                index = int((now - self._epoch) // self.window)
                self._counts = {index: used + 1}
            else:
                self._log.append(now)
            return None

    def rate_section(self, now=None):
        """/limits "rate" as Rackspace shows it (one POST limit on every URI)."""
        if not self.post_limit:
            return []
        now = time.monotonic() if now is None else now
        with self._lock:
            used, _ = self._used(now)
        unit, per = {1: ("SECOND", 1.0), 3600: ("HOUR", 3600.0), 86400: ("DAY", 86400.0)}.get(
            self.window, ("SECOND", 1.0) if self.window < 60 else ("MINUTE", 60.0))
        return [{"uri": "*", "regex": ".*", "limit": [{
            "verb": "POST", "value": int(round(self.post_limit * per / self.window)),
            "remaining": max(0, self.post_limit - used), "unit": unit,
            "next-available": "1970-01-01T00:00:00Z"}]}]

    def stats(self):
        return {"page_size": self.page_size, "post_limit": self.post_limit,
                "window": self.window, "model": self.model, "posts": self.posts,
                "over_limit": self.over_limit}


LIMITS = Limits()


def over_limit_body(retry_after):
    return json.dumps({"overLimit": {
        "code": 413, "message": "OverLimit Retry...",
        "details": "Error Details...", "retryAfter": str(retry_after)}})


def _patch_paging_and_limits():
    orig_list = RegionalServerCollection.request_list

    def request_list(self, http_get_request, include_details, absolutize_url,
                     name=u"", limit=None, marker=None, changes_since=None):
        try:
            asked = int(limit) if limit is not None else None
        except ValueError:
            asked = limit          # Mimic answers 400
        if not isinstance(asked, str) and (asked is None or asked >= 0):
            limit = str(min(asked if asked is not None else LIMITS.page_size,
                            LIMITS.page_size))
        return orig_list(self, http_get_request, include_details,
                         absolutize_url, name=name, limit=limit,
                         marker=marker, changes_since=changes_since)
    RegionalServerCollection.request_list = request_list

    def list_images_detail(self, request, tenant_id):
        body = json.loads(self._image_collection_for_tenant(tenant_id)
                          .list_images(include_details=True,
                                       absolutize_url=self.url))
        images = body["images"]
        args = {k.decode(): v[0].decode() for k, v in request.args.items()}
        if args.get("marker"):
            ids = [i["id"] for i in images]
            if args["marker"] not in ids:
                request.setResponseCode(400)
                return json.dumps(bad_request(
                    "marker [%s] not found" % args["marker"], request))
            images = images[ids.index(args["marker"]) + 1:]
        try:
            limit = min(int(args.get("limit", LIMITS.page_size)),
                        LIMITS.page_size)
        except ValueError:
            request.setResponseCode(400)
            return json.dumps(bad_request("limit param must be an integer",
                                          request))
        page = images[:limit]
        result = {"images": page}
        if limit and len(images) > limit:
            query = urlencode({"limit": limit, "marker": page[-1]["id"]})
            result["images_links"] = [{
                "href": self.url("v2/%s/images/detail?%s" % (tenant_id,
                                                              query)),
                "rel": "next"}]
        return json.dumps(result)
    _replace_endpoint("get_server_image_list_with_details",
                      list_images_detail)

    from mimic.canned_responses.nova import get_limit as canned_limits

    def get_limit(self, request, tenant_id):
        body = canned_limits()
        body["limits"]["rate"] = LIMITS.rate_section()
        request.setResponseCode(200)
        return json.dumps(body)
    _replace_endpoint("get_limit", get_limit)


def server_info(server):
    v4 = [a.address for a in server.public_ips if isinstance(a, IPv4Address)]
    return {"id": server.server_id, "name": server.server_name,
            "tenant_id": server.collection.tenant_id,
            "region": server.collection.region_name,
            "status": server.status, "key_name": server.key_name,
            "metadata": server.metadata,
            "public_ipv4": v4[0] if v4 else None,
            "addresses": server.addresses_json(),
            # The create request as Nova received it, for tests that check
            # every field the tool sent.
            "request": server.creation_request_json}


_applied = False


def apply():
    global _applied
    if _applied:
        return
    _applied = True
    _patch_keypairs()
    _patch_servers()
    _add_over_limit_behavior()
    _patch_default_region()
    _patch_paging_and_limits()


def _patch_default_region(region="ORD"):
    """Mimic hard-codes RAX-AUTH:defaultRegion DFW; our only region is ORD."""
    from mimic.rest import identity_api
    orig = identity_api.get_token

    def get_token(*a, **kw):
        result = orig(*a, **kw)
        result.get("access", {}).get("user", {})["RAX-AUTH:defaultRegion"] = \
            region
        return result
    identity_api.get_token = get_token
