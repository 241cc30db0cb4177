"""Neutron: the only module that calls the network API, on either cloud:
Rackspace's legacy Cloud Networks (networks, subnets, ports) and OpenStack
Neutron (also routers, security groups, floating IPs, tags).

The endpoint carries no tenant (https://ord.networks.api.rackspacecloud.com/v2.0);
the token names it. Every request retries transient failures
(session.RetryingSession); creates blindly only on 408/413/429: a 5xx, reset
or timeout on a create is followed by a look-up by name (Neutron allows
duplicate names, so a blind retry could leave two networks) and only then
by another attempt (calls.create_or_find).

Tags follow a create in a PUT (Neutron takes `tags` in a POST only for
ports, and only with an ML2 extension driver that is off by default), so a
create whose answer was lost left the resource untagged: the look-up after
it matches by name alone, then tags it. Callers create only after finding
no resource of that name at all (kind_openstack.one_of_ours), so a
same-named one found then is the one just made.
"""

import time


from . import calls
from ..support import lazy
from ..support.errors import CloudError

ks_exc = lazy.module("keystoneauth1.exceptions")


class InUse(CloudError):
    """409 on a delete: the network or subnet still has ports (Nova lets go
    of a deleted server's ports a little after the server is gone)."""


class CloudNetworks:
    def __init__(self, cloud):
        self.cloud = cloud
        self.endpoint = cloud.endpoint("network")
        self.api = cloud.adapter("network")

    def _call(self, what, adapter, method, path, **kwargs):
        try:
            return adapter.request(path, method, **kwargs).json()
        except ks_exc.HttpError as exc:
            calls.fail(exc, what)
        except ks_exc.ConnectionError as exc:
            raise CloudError(f"{what}: cannot reach Cloud Networks at {self.endpoint} ({exc})") from None

    def networks(self, name):
        """Networks labelled `name` (the server filters; we check again)."""
        body = self._call(f"listing Cloud Networks named {name}", self.api, "GET", "/networks",
                          params={"name": name})
        return [n for n in body.get("networks") or [] if n.get("name") == name]

    def subnets(self, network_id):
        body = self._call(f"listing subnets of Cloud Network {network_id}", self.api, "GET", "/subnets",
                          params={"network_id": network_id})
        return [sn for sn in body.get("subnets") or [] if sn.get("network_id") == network_id]

    def ports(self, network_id):
        body = self._call(f"listing ports of Cloud Network {network_id}", self.api, "GET", "/ports",
                          params={"network_id": network_id})
        return [p for p in body.get("ports") or [] if p.get("network_id") == network_id]

    def _delete(self, kind, resource_id):
        """DELETE one resource: True when deleted, False when already gone.
        A 409 (still in use) raises InUse, for `down` to retry."""
        try:
            self.api.delete(f"/{_plural(kind)}/{resource_id}")
        except ks_exc.NotFound:
            return False
        except ks_exc.Conflict as exc:
            raise InUse(f"deleting {kind} {resource_id}: {calls.describe(exc)}") from None
        except ks_exc.HttpError as exc:
            calls.fail(exc, f"deleting {kind} {resource_id}")
        except ks_exc.ConnectionError as exc:
            raise CloudError(f"deleting {kind} {resource_id}: cannot reach the network service at "
                             f"{self.endpoint} ({exc})") from None
        return True

    def delete_port(self, port_id):
        return self._delete("port", port_id)

    def delete_subnet(self, subnet_id):
        return self._delete("subnet", subnet_id)

    def delete_network(self, network_id):
        return self._delete("network", network_id)

    def _create(self, what, path, body, key, find, sleep=time.sleep):
        def create():
            try:
                return self.api.post(path, json=body).json()[key]
            except ks_exc.HttpError as exc:
                if not _ambiguous(exc):
                    calls.fail(exc, what)
                raise

        return calls.create_or_find(what, create, find, _ambiguous, sleep=sleep)

    def create_network(self, name, tags=(), sleep=time.sleep):
        def find():
            found = self.networks(name)
            return found[0] if len(found) == 1 else None

        net = self._create(f"creating network {name}", "/networks", {"network": {"name": name}}, "network", find, sleep)
        return self.tag("network", net, tags)

    def create_subnet(self, network_id, name, cidr, dns_nameservers=(), tags=(), sleep=time.sleep):
        def find():
            return next((sn for sn in self.subnets(network_id) if sn.get("cidr") == str(cidr)), None)

        body = {"subnet": {"network_id": network_id, "ip_version": 4, "cidr": str(cidr), "name": name}}
        if dns_nameservers:
            body["subnet"]["dns_nameservers"] = [str(a) for a in dns_nameservers]
        sn = self._create(f"creating subnet {cidr} on network {network_id}", "/subnets", body, "subnet", find, sleep)
        return self.tag("subnet", sn, tags)

    # -- Neutron tags (OpenStack; Rackspace's legacy Cloud Networks has none) --

    def tag(self, kind, resource, tags):
        """Put `tags` on a resource (PUT replaces the set: ours are added to
        any it has); returns the resource with them."""
        if not tags or set(tags) <= set(resource.get("tags") or []):
            return resource
        wanted = sorted(set(resource.get("tags") or []) | set(tags))
        self._call(f"tagging {kind} {resource.get('name') or resource['id']}", self.api, "PUT",
                   f"/{_plural(kind)}/{resource['id']}/tags", json={"tags": wanted})
        return dict(resource, tags=wanted)

    def _list(self, kind, what, **params):
        body = self._call(what, self.api, "GET", f"/{_plural(kind)}",
                          params={k: v for k, v in params.items() if v is not None})
        return body.get(_plural(kind).replace("-", "_")) or []

    def tagged(self, kind, tag, **params):
        """Resources of `kind` ('network', 'subnet', 'router', 'port',
        'floatingip', 'security-group') carrying `tag` (checked again here:
        a service that ignores the filter must not hand us another's)."""
        found = self._list(kind, f"listing {kind}s tagged {tag}", tags=tag, **params)
        return [r for r in found if tag in (r.get("tags") or [])]

    # -- external network, routers -----------------------------------------

    def external_network(self, ref):
        """The external network `ref` (name or ID) that routers use."""
        found = [n for n in self._list("network", f"listing external networks", **{"router:external": "true"})]
        match = [n for n in found if n.get("id") == ref] or [n for n in found if n.get("name") == ref]
        if len(match) == 1:
            return match[0]
        known = ", ".join(sorted(n.get("name") or n["id"] for n in found)) or "none"
        if len(match) > 1:
            raise CloudError(f"several external networks are named {ref}; set EXTERNAL_NETWORK to one ID "
                             f"({', '.join(n['id'] for n in match)})")
        raise CloudError(f"no external network {ref} (EXTERNAL_NETWORK); this project sees: {known}")

    def routers(self, name):
        return [r for r in self._list("router", f"listing routers named {name}", name=name) if r.get("name") == name]

    def create_router(self, name, external_network_id, tags=()):
        def find():
            found = self.routers(name)
            return found[0] if len(found) == 1 else None

        body = {"router": {"name": name, "external_gateway_info": {"network_id": external_network_id}}}
        return self.tag("router", self._create(f"creating router {name}", "/routers", body, "router", find), tags)

    def add_router_interface(self, router_id, subnet_id):
        """Plug the subnet into the router; True when added, False when it
        was already (Neutron answers 400 for a subnet already on it)."""
        def plugged():
            return any(ip.get("subnet_id") == subnet_id
                       for port in self._list("port", f"listing ports of router {router_id}", device_id=router_id)
                       for ip in port.get("fixed_ips") or [])

        if plugged():
            return False
        try:
            self.api.put(f"/routers/{router_id}/add_router_interface", json={"subnet_id": subnet_id})
        except ks_exc.HttpError as exc:
            # A retried PUT whose first try went through is refused (400):
            # what counts is whether the subnet is on the router now.
            if not plugged():
                calls.fail(exc, f"adding subnet {subnet_id} to router {router_id}")
        return True

    def remove_router_interface(self, router_id, subnet_id):
        try:
            self.api.put(f"/routers/{router_id}/remove_router_interface", json={"subnet_id": subnet_id})
        except ks_exc.NotFound:
            return False
        except ks_exc.Conflict as exc:
            raise InUse(f"detaching subnet {subnet_id} from router {router_id}: {calls.describe(exc)}") from None
        except ks_exc.HttpError as exc:
            calls.fail(exc, f"detaching subnet {subnet_id} from router {router_id}")
        return True

    def delete_router(self, router_id):
        return self._delete("router", router_id)

    # -- security groups ---------------------------------------------------

    def security_groups(self, name):
        return [g for g in self._list("security-group", f"listing security groups named {name}", name=name)
                if g.get("name") == name]

    def create_security_group(self, name, description, tags=()):
        def find():
            found = self.security_groups(name)
            return found[0] if len(found) == 1 else None

        body = {"security_group": {"name": name, "description": description}}
        group = self._create(f"creating security group {name}", "/security-groups", body, "security_group", find)
        return self.tag("security-group", group, tags)

    def rules(self, group_id):
        return self._list("security-group-rule", f"listing the rules of security group {group_id}",
                          security_group_id=group_id)

    def create_rule(self, group_id, rule, sleep=time.sleep):
        """Add one rule (a dict of Neutron's fields); an existing identical
        rule (409) counts as made. When the answer is lost, the look-up finds
        the rule if Neutron made it; else the POST runs again (and a 409
        then says the first one made it after all)."""
        what = f"adding a rule to security group {group_id}"
        body = {"security_group_rule": dict(rule, security_group_id=group_id)}

        def create():
            try:
                return self.api.post("/security-group-rules", json=body).json()["security_group_rule"]
            except ks_exc.Conflict:
                return None
            except ks_exc.HttpError as exc:
                if not _ambiguous(exc):
                    calls.fail(exc, what)
                raise

        def find():
            return next((r for r in self.rules(group_id) if all(r.get(k) == v for k, v in rule.items())), None)

        return calls.create_or_find(what, create, find, _ambiguous, sleep=sleep)

    def delete_security_group(self, group_id):
        return self._delete("security-group", group_id)

    # -- ports and floating IPs ----------------------------------------------

    def ports_named(self, name, network_id=None):
        return [p for p in self._list("port", f"listing ports named {name}", name=name, network_id=network_id)
                if p.get("name") == name]

    def create_port(self, name, network_id, subnet_id, security_group_ids, allowed_address_pairs=(), tags=()):
        def find():
            found = self.ports_named(name, network_id)
            return found[0] if len(found) == 1 else None

        body = {"port": {"name": name, "network_id": network_id, "fixed_ips": [{"subnet_id": subnet_id}],
                         "security_groups": list(security_group_ids)}}
        if allowed_address_pairs:
            body["port"]["allowed_address_pairs"] = [{"ip_address": str(a)} for a in allowed_address_pairs]
        return self.tag("port", self._create(f"creating port {name}", "/ports", body, "port", find), tags)

    def floating_ips(self, port_id=None, tag=None):
        found = self._list("floatingip", "listing floating IPs", port_id=port_id, tags=tag)
        return [f for f in found if (port_id is None or f.get("port_id") == port_id)
                and (tag is None or tag in (f.get("tags") or []))]

    def create_floating_ip(self, external_network_id, port_id, description, tags=()):
        def find():
            found = self.floating_ips(port_id=port_id)
            return found[0] if found else None

        body = {"floatingip": {"floating_network_id": external_network_id, "port_id": port_id,
                               "description": description}}
        fip = self._create(f"allocating a floating IP for port {port_id}", "/floatingips", body, "floatingip", find)
        return self.tag("floatingip", fip, tags)

    def delete_floating_ip(self, fip_id):
        return self._delete("floatingip", fip_id)


def _plural(kind):
    """URL collection of a resource kind: 'security-group' -> 'security-groups'."""
    return kind + "s"


def _ambiguous(exc):
    """Did the create perhaps happen although we got no success answer?"""
    if isinstance(exc, ks_exc.HttpError):
        return exc.http_status >= 500 or exc.http_status == 408
    return isinstance(exc, ks_exc.ConnectionError)
