"""
Mimic runner for the test cloud (no twistd):

    python -m tests.testcloud.mimic_server --swift-url http://127.0.0.1:P \
        --username U --api-key K --ready-file F [--port 0]

Serves Mimic's identity + Nova (region ORD only) with the additions of
mimic_ext.py, Cloud Networks at /cloudNetworks/ORD/v2.0, and catalog entries
pointing cloudFiles at the real Swift.  Extra, test-only endpoints live under
/testcloud/ (never in the catalog):

    GET  /testcloud/info                 port, behaviors URL template
    GET  /testcloud/tokens/<token>       200 {"tenant_id"} or 404 (no side effects)
    GET  /testcloud/servers              all live servers, all tenants
    GET  /testcloud/keypairs             all keypairs, all tenants
    GET  /testcloud/requests             request counters per service
    POST /testcloud/requests/reset
    GET  /testcloud/limits               paging and compute rate limit, 413 count
    POST /testcloud/limits               {"page_size", "post_limit", "window", "model"}
    GET  /testcloud/requests/log?since=N request log: seq, t (time.time() when
                                         the request arrived), method, path,
                                         query, service, status (once answered)
    POST /testcloud/faults               {"match": regex on "METHOD /path?query",
                                         "status", "count", "headers", "body"}:
                                         the next `count` matching requests get
                                         that answer instead of reaching Mimic
    DELETE /testcloud/faults             drop every pending fault

Every request under /mimicking/ and /cloudNetworks/ needs a Mimic-issued
X-Auth-Token (401 otherwise), like the real services.  POST
/identity/v2.0/tokens with the configured username and a wrong apiKey (or,
with --password, a wrong password) is 401.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid

from twisted.internet import reactor
from twisted.web.resource import Resource
from zope.interface import implementer
from twisted.plugin import IPlugin

from mimic.catalog import Endpoint, Entry
from mimic.core import MimicCore
from mimic.imimic import IExternalAPIMock
from mimic.resource import MimicRoot, get_site
from mimic.rest.nova_api import NovaApi, NovaControlApi

from tests.testcloud import cloud_networks, mimic_ext

REGION = "ORD"


@implementer(IExternalAPIMock, IPlugin)
class FixedUrlService:
    """A catalog entry whose URL is given (``{tenant}`` is substituted)."""

    def __init__(self, name, type_, url_template, internal_template=None):
        self.uuid_key = str(uuid.uuid4())
        self.name_key = name
        self.type_key = type_
        self.url_template = url_template
        self.internal_template = internal_template

    def list_templates(self):
        return []

    def catalog_entries(self, tenant_id):
        url = self.url_template.format(tenant=tenant_id)
        internal = (self.internal_template or self.url_template).format(
            tenant=tenant_id)
        return [Entry(tenant_id, self.type_key, self.name_key, [
            Endpoint(tenant_id, REGION, self.uuid_key, external=True,
                     complete_url=url, internal_url=internal)])]

    def uri_for_service(self, region, service_id):
        return self.url_template


class HiddenNovaControlApi(NovaControlApi):
    """Mimic's Nova behaviors API, kept out of the catalog (Rackspace has no
    such service); reachable at /mimicking/<id>/ORD/v2/<tenant>/behaviors."""

    def catalog_entries(self, tenant_id):
        return []


class TestCloudRoot(Resource):
    isLeaf = True

    LOG_LIMIT = 50000

    def __init__(self, core, mimic_resource, extra_resource, username,
                 api_key, password=None):
        super().__init__()
        self.core = core
        self.mimic = mimic_resource
        self.extra = extra_resource
        self.username = username
        self.api_key = api_key
        self.password = password
        self.counts = {}
        self.service_names = {}
        self.log = []
        self.seq = 0
        self.faults = []

    def _record(self, request, path, service):
        self.seq += 1
        entry = {"seq": self.seq, "t": time.time(),
                 "method": request.method.decode(), "path": path,
                 "query": request.uri.decode("utf-8", "replace")
                 .partition("?")[2], "service": service, "status": None}
        self.log.append(entry)
        del self.log[:-self.LOG_LIMIT]

        def answered(_):
            entry["status"] = request.code
        request.notifyFinish().addBoth(answered)

    def _fault(self, request):
        """The first pending fault matching this request, used up by one."""
        line = "%s %s" % (request.method.decode(),
                          request.uri.decode("utf-8", "replace"))
        for fault in self.faults:
            if re.search(fault["match"], line):
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                request.setResponseCode(fault["status"])
                request.setHeader(b"content-type", b"application/json")
                for k, v in (fault.get("headers") or {}).items():
                    request.setHeader(k.encode(), str(v).encode())
                return json.dumps(fault.get("body") or {}).encode()
        return None

    def _service(self, path):
        parts = path.split("/")
        if path.startswith("/identity/"):
            return "identity"
        if path.startswith("/cloudNetworks/"):
            return "network"
        if path.startswith("/mimicking/") and len(parts) > 2:
            api = self.core._uuid_to_api_internal.get(parts[2])
            if isinstance(api, NovaControlApi):
                return "compute-behaviors"
            if isinstance(api, NovaApi):
                return "compute"
        return "other"

    def _deny(self, request, code, message):
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"unauthorized": {"code": code,
                                            "message": message}}).encode()

    def render(self, request):
        path = request.path.decode("utf-8", "replace")
        # Behind a (fault) proxy, Mimic's absolute URLs (catalog, links)
        # must name the address the client used, as the Host header says;
        # Twisted takes the port from the socket otherwise.
        host = (request.getHeader(b"host") or b"").decode()
        if ":" in host:
            name, _, port = host.rpartition(":")
            if port.isdigit():
                request.setHost(name.encode(), int(port))
        if path.startswith("/testcloud/") or path.startswith("/cloudNetworks/"):
            target = self.extra
        else:
            target = self.mimic
        if not path.startswith("/testcloud/"):
            svc = self._service(path)
            self.counts[svc] = self.counts.get(svc, 0) + 1
            self._record(request, path, svc)
            # An injected answer never reaches Mimic, like a failing
            # load balancer's in front of the real service.
            injected = self._fault(request)
            if injected is not None:
                return injected
        if path.startswith("/mimicking/") or path.startswith("/cloudNetworks/"):
            tok = (request.getHeader(b"x-auth-token") or b"").decode()
            if tok not in self.core.sessions._token_to_session:
                return self._deny(request, 401, "No valid token provided. "
                                  "Please use the 'X-Auth-Token' header.")
        if request.method == b"POST" and self._service(path) == "compute":
            wait = mimic_ext.LIMITS.admit_post()
            if wait is not None:
                request.setResponseCode(413)
                request.setHeader(b"content-type", b"application/json")
                request.setHeader(b"retry-after",
                                  str(max(1, int(wait + 0.999))).encode())
                return mimic_ext.over_limit_body(max(1, int(wait + 0.999))
                                                 ).encode()
        if path.rstrip("/") == "/identity/v2.0/tokens" and \
                request.method == b"POST":
            body = request.content.read()
            request.content.seek(0)
            try:
                auth = json.loads(body)["auth"]
                cred = auth.get("RAX-KSKEY:apiKeyCredentials") or {}
                pw = auth.get("passwordCredentials") or {}
            except (ValueError, KeyError, AttributeError, TypeError):
                cred, pw = {}, {}
            if cred.get("username") == self.username and \
                    cred.get("apiKey") != self.api_key:
                return self._deny(request, 401, "Username or api key is "
                                  "invalid.")
            if self.password is not None and \
                    pw.get("username") == self.username and \
                    pw.get("password") != self.password:
                return self._deny(request, 401, "Username or password is "
                                  "invalid.")
        return target.render(request)


def build(port_holder, swift_url, username, api_key, password=None,
          swift_internal_url=None):
    mimic_ext.apply()
    nova = NovaApi(regions=[REGION])
    control = HiddenNovaControlApi(nova_api=nova)

    def base():
        return "http://127.0.0.1:%d" % port_holder[0]

    # ServiceNet: Rackspace's internal object-store URL is another host
    # than the public one; here another Swift proxy port.
    files = FixedUrlService(
        "cloudFiles", "object-store", swift_url.rstrip("/") + "/v1/AUTH_{tenant}",
        swift_internal_url and swift_internal_url.rstrip("/") + "/v1/AUTH_{tenant}")
    networks = FixedUrlService("cloudNetworks", "network", "")
    core = MimicCore(reactor, [nova, control, files, networks])
    root = MimicRoot(core, reactor)

    extra = cloud_networks.make_app(core.sessions, REGION)

    def control_id():
        return [k for k, v in core._uuid_to_api_internal.items()
                if v is control][0]

    @extra.route("/testcloud/info", methods=["GET"])
    def info(request):
        return json.dumps({
            "port": port_holder[0],
            "behaviors_url": base() + "/mimicking/%s/%s/v2/{tenant}/behaviors"
            % (control_id(), REGION)})

    @extra.route("/testcloud/tokens/<string:token>", methods=["GET"])
    def token(request, token):
        s = core.sessions._token_to_session.get(token)
        if s is None:
            request.setResponseCode(404)
            return json.dumps({"itemNotFound": {"code": 404}})
        return json.dumps({"tenant_id": s.tenant_id, "username": s.username})

    @extra.route("/testcloud/servers", methods=["GET"])
    def servers(request):
        return json.dumps([mimic_ext.server_info(s) for s in mimic_ext.SERVERS
                           if s.status != "DELETED"])

    @extra.route("/testcloud/keypairs", methods=["GET"])
    def keypairs(request):
        return json.dumps([
            {"tenant_id": c.tenant_id, "region": c.region_name,
             "name": k.name, "public_key": k.public_key,
             "fingerprint": k.fingerprint}
            for c in mimic_ext.KEYPAIR_COLLECTIONS for k in c.keypairs])

    @extra.route("/testcloud/requests", methods=["GET"])
    def requests(request):
        return json.dumps(site_root.counts)

    @extra.route("/testcloud/limits", methods=["GET"])
    def limits(request):
        return json.dumps(mimic_ext.LIMITS.stats())

    @extra.route("/testcloud/limits", methods=["POST"])
    def set_limits(request):
        mimic_ext.LIMITS.configure(**json.loads(request.content.read()))
        return json.dumps(mimic_ext.LIMITS.stats())

    @extra.route("/testcloud/requests/reset", methods=["POST"])
    def reset(request):
        site_root.counts.clear()
        return json.dumps({})

    @extra.route("/testcloud/requests/log", methods=["GET"])
    def request_log(request):
        since = int((request.args.get(b"since") or [b"0"])[0])
        return json.dumps([e for e in site_root.log if e["seq"] > since])

    @extra.route("/testcloud/faults", methods=["POST"])
    def add_fault(request):
        fault = json.loads(request.content.read())
        fault.setdefault("count", 1)
        re.compile(fault["match"])
        site_root.faults.append(fault)
        return json.dumps({"pending": len(site_root.faults)})

    @extra.route("/testcloud/faults", methods=["DELETE"])
    def clear_faults(request):
        site_root.faults.clear()
        return json.dumps({})

    site_root = TestCloudRoot(core, root.app.resource(), extra.resource(),
                              username, api_key, password)
    return site_root, networks, base


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--swift-url", required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--tenant-id", default=None,
                    help="pre-create the user's session with this tenant")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--network-url", default=None,
                    help="Cloud Networks URL for the catalog (default: this "
                    "server's /cloudNetworks/ORD/v2.0), e.g. a fault proxy's")
    ap.add_argument("--password", default=None,
                    help="the user's password (passwordCredentials)")
    ap.add_argument("--swift-internal-url", default=None,
                    help="the internal (ServiceNet) object-store URL")
    args = ap.parse_args(argv)

    port_holder = [0]
    site_root, networks, base = build(port_holder, args.swift_url,
                                      args.username, args.api_key,
                                      args.password, args.swift_internal_url)
    listening = reactor.listenTCP(args.port, get_site(site_root),
                                  interface="127.0.0.1")
    port_holder[0] = listening.getHost().port
    networks.url_template = (args.network_url or base()) + \
        "/cloudNetworks/%s/v2.0" % REGION
    if args.tenant_id:
        site_root.core.sessions.session_for_api_key(
            args.username, args.api_key, args.tenant_id)
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": port_holder[0], "pid": os.getpid()}, f)
    os.rename(tmp, args.ready_file)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
