"""
Where the SSH stand-ins (ssh_route, ssh_authkeys, ssh_forcecommand, stubs)
look up servers and keys.  SOURCE is the legacy test cloud's Mimic URL, or
"osbed:<state.json>" for the OpenStack bed (tests/osbed/lookup.py asks its
Nova and Neutron).

servers(source): [{"id", "name", "status", "tenant_id", "public_ipv4",
                   "fixed": [{"ip", "network_id"}]}]   (fixed: OpenStack only)
keypairs(source): [{"public_key"}]
"""
import json
import os
import sys
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _osbed():
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    from tests.osbed import lookup
    return lookup


def _mimic(source, path):
    with urllib.request.urlopen(source + path, timeout=5) as r:
        return json.load(r)


def servers(source):
    if source.startswith("osbed:"):
        return _osbed().servers(source[len("osbed:"):])
    return _mimic(source, "/testcloud/servers")


def keypairs(source):
    if source.startswith("osbed:"):
        return _osbed().keypairs(source[len("osbed:"):])
    return _mimic(source, "/testcloud/keypairs")
