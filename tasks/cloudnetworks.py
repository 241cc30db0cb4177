"""Cloud Networks (Rackspace's Neutron v2.0): the only module that calls the
network API.

The endpoint carries no tenant (https://ord.networks.api.rackspacecloud.com/v2.0);
the token names it. Every request retries transient failures
(cloud.RetryingSession); creates blindly only on 408/413/429: a 5xx, reset
or timeout on a create is followed by a look-up by name (Neutron allows
duplicate names, so a blind retry could leave two networks) and only then
by another attempt (cloud.create_or_find).
"""

import time


from . import cloud as cloudmod
from . import lazy
from .errors import CloudError

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
            cloudmod.fail(exc, what)
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
            self.api.delete(f"/{kind}s/{resource_id}")
        except ks_exc.NotFound:
            return False
        except ks_exc.Conflict as exc:
            raise InUse(f"deleting {kind} {resource_id}: {cloudmod.describe(exc)}") from None
        except ks_exc.HttpError as exc:
            cloudmod.fail(exc, f"deleting {kind} {resource_id}")
        except ks_exc.ConnectionError as exc:
            raise CloudError(f"deleting {kind} {resource_id}: cannot reach Cloud Networks at "
                             f"{self.endpoint} ({exc})") from None
        return True

    def delete_port(self, port_id):
        return self._delete("port", port_id)

    def delete_subnet(self, subnet_id):
        return self._delete("subnet", subnet_id)

    def delete_network(self, network_id):
        return self._delete("network", network_id)

    def _create(self, what, path, body, key, find, sleep):
        def create():
            try:
                return self.api.post(path, json=body).json()[key]
            except ks_exc.HttpError as exc:
                if not _ambiguous(exc):
                    cloudmod.fail(exc, what)
                raise

        return cloudmod.create_or_find(what, create, find, _ambiguous, sleep=sleep)

    def create_network(self, name, sleep=time.sleep):
        def find():
            found = self.networks(name)
            return found[0] if found else None

        return self._create(f"creating Cloud Network {name}", "/networks", {"network": {"name": name}},
                            "network", find, sleep)

    def create_subnet(self, network_id, name, cidr, sleep=time.sleep):
        def find():
            return next((sn for sn in self.subnets(network_id) if sn.get("cidr") == str(cidr)), None)

        body = {"subnet": {"network_id": network_id, "ip_version": 4, "cidr": str(cidr), "name": name}}
        return self._create(f"creating subnet {cidr} on Cloud Network {network_id}", "/subnets", body,
                            "subnet", find, sleep)


def _ambiguous(exc):
    """Did the create perhaps happen although we got no success answer?"""
    if isinstance(exc, ks_exc.HttpError):
        return exc.http_status >= 500 or exc.http_status == 408
    return isinstance(exc, ks_exc.ConnectionError)
