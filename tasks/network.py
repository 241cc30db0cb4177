"""inv network: find or create the Cloud Network that pod traffic crosses
(eth2 on every server), labelled INSTANCE_PREFIX-pool-net unless
NOVA_NETWORK_LABEL says otherwise, with one subnet of NOVA_NETWORK."""

from dataclasses import dataclass

from invoke import task

from . import lazy, lock, names, progress
from .errors import CloudError

# Loaded when a task runs, not by `inv --list` (see tasks/lazy.py).
_cloud = lazy.module("tasks.cloud")
settings = lazy.module("tasks.settings")


@dataclass(frozen=True)
class NetworkPlan:
    action: str            # "reuse", "create", "add-subnet"
    network_id: str = ""


def plan(label, cidr, networks, subnets_of):
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


def ensure(s, cloud):
    """The Cloud Network's id; creates the network and its subnet when missing."""
    from .cloudnetworks import CloudNetworks

    api = CloudNetworks(cloud)
    label = names.network_label(s)
    decision = plan(label, s.NOVA_NETWORK, api.networks(label), api.subnets)
    network_id = decision.network_id
    if decision.action == "create":
        network_id = api.create_network(label)["id"]
        progress.info(f"created Cloud Network {label} ({network_id})")
    if decision.action in ("create", "add-subnet"):
        api.create_subnet(network_id, names.subnet_name(s), s.NOVA_NETWORK)
        progress.info(f"created subnet {s.NOVA_NETWORK} on {label}")
    else:
        progress.info(f"Cloud Network {label} ({network_id}, {s.NOVA_NETWORK}) exists; reusing it")
    return network_id


@task
@lock.writer
def network(c):
    """Find or create the Cloud Network (NOVA_NETWORK_LABEL, NOVA_NETWORK)."""
    s = settings.load()
    network_id = ensure(s, _cloud.Cloud(s))
    print(network_id)
