"""OpenStack (Rackspace Flex, any Keystone v3 cloud): what differs from
the legacy cloud.

Per cluster: a network and subnet (NOVA_NETWORK, DNS_NAMESERVERS), a
router with its gateway on EXTERNAL_NETWORK (SNAT to the internet) and an
interface on the subnet, and one security group: every member reaches
every other on every port; SSH and the API server are open to ADMIN_CIDR;
nothing else comes in. Every server boots on a port made beforehand on
that subnet, with the group. Pod traffic: flannel vxlan by default
(pod_network), between the ports' own addresses; only host-gw, chosen
explicitly, adds KUBE_NETWORK as an allowed address pair on every port and
opens the group to it (pods' packets leave with pod addresses, which port
security would drop). The master's floating IP is allocated and associated
before it boots, so its certificate and the kubeconfig name it; nodes have no
public address (unless NODE_FLOATING_IPS) and are reached through the
master as a jump host. Cluster traffic runs on the cluster network.

Everything carries this cluster's name and Neutron tag (names.neutron_tag);
nothing without both is ever touched. See kinds/__init__.py for each name here.
"""

import time

from . import base
from ..model import layout, names
from ..support import progress
from ..support.errors import CloudError, UserError
from .base import Attach, Reach, Target

NAME = "openstack"

# Glance takes `inv image`'s qcow2.
IMAGE_UPLOAD_REFUSED = None
NO_IMAGE_TODO = "run `inv image` (about 500 MB), or set KUBE_IMAGE"
_RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
              "remote_group_id")
# Stands for the group's own ID in wanted_rules (unknown until it exists).
SELF = "self"
# flannel's backend unless POD_NETWORK_BACKEND says otherwise. host-gw
# routes pod packets with pod source addresses: port security passes them
# only with KUBE_NETWORK as an allowed address pair, and Flex's OVN takes
# single addresses there, no CIDR (rackerlabs/genestack
# docs/openstack-floating-ips.md, shared floating IP section), so the pair
# is accepted and every pod packet between nodes silently dropped. vxlan
# sends them inside UDP 8472 between the ports' own addresses, which the
# group's member rule already admits.
POD_NETWORK_DEFAULT = "vxlan"
POD_NETWORK_WHY = ("the OpenStack default: OVN (Rackspace Flex) takes no CIDR as an allowed address pair, "
                   "so host-gw's pod routes would be dropped; vxlan runs between the servers' own addresses")


# --- pure decisions -----------------------------------------------------------

def pod_network(s):
    return base.pod_network(s, POD_NETWORK_DEFAULT, POD_NETWORK_WHY)


def host_gw(s):
    return pod_network(s)[0] == "host-gw"


def wanted_rules(s):
    """The ingress rules of the cluster's security group (egress stays as
    Neutron makes it: everything out). The member rule (every protocol
    from the group's ports) carries vxlan's UDP 8472 too: its outer
    packets go between the ports' own addresses."""
    base = {"direction": "ingress", "ethertype": "IPv4"}
    admin = str(s.ADMIN_CIDR)
    rules = [
        dict(base, remote_group_id=SELF),
        dict(base, protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix=admin),
        dict(base, protocol="tcp", port_range_min=layout.API_PORT, port_range_max=layout.API_PORT,
             remote_ip_prefix=admin),
    ]
    if host_gw(s):
        # Routed pod packets carry pod source addresses.
        rules.append(dict(base, remote_ip_prefix=str(s.KUBE_NETWORK)))
    return rules


def made_for_host_gw(s, existing):
    """Pure: does the group (its `existing` rules) open KUBE_NETWORK, as
    it does only for host-gw? Then the master's flannel runs host-gw, and a
    port made now without the address pair would cut its server's pods off."""
    wanted = _rule_key(dict(direction="ingress", ethertype="IPv4", remote_ip_prefix=str(s.KUBE_NETWORK)), None)
    return any(_rule_key(r, None) == wanted for r in existing)


def _rule_key(rule, group_id):
    key = []
    for k in _RULE_KEYS:
        value = rule.get(k)
        if k == "remote_group_id" and value == SELF:
            value = group_id
        key.append(None if value in ("", None) else str(value))
    return tuple(key)


def missing_rules(wanted, existing, group_id):
    """The rules of `wanted` that the group (`existing` rules) lacks, with
    SELF replaced by `group_id`."""
    have = {_rule_key(r, group_id) for r in existing}
    out = []
    for rule in wanted:
        if _rule_key(rule, group_id) not in have:
            out.append({k: (group_id if v == SELF else v) for k, v in rule.items()})
    return out


def allowed_pairs(s):
    return (s.KUBE_NETWORK,) if host_gw(s) else ()


def ours(resources, s):
    """Of resources carrying our name, those with our tag; one named like
    ours without the tag is someone else's: an error, never reused."""
    tag = names.neutron_tag(s)
    mine = [r for r in resources if tag in (r.get("tags") or [])]
    foreign = [r for r in resources if r not in mine]
    return mine, foreign


def one_of_ours(kind, name, resources, s):
    mine, foreign = ours(resources, s)
    if foreign and not mine:
        raise CloudError(f"{kind} {name} ({foreign[0]['id']}) exists but is not tagged {names.neutron_tag(s)}: "
                         "it is not this cluster's; rename or delete it, or pick another INSTANCE_PREFIX")
    if len(mine) > 1:
        raise CloudError(f"several {kind}s named {name} carry this cluster's tag "
                         f"({', '.join(r['id'] for r in mine)}); delete the extra ones")
    return mine[0] if mine else None


def fixed_ip(port):
    return next((ip.get("ip_address") for ip in port.get("fixed_ips") or [] if ":" not in ip.get("ip_address", "")),
                None)


def reach_of(s, found, ports, floating):
    """Pure: {name: Reach} from our servers, our ports by name and the
    floating IPs by port ID. A node without a floating IP goes through
    the master's."""
    result = {}
    master_public = None
    for srv in found:
        port = ports.get(names.port_name(srv.name))
        cluster_ip = fixed_ip(port) if port else srv.ipv4(names.network_label(s))
        fip = floating.get(port["id"]) if port else None
        public = (fip or {}).get("floating_ip_address") or None
        result[srv.name] = [cluster_ip or "", public or ""]
        if srv.metadata.get(names.META_ROLE) == "master":
            master_public = public
    out = {}
    for srv in found:
        cluster_ip, public = result[srv.name]
        if public:
            out[srv.name] = Reach(address=public, cluster_ip=cluster_ip, public_ip=public)
        else:
            out[srv.name] = Reach(address=cluster_ip if master_public else "", cluster_ip=cluster_ip,
                                  gateway=master_public or "")
    return out


def exposure(s):
    admin = str(s.ADMIN_CIDR)
    everywhere = s.ADMIN_CIDR.prefixlen == 0
    lines = [f"SSH (22) and the API server ({layout.API_PORT}) are open to ADMIN_CIDR={admin}"
             + (": that is everywhere; set ADMIN_CIDR to your own address range" if everywhere else ""),
             "nothing else comes in; the cluster's servers reach each other on every port",
             "floating IPs: the master" + (" and every node" if s.NODE_FLOATING_IPS
                                           else "; nodes are reached through it (SSH jump host)")]
    return lines


def template_facts(s, role, attach=None):
    return {
        "kind": NAME,
        # Known before boot: the floating IP (the master's; a node's with NODE_FLOATING_IPS).
        "public_ip": attach.public_ip if attach is not None else None,
        # No floating IP: no public address at all; the one it is known by
        # is its address on the cluster network (there is no PublicNet).
        "public_address_fn": "kr_cloud_network_address",
        "cluster_address_fn": "kr_cloud_network_address",
        "cluster_network_name": "the cluster network",
        # Security groups close the servers; no host firewall (its script
        # looks for PublicNet, which OpenStack servers are not on).
        "host_firewall": False,
        "flannel_backend": pod_network(s)[0],
    }


# --- acting through the network client ----------------------------------------

def _api(cloud):

    return cloud.network


def prepare_network(s, cloud):
    """Network, subnet, router, security group: found by name and tag, made
    when missing."""
    api = _api(cloud)
    tag = names.neutron_tag(s)
    external = api.external_network(s.EXTERNAL_NETWORK)
    label = names.network_label(s)
    net = one_of_ours("network", label, api.networks(label), s)
    if net is None:
        net = api.create_network(label, tags=[tag])
        progress.info(f"created network {label} ({net['id']})")
    subnets = [sn for sn in api.subnets(net["id"]) if sn.get("ip_version", 4) == 4]
    subnet = next((sn for sn in subnets if sn.get("cidr") == str(s.NOVA_NETWORK)), None)
    if subnet is None and subnets:
        raise CloudError(f"network {label} has the subnet {subnets[0].get('cidr')}, but NOVA_NETWORK is "
                         f"{s.NOVA_NETWORK}; set NOVA_NETWORK={subnets[0].get('cidr')} or run `inv down` first")
    if subnet is None:
        subnet = api.create_subnet(net["id"], names.subnet_name(s), s.NOVA_NETWORK,
                                   dns_nameservers=s.DNS_NAMESERVERS, tags=[tag])
        progress.info(f"created subnet {s.NOVA_NETWORK} on {label}")
    rname = names.router_name(s)
    router = one_of_ours("router", rname, api.routers(rname), s)
    if router is None:
        router = api.create_router(rname, external["id"], tags=[tag])
        progress.info(f"created router {rname} ({router['id']}) to {external.get('name') or external['id']}")
    if api.add_router_interface(router["id"], subnet["id"]):
        progress.info(f"plugged subnet {s.NOVA_NETWORK} into router {rname}")
    gname = names.security_group_name(s)
    group = one_of_ours("security group", gname, api.security_groups(gname), s)
    if group is None:
        group = api.create_security_group(gname, f"kube-rackspace cluster {s.INSTANCE_PREFIX}", tags=[tag])
        progress.info(f"created security group {gname} ({group['id']})")
    existing = group.get("security_group_rules") or []
    if not host_gw(s) and made_for_host_gw(s, existing):
        raise CloudError(f"security group {gname} opens KUBE_NETWORK: this cluster was made with flannel host-gw; "
                         "set POD_NETWORK_BACKEND=host-gw for it, or `inv down` and `inv up` again for vxlan")
    for rule in missing_rules(wanted_rules(s), existing, group["id"]):
        api.create_rule(group["id"], rule)
    return Target(network_id=net["id"], subnet_id=subnet["id"], security_group_id=group["id"],
                  external_network_id=external["id"])


def flavor_choice(s, cloud):
    """((role, flavor ID), ...) for the roles whose flavor setting is at its
    default (the legacy cloud's names mean nothing here): the smallest
    listed flavor that meets the role's minimum. A flavor set by the user,
    by name or ID, is used as it is."""
    from ..model.servers import FLAVOR_SETTINGS, minimum, smallest_flavor

    # Once per run (up's preflight and prepare both ask): one line each.
    known = getattr(cloud, "_kube_flavor_choice", None)
    if known is not None:
        return known
    picked = []
    for role, setting in FLAVOR_SETTINGS.items():
        if s.source(setting) != "default":
            continue
        nova = cloud.compute
        image_min = nova.image_minimums()
        flavor = smallest_flavor(role, nova.flavor_details(), image_min)
        if flavor is None:
            cpus, ram, disk = minimum(role, image_min)
            raise CloudError(f"no flavor here has {cpus} vCPU, {ram} MiB and a root disk of {disk} GB for the "
                             f"{role} (disk-0 flavors boot only from volumes, which this tool does not make); "
                             f"set {setting} to the flavor to use")
        progress.info(f"{role} flavor: {flavor.get('name')} ({flavor.get('vcpus')} vCPU, {flavor.get('ram')} MiB, "
                      f"{flavor.get('disk')} GB disk), the smallest that fits ({setting} to choose another)")
        picked.append((role, flavor["id"]))
    cloud._kube_flavor_choice = tuple(picked)
    return cloud._kube_flavor_choice


def attach(s, cloud, target, want):
    """The server's port (made before the server, with the group and the
    pod network's address pair) and, for the master (every node with
    NODE_FLOATING_IPS), its floating IP, associated before boot."""
    api = _api(cloud)
    tag = names.neutron_tag(s)
    pname = names.port_name(want.name)
    port = one_of_ours("port", pname, api.ports_named(pname, target.network_id), s)
    if port is None:
        port = api.create_port(pname, target.network_id, target.subnet_id, [target.security_group_id],
                               allowed_address_pairs=allowed_pairs(s), tags=[tag])
    public = None
    if want.role == "master" or s.NODE_FLOATING_IPS:
        found = api.floating_ips(port_id=port["id"])
        fip = found[0] if found else api.create_floating_ip(
            target.external_network_id, port["id"], f"{want.name} ({tag})", tags=[tag])
        public = fip.get("floating_ip_address")
    return Attach(nics=({"port-id": port["id"]},), cluster_ip=fixed_ip(port), public_ip=public,
                  port_id=port["id"])


def reach(s, cloud, found):
    """`found` with each server's Reach from Neutron (Nova lists floating
    IPs only when Neutron tells it)."""
    import dataclasses

    found = list(found)
    if not found:
        return found
    api = _api(cloud)
    tag = names.neutron_tag(s)
    ports = {p.get("name"): p for p in api.tagged("port", tag)}
    floating = {f.get("port_id"): f for f in api.tagged("floatingip", tag) if f.get("port_id")}
    reaches = reach_of(s, found, ports, floating)
    return [dataclasses.replace(srv, reach=reaches[srv.name]) for srv in found]


def _state(s, api):
    """Our resources, by kind: [(kind, name, resource)] in creation order."""
    tag = names.neutron_tag(s)
    label = names.network_label(s)
    rows = []
    for net in ours(api.networks(label), s)[0]:
        rows.append(("network", label, net))
        for sn in api.subnets(net["id"]):
            if tag in (sn.get("tags") or []):
                rows.append(("subnet", sn.get("name") or sn["id"], sn))
    for router in ours(api.routers(names.router_name(s)), s)[0]:
        rows.append(("router", router["name"], router))
    for group in ours(api.security_groups(names.security_group_name(s)), s)[0]:
        rows.append(("security group", group["name"], group))
    prefix = f"{s.INSTANCE_PREFIX}-"
    for port in api.tagged("port", tag):
        if (port.get("name") or "").startswith(prefix):
            rows.append(("port", port["name"], port))
    for fip in api.tagged("floatingip", tag):
        rows.append(("floating IP", fip.get("floating_ip_address") or fip["id"], fip))
    return rows


def network_rows(s, cloud):
    """(rows, actions): rows (kind, name, detail) of what exists, and what
    `up` would do with the network part ({kind: action})."""
    api = _api(cloud)
    rows = []
    found = _state(s, api)
    for kind, name, res in found:
        if kind == "subnet":
            detail = f"{res.get('cidr')} dns {', '.join(res.get('dns_nameservers') or []) or 'none'}"
        elif kind == "port":
            detail = f"{fixed_ip(res) or '?'} {res.get('status', '')}".strip()
        elif kind == "floating IP":
            detail = f"on port {res.get('port_id') or 'none'}"
        elif kind == "router":
            gw = (res.get("external_gateway_info") or {}).get("network_id") or "no gateway"
            detail = f"{res['id']} gateway {gw}"
        else:
            detail = res["id"]
        rows.append((kind, name, detail))
    kinds_found = {kind for kind, _, _ in found}
    actions = {kind: ("reuse" if kind in kinds_found else "create")
               for kind in ("network", "subnet", "router", "security group")}
    return rows, actions


def inventory(s, cloud):
    return [f"{kind} {name}" for kind, name, _ in _state(s, _api(cloud))]


def remove_network(s, cloud, server_ids, server_exists, timeout=base.RELEASE_TIMEOUT, sleep=time.sleep):
    """Everything this cluster made in Neutron, in dependency order:
    floating IPs, ports, the router's interface, the router, subnets, the
    network, the security group; each retried while Neutron still holds
    it (409). A port some other server still uses stops down with one line."""
    api = _api(cloud)
    removed = []

    def attempt():
        state = _state(s, api)
        by_kind = {}
        for kind, name, res in state:
            by_kind.setdefault(kind, []).append((name, res))
        for name, fip in by_kind.get("floating IP", []):
            if api.delete_floating_ip(fip["id"]):
                removed.append(f"floating IP {name}")
        for name, port in by_kind.get("port", []):
            device = port.get("device_id")
            if device and device not in server_ids and server_exists(device):
                raise UserError(f"port {name} is still used by server {device}, which is not this "
                                "cluster's; detach it, then re-run `inv down`")
            if api.delete_port(port["id"]):
                removed.append(f"port {name}")
        subnet_ids = [sn["id"] for _, sn in by_kind.get("subnet", [])]
        for name, router in by_kind.get("router", []):
            for subnet_id in subnet_ids:
                api.remove_router_interface(router["id"], subnet_id)
            if api.delete_router(router["id"]):
                removed.append(f"router {name}")
        for name, sn in by_kind.get("subnet", []):
            if api.delete_subnet(sn["id"]):
                removed.append(f"subnet {sn.get('cidr') or name}")
        for name, net in by_kind.get("network", []):
            if api.delete_network(net["id"]):
                removed.append(f"network {name}")
        for name, group in by_kind.get("security group", []):
            if api.delete_security_group(group["id"]):
                removed.append(f"security group {name}")

    base.while_held("network resources released", attempt, timeout, sleep)
    return removed


def release_endpoint(s, cloud, storage_url):
    """No ServiceNet: the servers download from the public endpoint."""
    return storage_url
