"""
Rackspace Cloud Networks (Neutron v2.0 subset) served inside the Mimic process.

Rackspace serves it at ``https://<region>.networks.api.rackspacecloud.com/v2.0``
- no tenant in the URL; the tenant comes from the X-Auth-Token.  We serve it at
``/cloudNetworks/<REGION>/v2.0``.  Resources: networks, subnets, ports
(create, list with Neutron attribute filters, show, delete).  The shared
``public`` and ``private`` (ServiceNet) networks are listed like Rackspace does.
"""
from __future__ import annotations

import ipaddress
import json
import random
import uuid

PUBLIC_NET_ID = "00000000-0000-0000-0000-000000000000"
SERVICENET_ID = "11111111-1111-1111-1111-111111111111"


class NeutronError(Exception):
    def __init__(self, code, type_, message):
        super().__init__(message)
        self.code, self.type, self.message = code, type_, message

    def body(self):
        return {"NeutronError": {"type": self.type, "message": self.message,
                                 "detail": ""}}


def _shared_networks():
    return [
        {"admin_state_up": True, "id": PUBLIC_NET_ID, "name": "public",
         "shared": True, "status": "ACTIVE", "subnets": [],
         "tenant_id": "rackspace"},
        {"admin_state_up": True, "id": SERVICENET_ID, "name": "private",
         "shared": True, "status": "ACTIVE", "subnets": [],
         "tenant_id": "rackspace"},
    ]


class NetworkStore:
    """All Cloud Networks state, keyed by tenant."""

    def __init__(self):
        self.networks = {}   # id -> dict (tenant's isolated networks)
        self.subnets = {}
        self.ports = {}

    # -- helpers ----------------------------------------------------------
    def _mine(self, table, tenant_id):
        return [r for r in table.values() if r["tenant_id"] == tenant_id]

    def network(self, tenant_id, net_id):
        net = self.networks.get(net_id)
        if net is None or net["tenant_id"] != tenant_id:
            raise NeutronError(404, "NetworkNotFound",
                               "Network %s could not be found." % net_id)
        return net

    def subnet(self, tenant_id, subnet_id):
        sn = self.subnets.get(subnet_id)
        if sn is None or sn["tenant_id"] != tenant_id:
            raise NeutronError(404, "SubnetNotFound",
                               "Subnet %s could not be found." % subnet_id)
        return sn

    def port(self, tenant_id, port_id):
        p = self.ports.get(port_id)
        if p is None or p["tenant_id"] != tenant_id:
            raise NeutronError(404, "PortNotFound",
                               "Port %s could not be found." % port_id)
        return p

    # -- networks ---------------------------------------------------------
    def list_networks(self, tenant_id):
        return _shared_networks() + self._mine(self.networks, tenant_id)

    def create_network(self, tenant_id, body):
        if not isinstance(body.get("network"), dict):
            raise NeutronError(400, "BadRequest",
                               "Bad network request: no 'network' object.")
        req = body["network"]
        net = {"id": str(uuid.uuid4()), "name": req.get("name", ""),
               "admin_state_up": req.get("admin_state_up", True),
               "shared": False, "status": "ACTIVE", "subnets": [],
               "tenant_id": tenant_id}
        self.networks[net["id"]] = net
        return net

    def delete_network(self, tenant_id, net_id):
        if net_id in (PUBLIC_NET_ID, SERVICENET_ID):
            raise NeutronError(403, "PolicyNotAuthorized",
                               "Policy doesn't allow delete_network to be "
                               "performed.")
        net = self.network(tenant_id, net_id)
        if any(p["network_id"] == net_id for p in self.ports.values()):
            raise NeutronError(
                409, "NetworkInUse",
                "Unable to complete operation on network %s. There are one "
                "or more ports still in use on the network." % net_id)
        for sid in list(net["subnets"]):
            self.subnets.pop(sid, None)
        del self.networks[net_id]

    # -- subnets ----------------------------------------------------------
    def create_subnet(self, tenant_id, body):
        req = body.get("subnet")
        if not isinstance(req, dict) or "network_id" not in req \
                or "cidr" not in req:
            raise NeutronError(400, "BadRequest",
                               "Bad subnet request: network_id and cidr are "
                               "required.")
        net = self.network(tenant_id, req["network_id"])
        try:
            cidr = ipaddress.ip_network(req["cidr"], strict=False)
        except ValueError:
            raise NeutronError(400, "BadRequest", "Invalid input for cidr. "
                               "Reason: '%s' is not a valid IP subnet."
                               % req["cidr"])
        hosts = list(cidr.hosts()) if cidr.num_addresses <= 65536 else None
        pools = req.get("allocation_pools") or (
            [{"start": str(hosts[0]), "end": str(hosts[-1])}] if hosts else [])
        sn = {"id": str(uuid.uuid4()), "name": req.get("name", ""),
              "network_id": net["id"], "tenant_id": tenant_id,
              "cidr": str(cidr), "ip_version": req.get("ip_version", 4),
              "gateway_ip": req.get("gateway_ip"), "enable_dhcp": False,
              "allocation_pools": pools,
              "dns_nameservers": req.get("dns_nameservers", []),
              "host_routes": req.get("host_routes", [])}
        self.subnets[sn["id"]] = sn
        net["subnets"].append(sn["id"])
        return sn

    def delete_subnet(self, tenant_id, subnet_id):
        sn = self.subnet(tenant_id, subnet_id)
        if any(ip["subnet_id"] == subnet_id
               for p in self.ports.values() for ip in p["fixed_ips"]):
            raise NeutronError(
                409, "SubnetInUse",
                "Unable to complete operation on subnet %s: One or more "
                "ports have an IP allocation from this subnet." % subnet_id)
        del self.subnets[subnet_id]
        net = self.networks.get(sn["network_id"])
        if net and subnet_id in net["subnets"]:
            net["subnets"].remove(subnet_id)

    # -- ports ------------------------------------------------------------
    def _allocate_ip(self, sn):
        used = {ip["ip_address"] for p in self.ports.values()
                for ip in p["fixed_ips"] if ip["subnet_id"] == sn["id"]}
        if sn.get("gateway_ip"):
            used.add(sn["gateway_ip"])
        for pool in sn["allocation_pools"]:
            a = ipaddress.ip_address(pool["start"])
            end = ipaddress.ip_address(pool["end"])
            while a <= end:
                if str(a) not in used:
                    return str(a)
                a += 1
        raise NeutronError(409, "IpAddressGenerationFailure",
                           "No more IP addresses available on network %s."
                           % sn["network_id"])

    def create_port(self, tenant_id, body, device_id="", device_owner=""):
        req = body.get("port")
        if not isinstance(req, dict) or "network_id" not in req:
            raise NeutronError(400, "BadRequest",
                               "Bad port request: network_id is required.")
        net = self.network(tenant_id, req["network_id"])
        fixed = []
        for want in req.get("fixed_ips") or []:
            sn = self.subnet(tenant_id, want["subnet_id"])
            fixed.append({"subnet_id": sn["id"], "ip_address":
                          want.get("ip_address") or self._allocate_ip(sn)})
        if not fixed and net["subnets"]:
            sn = self.subnets[net["subnets"][0]]
            fixed.append({"subnet_id": sn["id"],
                          "ip_address": self._allocate_ip(sn)})
        mac = "bc:76:4e:%02x:%02x:%02x" % tuple(
            random.randrange(256) for _ in range(3))
        port = {"id": str(uuid.uuid4()), "name": req.get("name", ""),
                "network_id": net["id"], "tenant_id": tenant_id,
                "admin_state_up": True, "status": "ACTIVE",
                "mac_address": mac, "fixed_ips": fixed,
                "device_id": req.get("device_id", device_id),
                "device_owner": req.get("device_owner", device_owner),
                "security_groups": []}
        self.ports[port["id"]] = port
        return port

    def delete_port(self, tenant_id, port_id):
        self.port(tenant_id, port_id)
        del self.ports[port_id]

    def ports_for_device(self, device_id):
        return [p for p in self.ports.values() if p["device_id"] == device_id]


def apply_filters(items, args):
    """Neutron-style filters: ?attr=value (repeat = OR); paging/fields ignored."""
    for key, values in args.items():
        if key in ("fields", "limit", "marker", "page_reverse", "sort_key",
                   "sort_dir"):
            continue
        wanted = {v.lower() for v in values}

        def match(item, key=key, wanted=wanted):
            v = item.get(key)
            if v is None or isinstance(v, (list, dict)):
                return False
            return str(v).lower() in wanted if isinstance(v, bool) \
                else str(v) in {w for w in values}
        items = [i for i in items if match(i)]
    return items


STORE = NetworkStore()


def make_app(sessions, region="ORD"):
    """Klein app for /cloudNetworks/<region>/v2.0 (tenant from the token)."""
    from mimic.rest.mimicapp import MimicApp

    app = MimicApp()
    base = "/cloudNetworks/%s/v2.0" % region

    def tenant(request):
        tok = (request.getHeader(b"x-auth-token") or b"").decode()
        s = sessions._token_to_session.get(tok)
        return s.tenant_id if s else None

    def handle(request, fn, ok=200):
        request.setHeader(b"content-type", b"application/json")
        t = tenant(request)
        if t is None:
            request.setResponseCode(401)
            return json.dumps({"unauthorized": {
                "code": 401, "message": "No valid token provided."}})
        try:
            if request.method in (b"POST", b"PUT"):
                try:
                    body = json.loads(request.content.read() or b"{}")
                except ValueError:
                    raise NeutronError(400, "BadRequest",
                                       "Malformed request body")
                result = fn(t, body)
            else:
                result = fn(t)
        except NeutronError as e:
            request.setResponseCode(e.code)
            return json.dumps(e.body())
        request.setResponseCode(ok)
        if ok == 204:
            return b""
        return json.dumps(result)

    def args(request):
        return {k.decode(): [v.decode() for v in vs]
                for k, vs in request.args.items()}

    def root_url(request):
        host = (request.getHeader(b"host") or b"127.0.0.1").decode()
        return "http://%s/cloudNetworks/%s" % (host, region)

    @app.route("/cloudNetworks/%s" % region, methods=["GET"],
               endpoint="versions")
    def versions(request):
        """Neutron version discovery (keystoneauth strips /v2.0 for it)."""
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"versions": [{
            "id": "v2.0", "status": "CURRENT",
            "links": [{"href": root_url(request) + "/v2.0/",
                       "rel": "self"}]}]})

    @app.route(base, methods=["GET"], endpoint="v2_resources")
    def resources(request):
        def body(t):
            return {"resources": [
                {"name": n[:-1], "collection": n, "links": [{
                    "href": root_url(request) + "/v2.0/" + n,
                    "rel": "self"}]}
                for n in ("networks", "subnets", "ports")]}
        return handle(request, body)

    kinds = {
        "networks": ("network", STORE.list_networks, STORE.network,
                     STORE.create_network, STORE.delete_network),
        "subnets": ("subnet", lambda t: STORE._mine(STORE.subnets, t),
                    STORE.subnet, STORE.create_subnet, STORE.delete_subnet),
        "ports": ("port", lambda t: STORE._mine(STORE.ports, t),
                  STORE.port, STORE.create_port, STORE.delete_port),
    }
    for plural, (single, lister, getter, creator, deleter) in kinds.items():
        def register(plural=plural, single=single, lister=lister,
                     getter=getter, creator=creator, deleter=deleter):
            @app.route(base + "/" + plural, methods=["GET"],
                       endpoint="list_" + plural)
            def _list(request):
                return handle(request, lambda t: {
                    plural: apply_filters(lister(t), args(request))})

            @app.route(base + "/" + plural, methods=["POST"],
                       endpoint="create_" + plural)
            def _create(request):
                return handle(request, lambda t, b: {single: creator(t, b)},
                              ok=201)

            @app.route(base + "/" + plural + "/<string:rid>",
                       methods=["GET"], endpoint="get_" + plural)
            def _get(request, rid):
                def show(t):
                    if plural == "networks":
                        for n in _shared_networks():
                            if n["id"] == rid:
                                return {single: n}
                    return {single: getter(t, rid)}
                return handle(request, show)

            @app.route(base + "/" + plural + "/<string:rid>",
                       methods=["DELETE"], endpoint="delete_" + plural)
            def _delete(request, rid):
                return handle(request, lambda t: deleter(t, rid), ok=204)
        register()
    return app
