"""The legacy Rackspace cloud (Identity v2.0): what differs from OpenStack.

Every server gets three NICs in this order: PublicNet (eth0: SSH, kubectl,
the internet), ServiceNet (eth1: the release download from Cloud Files
without billing) and the cluster's isolated Cloud Network (eth2: cluster
traffic: the API server's advertised address, the kubelet's node IP, etcd,
the join address; and pod traffic, flannel host-gw). The Cloud Network
address is found by NOVA_NETWORK's CIDR (Server.ipv4_in). Public addresses
come from Nova once a server exists; there are no security groups, so the
servers' own nftables firewall (kube-firewall.service) closes PublicNet.
See kinds/__init__.py for what each name here means.
"""

import time
from dataclasses import dataclass

from . import base
from ..model import names
from ..support import progress
from ..support.errors import CloudError
from .base import Attach, Reach, Target

NAME = "legacy"

# Cloud Images imports only VHDs from Cloud Files (an import task), for its
# Xen hosts: `inv image`'s qcow2 into Glance cannot work here.
IMAGE_UPLOAD_REFUSED = ("legacy Rackspace (Identity v2.0) cannot take a Flatcar image this way: Cloud Images "
                        "imports only VHDs from Cloud Files, for Xen; see README, \"Flatcar on legacy Rackspace\"")
NO_IMAGE_TODO = 'set KUBE_IMAGE to a Flatcar image of yours (README: "Flatcar on legacy Rackspace")'
# Cloud Networks have no port security and no encapsulation of their own:
# plain routes (host-gw) carry pod packets at the interface's full MTU.
POD_NETWORK_DEFAULT = "host-gw"
POD_NETWORK_WHY = "the legacy default: the Cloud Network routes pod addresses as they are"


def pod_network(s):
    return base.pod_network(s, POD_NETWORK_DEFAULT, POD_NETWORK_WHY)


@dataclass(frozen=True)
class NetworkPlan:
    action: str            # "reuse", "create", "add-subnet"
    network_id: str = ""


def network_plan(label, cidr, networks, subnets_of):
    """Pure: what to do, given the networks labelled `label` and
    `subnets_of(network_id)` -> that network's subnets. A network of our label
    with another CIDR is an error, never a silent reuse."""
    if len(networks) > 1:
        ids = ", ".join(n["id"] for n in networks)
        raise CloudError(f"several Cloud Networks are labelled {label} ({ids}); delete the extra ones "
                         "or set NOVA_NETWORK_LABEL to another label")
    if not networks:
        return NetworkPlan("create")
    net = networks[0]
    cidrs = sorted({sn.get("cidr") for sn in subnets_of(net["id"]) if sn.get("ip_version", 4) == 4})
    if not cidrs:
        return NetworkPlan("add-subnet", net["id"])
    if cidrs != [str(cidr)]:
        raise CloudError(
            f"Cloud Network {label} ({net['id']}) has the subnet {', '.join(cidrs)}, but NOVA_NETWORK is {cidr}; "
            f"set NOVA_NETWORK={cidrs[0]}, or set NOVA_NETWORK_LABEL to another label, or delete that network")
    return NetworkPlan("reuse", net["id"])


def prepare_network(s, cloud):
    """The Cloud Network (NOVA_NETWORK_LABEL, one subnet of NOVA_NETWORK),
    created when missing."""

    api = cloud.network
    label = names.network_label(s)
    decision = network_plan(label, s.NOVA_NETWORK, api.networks(label), api.subnets)
    network_id = decision.network_id
    if decision.action == "create":
        network_id = api.create_network(label)["id"]
        progress.info(f"created Cloud Network {label} ({network_id})")
    if decision.action in ("create", "add-subnet"):
        api.create_subnet(network_id, names.subnet_name(s), s.NOVA_NETWORK)
        progress.info(f"created subnet {s.NOVA_NETWORK} on {label}")
    else:
        progress.info(f"Cloud Network {label} ({network_id}, {s.NOVA_NETWORK}) exists; reusing it")
    return Target(network_id=network_id)


def attach(s, cloud, target, want):
    # NIC order is interface order: eth0 PublicNet, eth1 ServiceNet, eth2 ours.
    return Attach(nics=tuple({"net-id": net} for net in (names.PUBLICNET, names.SERVICENET, target.network_id)))


def flavor_choice(s, cloud):
    """The flavor settings are used as they are."""
    return ()


def reach(s, cloud, found):
    """From Nova's addresses: SSH and kubectl on PublicNet, cluster traffic
    on the Cloud Network (the address inside NOVA_NETWORK)."""
    import dataclasses

    return [dataclasses.replace(srv, reach=Reach(address=srv.ipv4("public") or "",
                                                 cluster_ip=srv.ipv4_in(s.NOVA_NETWORK) or "",
                                                 public_ip=srv.ipv4("public") or ""))
            for srv in found]


def exposure(s):
    """What the host firewall (firewall.nft) lets in on PublicNet."""
    lines = ["SSH (22) on every server and the API server (6443) on the master, from everywhere "
             "(PublicNet; the servers' host firewall, the legacy cloud has no security groups)"]
    if s.PUBLIC_NODEPORTS:
        lines.append("NodePorts (30000-32767, TCP and UDP) on every server (PUBLIC_NODEPORTS=true)")
    return lines


def network_rows(s, cloud):

    api = cloud.network
    label = names.network_label(s)
    networks = api.networks(label)
    rows = []
    if networks:
        for net in networks:
            cidrs = ", ".join(sn.get("cidr", "?") for sn in api.subnets(net["id"])) or "no subnet"
            rows.append(("network", label, f"{net['id']} {cidrs}"))
    else:
        rows.append(("network", label, "none"))
    decision = network_plan(label, s.NOVA_NETWORK, networks, api.subnets)
    return rows, {"network": decision.action}


def inventory(s, cloud):
    """The network resources `down` would remove, as short descriptions."""

    nets = cloud.network.networks(names.network_label(s))
    return [f"Cloud Network {names.network_label(s)}"] if nets else []


def foreign_ports(ports, our_server_ids, server_exists):
    """Ports of live servers that are not this cluster's: a network labelled
    by NOVA_NETWORK_LABEL may be shared, and down never cuts another's server
    off. Ports of servers already gone are leftovers, not foreign."""
    return [p for p in ports if p.get("device_id") and p["device_id"] not in our_server_ids
            and server_exists(p["device_id"])]


def remove_network(s, cloud, server_ids, server_exists, timeout=base.RELEASE_TIMEOUT, sleep=time.sleep):
    """Each Cloud Network labelled NOVA_NETWORK_LABEL: its ports, subnets and
    the network, retried while Cloud Networks says it is still in use. A
    network other servers still use is left in place, and said so."""

    api = cloud.network
    removed = []
    for net in api.networks(names.network_label(s)):
        label = net.get("name") or names.network_label(s)
        base.while_held(f"Cloud Network {label} released",
                        lambda: _remove_one(api, net, label, server_ids, server_exists, removed),
                        timeout, sleep)
    return removed


def _remove_one(api, network, label, our_server_ids, server_exists, removed):
    ports = api.ports(network["id"])
    others = foreign_ports(ports, our_server_ids, server_exists)
    if others:
        devices = sorted({p["device_id"] for p in others})
        removed.append(f"(kept Cloud Network {label}: still used by server(s) {', '.join(devices)})")
        return
    for port in ports:
        if api.delete_port(port["id"]):
            removed.append(f"port {port['id']} on {label}")
    for subnet in api.subnets(network["id"]):
        if api.delete_subnet(subnet["id"]):
            removed.append(f"subnet {subnet.get('cidr', subnet['id'])} of {label}")
    if api.delete_network(network["id"]):
        removed.append(f"Cloud Network {label} ({network['id']})")


def release_endpoint(s, cloud, storage_url):
    """ServiceNet (the storage's internal endpoint, not billed) when
    CLOUDFILES_SERVICENET, else the public one."""
    if not s.CLOUDFILES_SERVICENET:
        return storage_url
    from ..support.errors import CloudError

    try:
        return cloud.endpoint("object-store", interface="internal")
    except CloudError as exc:
        raise CloudError(f"{exc.reason}; no ServiceNet endpoint for Cloud Files: set CLOUDFILES_SERVICENET=false "
                         "to hand the servers the public URL") from None


def template_facts(s, role, attach=None):
    return {
        "kind": NAME,
        # Found at boot: the address on PublicNet (eth0).
        "public_ip": None,
        # ServiceNet's address, recorded in addresses.env; cluster traffic
        # uses the Cloud Network's (kr_cloud_network_address) on every kind.
        "public_address_fn": "kr_public_address",
        "cluster_address_fn": "kr_servicenet_address",
        "cluster_network_name": "ServiceNet",
        # No security groups: the nftables host firewall (kube-firewall.service)
        # closes PublicNet.
        "host_firewall": True,
        "flannel_backend": pod_network(s)[0],
    }


