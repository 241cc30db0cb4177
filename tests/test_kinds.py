"""The cloud kinds' pure decisions (tasks/kinds/openstack.py, kinds.py):
security group rules, what counts as this cluster's, how each server is
reached, what `inv plan` says is open. Data in, data out; no cloud."""

import pytest

from tasks.kinds import legacy as kind_legacy, openstack as kind_openstack
from tasks import kinds, plan, ssh
from tasks.model import names, settings
from tasks.support.errors import CloudError
from tasks.model.servers import Server

TAG = "kube-rackspace-cluster=demo"


def load(**environ):
    return settings.load(environ={"INSTANCE_PREFIX": "demo", "NUM_NODES": "2", **environ})


def test_kind_modules_are_picked_by_name_only():
    assert kinds.named("openstack") is kind_openstack and kinds.named("legacy") is kind_legacy
    # No kind by default: an unknown or missing name is a bug, not the legacy cloud.
    for name in ("", None, "Legacy", "flex"):
        with pytest.raises(ValueError, match="cloud kind must be one of"):
            kinds.named(name)
    for module in (kind_legacy, kind_openstack):
        for name in ("NAME", "prepare_network", "attach", "reach", "flavor_choice", "pod_network", "exposure",
                     "network_rows", "inventory", "remove_network", "release_endpoint", "template_facts",
                     "IMAGE_UPLOAD_REFUSED",
                     "NO_IMAGE_TODO"):
            assert hasattr(module, name), (module.__name__, name)


def test_only_legacy_refuses_inv_image_and_each_kind_says_what_to_do_without_an_image():
    assert kind_openstack.IMAGE_UPLOAD_REFUSED is None
    refused = kind_legacy.IMAGE_UPLOAD_REFUSED
    assert "\n" not in refused and "VHD" in refused and "Flatcar on legacy Rackspace" in refused
    assert "inv image" in kind_openstack.NO_IMAGE_TODO
    assert "inv image" not in kind_legacy.NO_IMAGE_TODO and "KUBE_IMAGE" in kind_legacy.NO_IMAGE_TODO


RULES = [
    # (settings, rules wanted besides the group's own, by (protocol, ports, source))
    # vxlan (the default): its UDP 8472 runs between members, which the
    # member rule admits; nothing is opened to KUBE_NETWORK.
    ({}, {("tcp", 22, "0.0.0.0/0"), ("tcp", 6443, "0.0.0.0/0")}),
    ({"POD_NETWORK_BACKEND": "host-gw"},
     {("tcp", 22, "0.0.0.0/0"), ("tcp", 6443, "0.0.0.0/0"), (None, None, "10.240.0.0/16")}),
    ({"ADMIN_CIDR": "203.0.113.0/24", "POD_NETWORK_BACKEND": "vxlan"},
     {("tcp", 22, "203.0.113.0/24"), ("tcp", 6443, "203.0.113.0/24")}),
]


@pytest.mark.parametrize("environ,openstack,legacy", [
    ({}, "vxlan", "host-gw"),
    ({"POD_NETWORK_BACKEND": ""}, "vxlan", "host-gw"),
    ({"POD_NETWORK_BACKEND": "host-gw"}, "host-gw", "host-gw"),
    ({"POD_NETWORK_BACKEND": "vxlan"}, "vxlan", "vxlan"),
])
def test_pod_network_backend_is_the_kinds_default_unless_set(environ, openstack, legacy):
    s = load(**environ)
    backend, why = kind_openstack.pod_network(s)
    assert backend == openstack and kind_openstack.template_facts(s, "master")["flannel_backend"] == openstack
    assert ("POD_NETWORK_BACKEND=" in why) == bool(environ.get("POD_NETWORK_BACKEND"))
    if not environ.get("POD_NETWORK_BACKEND"):
        assert "allowed address pair" in why
    backend, why = kind_legacy.pod_network(s)
    assert backend == legacy and kind_legacy.template_facts(s, "node")["flannel_backend"] == legacy


@pytest.mark.parametrize("backend,pairs", [("", ()), ("vxlan", ()), ("host-gw", ("10.240.0.0/16",))])
def test_only_host_gw_puts_kube_network_on_the_ports(backend, pairs):
    s = load(POD_NETWORK_BACKEND=backend)
    assert tuple(str(p) for p in kind_openstack.allowed_pairs(s)) == pairs


def test_a_group_made_for_host_gw_stops_a_vxlan_run():
    """A cluster made with host-gw keeps its flannel on the master: a port
    made now without the address pair would cut its server's pods off."""
    s = load()
    host_gw = kind_openstack.wanted_rules(load(POD_NETWORK_BACKEND="host-gw"))
    echoed = [dict(r, remote_group_id="g1" if r.get("remote_group_id") else None, protocol=r.get("protocol"))
              for r in host_gw]
    assert kind_openstack.made_for_host_gw(s, echoed)
    assert not kind_openstack.made_for_host_gw(s, [r for r in echoed if r.get("remote_ip_prefix") != "10.240.0.0/16"])
    # Another /16 in the group is not ours.
    assert not kind_openstack.made_for_host_gw(load(KUBE_NETWORK="10.244.0.0/16"), echoed)


@pytest.mark.parametrize("environ,expected", RULES)
def test_security_group_opens_ssh_and_api_to_admin_cidr_and_all_between_members(environ, expected):
    rules = kind_openstack.wanted_rules(load(**environ))
    assert all(r["direction"] == "ingress" and r["ethertype"] == "IPv4" for r in rules)
    members = [r for r in rules if r.get("remote_group_id") == kind_openstack.SELF]
    assert len(members) == 1 and "protocol" not in members[0]
    others = {(r.get("protocol"), r.get("port_range_min"), r.get("remote_ip_prefix"))
              for r in rules if r not in members}
    assert others == expected


def test_missing_rules_compares_with_what_neutron_returns():
    s = load(POD_NETWORK_BACKEND="host-gw")
    wanted = kind_openstack.wanted_rules(s)
    existing = [
        # Neutron's own egress rules, and the rules as it echoes them back.
        {"direction": "egress", "ethertype": "IPv4", "protocol": None, "remote_ip_prefix": None},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
         "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": "g1"},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
         "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0", "remote_group_id": None},
    ]
    missing = kind_openstack.missing_rules(wanted, existing, "g1")
    assert [(r.get("port_range_min"), r.get("remote_ip_prefix")) for r in missing] == [
        (6443, "0.0.0.0/0"), (None, "10.240.0.0/16")]
    first = kind_openstack.missing_rules(wanted, [], "g1")
    assert first[0]["remote_group_id"] == "g1"          # SELF became the group's ID
    assert kind_openstack.missing_rules(wanted, existing + missing, "g1") == []


def test_only_resources_with_our_name_and_tag_are_ours():
    s = load()
    mine = {"id": "n1", "name": "demo-pool-net", "tags": [TAG]}
    other = {"id": "n2", "name": "demo-pool-net", "tags": ["kube-rackspace-cluster=other"]}
    assert kind_openstack.one_of_ours("network", "demo-pool-net", [mine, other], s) is mine
    assert kind_openstack.one_of_ours("network", "demo-pool-net", [], s) is None
    with pytest.raises(CloudError, match=r"network demo-pool-net \(n2\) exists but is not tagged "
                                         r"kube-rackspace-cluster=demo"):
        kind_openstack.one_of_ours("network", "demo-pool-net", [other], s)
    with pytest.raises(CloudError, match="several networks named demo-pool-net carry this cluster's tag"):
        kind_openstack.one_of_ours("network", "demo-pool-net", [mine, dict(mine, id="n3")], s)
    assert names.neutron_tag(s) == TAG


def server(name, role, index):
    return Server(id=f"id-{name}", name=name, status="ACTIVE",
                  metadata=names.server_metadata(load(), role, index) | {names.META_CLUSTER: "demo"})


def port(name, ip, port_id):
    return {"id": port_id, "name": names.port_name(name), "fixed_ips": [{"subnet_id": "s", "ip_address": ip}]}


@pytest.mark.parametrize("node_fip", [False, True])
def test_nodes_are_reached_through_the_master_unless_they_have_a_floating_ip(node_fip):
    s = load(NODE_FLOATING_IPS=str(node_fip).lower())
    found = [server("demo-master", "master", 0), server("demo-node-1", "node", 1)]
    ports = {p["name"]: p for p in (port("demo-master", "192.168.0.5", "p0"), port("demo-node-1", "192.168.0.6", "p1"))}
    floating = {"p0": {"floating_ip_address": "198.51.100.7", "port_id": "p0"}}
    if node_fip:
        floating["p1"] = {"floating_ip_address": "198.51.100.8", "port_id": "p1"}
    reach = kind_openstack.reach_of(s, found, ports, floating)
    assert reach["demo-master"] == kinds.Reach(address="198.51.100.7", cluster_ip="192.168.0.5",
                                               public_ip="198.51.100.7")
    node = reach["demo-node-1"]
    if node_fip:
        assert (node.address, node.gateway, node.public_ip) == ("198.51.100.8", "", "198.51.100.8")
    else:
        assert (node.address, node.gateway, node.public_ip) == ("192.168.0.6", "198.51.100.7", "")
    srv = Server(**{**vars(found[1]), "reach": node})
    assert (srv.ssh_address, srv.ssh_gateway, srv.cluster_ip) == (node.address, node.gateway, "192.168.0.6")


def test_a_node_is_unreachable_while_the_master_has_no_floating_ip():
    s = load()
    found = [server("demo-master", "master", 0), server("demo-node-1", "node", 1)]
    ports = {p["name"]: p for p in (port("demo-master", "192.168.0.5", "p0"), port("demo-node-1", "192.168.0.6", "p1"))}
    reach = kind_openstack.reach_of(s, found, ports, {})
    assert reach["demo-node-1"].address == "" and reach["demo-master"].address == ""


@pytest.mark.parametrize("admin,everywhere", [("0.0.0.0/0", True), ("203.0.113.0/24", False)])
def test_plan_says_when_ssh_and_the_api_are_open_to_everyone(admin, everywhere):
    lines = kind_openstack.exposure(load(ADMIN_CIDR=admin))
    assert lines[0].startswith(f"SSH (22) and the API server (6443) are open to ADMIN_CIDR={admin}")
    assert ("that is everywhere" in lines[0]) == everywhere


def test_network_plan_lines_list_what_up_would_create():
    s = load()
    rows = [("network", "demo-pool-net", "n1"), ("subnet", "demo-pool-net-subnet", "192.168.0.0/24 dns 1.1.1.1")]
    actions = {"network": "reuse", "subnet": "reuse", "router": "create", "security group": "create"}
    lines = plan.network_plan_lines(s, rows, actions)
    assert lines[0].split()[:3] == ["network", "demo-pool-net", "reuse"]
    assert any(line.split()[:3] == ["router", "demo-router", "create"] and "PUBLICNET" in line for line in lines)
    assert any(line.startswith("security group") and "demo-cluster" in line and "create" in line for line in lines)


def test_jump_host_ssh_goes_through_the_master_with_the_same_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = load(SSH_CONFIG=str(tmp_path / "ssh_config"))
    argv = ssh.ssh_argv(s, "192.168.0.6", "hostname", gateway="198.51.100.7", binary="/usr/bin/ssh")
    assert argv[-3:] == ["192.168.0.6", "--", "hostname"]
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    assert "-W %h:%p 198.51.100.7" in proxy
    assert f"-F {tmp_path / 'ssh_config'}" in proxy and str(names.private_key_path(s)) in proxy
    assert "ProxyCommand" not in " ".join(ssh.ssh_argv(s, "198.51.100.7", binary="/usr/bin/ssh"))


@pytest.mark.parametrize("environ,message", [
    ({"POD_NETWORK_BACKEND": "udp"}, r"^POD_NETWORK_BACKEND .*host-gw, vxlan or empty .*vxlan on OpenStack"),
    ({"DNS_NAMESERVERS": "1.1.1.1,dns.example"}, r"^DNS_NAMESERVERS .*IPv4 address"),
    ({"ADMIN_CIDR": "203.0.113.5/24"}, r"^ADMIN_CIDR .*CIDR"),
    ({"CLOUD_KIND": "flex"}, r"^CLOUD_KIND .*legacy, openstack or empty"),
])
def test_openstack_settings_are_checked(environ, message):
    import re

    from tasks.support.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load(**environ)
    assert re.search(message, str(err.value)), str(err.value)


FLEX_FLAVORS = [
    {"id": "f1", "name": "gp.5.1.2", "vcpus": 1, "ram": 2048, "disk": 40},
    {"id": "f2", "name": "gp.5.2.4", "vcpus": 2, "ram": 4096, "disk": 40},
    {"id": "f3", "name": "gp.5.4.8", "vcpus": 4, "ram": 8192, "disk": 40},
    {"id": "f4", "name": "mo.5.2.16", "vcpus": 2, "ram": 16384, "disk": 40},
    {"id": "f5", "name": "gp.5.1.1", "vcpus": 1, "ram": 1024, "disk": 20, "OS-FLV-DISABLED:disabled": True},
    {"id": "f6", "name": "gp.5.2.2", "vcpus": 2, "ram": 1536, "disk": 40},
]


# Flex's gp.0.* as genestack docs/openstack-flavors.md lists them: the
# 1-vCPU ones have a 10 GB disk.
FLEX_GP0 = [
    {"id": "g1", "name": "gp.0.1.2", "vcpus": 1, "ram": 2048, "disk": 10},
    {"id": "g2", "name": "gp.0.1.4", "vcpus": 1, "ram": 4096, "disk": 10},
    {"id": "g3", "name": "gp.0.2.2", "vcpus": 2, "ram": 2048, "disk": 40},
    {"id": "g4", "name": "gp.0.2.4", "vcpus": 2, "ram": 4096, "disk": 40},
    {"id": "v1", "name": "bfv.2.4", "vcpus": 2, "ram": 4096, "disk": 0},
]


@pytest.mark.parametrize("role,flavors,image_min,expected", [
    ("master", FLEX_FLAVORS, (0, 0), "gp.5.2.4"),      # 2 vCPU, 1700 MB: not gp.5.2.2 (1536 MB)
    ("node", FLEX_FLAVORS, (0, 0), "gp.5.2.2"),        # least RAM that fits; gp.5.1.1 is disabled
    ("master", FLEX_FLAVORS[:1], (0, 0), None),
    ("node", [{"id": "x", "name": "odd", "vcpus": "2", "ram": "2048", "disk": "20"}], (0, 0), "odd"),
    # Disk: gp.0.1.2 has the least RAM but 10 GB; a disk-0 flavor never.
    ("node", FLEX_GP0, (0, 0), "gp.0.2.2"),
    ("master", FLEX_GP0, (0, 0), "gp.0.2.2"),
    ("node", FLEX_GP0[-1:], (0, 0), None),
    # The image's own minimums count too.
    ("node", FLEX_GP0, (13, 3000), "gp.0.2.4"),
    ("node", FLEX_GP0, (41, 0), None),
])
def test_the_smallest_flavor_that_meets_the_roles_minimum(role, flavors, image_min, expected):
    from tasks.model import servers

    found = servers.smallest_flavor(role, flavors, image_min)
    assert (found or {}).get("name") == expected


def test_target_flavor_is_the_kinds_pick_or_the_setting():
    s = load(KUBE_NODE_FLAVOR="gp.5.4.8")
    target = kinds.Target("n", "k", flavors=(("master", "f2"),))
    assert target.flavor(s, "master") == "f2" and target.flavor(s, "node") == "gp.5.4.8"


@pytest.mark.parametrize("temp_urls,version,expected", [
    (True, None, "temp-url"), (True, "v1.31.4", "temp-url"), (False, "v1.31.4", "release-site")])
def test_release_delivery(temp_urls, version, expected):
    from tasks.steps import publish as upload

    assert upload.delivery(temp_urls, version) == expected


def test_a_custom_build_without_temp_urls_stops_with_one_line():
    from tasks.steps import publish as upload

    with pytest.raises(CloudError) as err:
        upload.delivery(False, None, "the object storage at https://swift.example has no temp URL support")
    assert "a custom build can reach the servers only through a temp URL" in str(err.value)
    assert "\n" not in str(err.value)


def test_legacy_cluster_traffic_runs_on_the_cloud_network_found_by_nova_network():
    """t13: the API server, kubelet and joins use the address inside
    NOVA_NETWORK (whatever its label), never ServiceNet; SSH uses PublicNet."""
    s = load(NOVA_NETWORK="192.168.0.0/24")
    listed = Server(id="1", name="demo-master", status="ACTIVE", addresses={
        "public": [{"version": 4, "addr": "198.51.100.5"}],
        "private": [{"version": 4, "addr": "10.176.0.5"}],
        "some-label": [{"version": 4, "addr": "192.168.0.5"}]})
    srv = kind_legacy.reach(s, None, [listed])[0]
    assert (srv.cluster_ip, srv.ssh_address, srv.public_ip, srv.ssh_gateway) == (
        "192.168.0.5", "198.51.100.5", "198.51.100.5", "")
    # Not on the Cloud Network yet: no cluster address (no ServiceNet fallback).
    booting = Server(id="2", name="demo-node-1", status="BUILD",
                     addresses={"private": [{"version": 4, "addr": "10.176.0.6"}]})
    assert kind_legacy.reach(s, None, [booting])[0].cluster_ip is None


@pytest.mark.parametrize("nodeports", [False, True])
def test_legacy_plan_says_what_the_host_firewall_opens(nodeports):
    lines = kind_legacy.exposure(load(PUBLIC_NODEPORTS=str(nodeports).lower()))
    assert "SSH (22)" in lines[0] and "6443" in lines[0]
    assert any("30000-32767" in line for line in lines) is nodeports
