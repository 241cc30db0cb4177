"""
Servers and keys of the OpenStack bed, for the SSH stand-ins
(tests/testcloud/lookup.py with SOURCE "osbed:<state.json>").  Asks Nova
and Neutron on their internal endpoints with the bed's admin credentials;
the state file (0600) holds those.  Standard library only: it runs in
short-lived helper processes of sshd.
"""
import json
import os
import time
import urllib.request


def _request(url, token=None, body=None, headers=None):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers, json.load(r)


def _token(state):
    """Admin token, cached in a 0600 file next to the state for 10 min."""
    cache = state["token_cache"]
    try:
        with open(cache) as f:
            token, until = json.load(f)
        if until > time.time():
            return token
    except (OSError, ValueError):
        pass
    hdrs, _ = _request(state["identity"] + "/auth/tokens", body={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": state["admin_password"],
            "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin",
                              "domain": {"name": "Default"}}}}})
    token = hdrs["X-Subject-Token"]
    tmp = "%s.%d" % (cache, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([token, time.time() + 600], f)
    os.replace(tmp, cache)
    return token


def _state(path):
    with open(path) as f:
        return json.load(f)


def servers(path):
    state = _state(path)
    tok = _token(state)
    _, nova = _request(state["compute"] + "/servers/detail?all_tenants=1",
                       tok)
    _, ports = _request(state["network"] + "/v2.0/ports", tok)
    _, fips = _request(state["network"] + "/v2.0/floatingips", tok)
    floating = {f["port_id"]: f["floating_ip_address"]
                for f in fips["floatingips"] if f["port_id"]}
    out = []
    for s in nova["servers"]:
        mine = [p for p in ports["ports"] if p["device_id"] == s["id"]]
        public = [floating[p["id"]] for p in mine if p["id"] in floating]
        out.append({
            "id": s["id"], "name": s["name"], "status": s["status"],
            "tenant_id": s["tenant_id"],
            "public_ipv4": public[0] if public else None,
            "fixed": [{"ip": ip["ip_address"], "network_id": p["network_id"]}
                      for p in mine for ip in p["fixed_ips"]]})
    return out


def keypairs(path):
    state = _state(path)
    tok = _token(state)
    out = []
    for user_id in state["user_ids"]:
        _, body = _request(state["compute"] + "/os-keypairs?user_id=" +
                           user_id, tok,
                           headers={"OpenStack-API-Version": "compute 2.10"})
        out.extend({"public_key": k["keypair"]["public_key"]}
                   for k in body["keypairs"])
    return out
