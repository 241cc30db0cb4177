"""Pure decisions of the cloud stages, data-driven: which servers to create,
reuse or delete; how a wait stands; the network plan; the keypair decision;
image/flavor resolution; the user data size limit."""

import pytest

from tasks.services import compute as cloudservers
from tasks.steps import keypairs
from tasks.kinds import legacy as kind_legacy
from tasks.model import names, servers, settings, sshkeys
from tasks.support.errors import CloudError, ConfigError, UserError


def load(**flags):
    return settings.load(environ={}, flags={k: str(v) for k, v in flags.items()})


S = load(INSTANCE_PREFIX="k8s", NUM_NODES=3)


def srv(name, status="ACTIVE", cluster="k8s", role=None, index=None, id=None, created="2024-01-01T00:00:00Z",
        fault=""):
    """A listed server; role/index default to what the name says."""
    if role is None:
        role = "master" if name.endswith("-master") else "node"
    if index is None:
        index = 0 if role == "master" else int(name.rsplit("-", 1)[1])
    meta = {} if cluster is None else names.server_metadata(load(INSTANCE_PREFIX=cluster), role, index)
    return servers.Server(id=id or f"id-{name}-{status}", name=name, status=status, metadata=meta,
                          addresses={}, fault=fault, created=created)


def summary(plan):
    return {
        "create": [w.name for w in plan.create],
        "reuse": [srv.id for _, srv in plan.reuse],
        "delete": [srv.id for srv in plan.delete],
        "conflicts": [srv.id for srv in plan.conflicts],
        "surplus": [srv.name for srv in plan.surplus],
    }


NODE_CASES = [
    ("nothing exists: create all", [],
     {"create": ["k8s-node-1", "k8s-node-2", "k8s-node-3"]}),
    ("all exist: create nothing",
     [srv("k8s-node-1"), srv("k8s-node-2", "BUILD"), srv("k8s-node-3")],
     {"reuse": ["id-k8s-node-1-ACTIVE", "id-k8s-node-2-BUILD", "id-k8s-node-3-ACTIVE"]}),
    ("NUM_NODES raised: only the missing ones",
     [srv("k8s-node-1")],
     {"create": ["k8s-node-2", "k8s-node-3"], "reuse": ["id-k8s-node-1-ACTIVE"]}),
    ("ERROR: delete and create again",
     [srv("k8s-node-1"), srv("k8s-node-2", "ERROR"), srv("k8s-node-3")],
     {"create": ["k8s-node-2"], "reuse": ["id-k8s-node-1-ACTIVE", "id-k8s-node-3-ACTIVE"],
      "delete": ["id-k8s-node-2-ERROR"]}),
    ("ERROR beside a healthy twin: keep the twin, delete the ERROR one",
     [srv("k8s-node-1"), srv("k8s-node-1", "ERROR"), srv("k8s-node-2"), srv("k8s-node-3")],
     {"reuse": ["id-k8s-node-1-ACTIVE", "id-k8s-node-2-ACTIVE", "id-k8s-node-3-ACTIVE"],
      "delete": ["id-k8s-node-1-ERROR"]}),
    ("duplicates: keep the ACTIVE one, then the oldest",
     [srv("k8s-node-1", "BUILD", id="young", created="2024-02-01T00:00:00Z"),
      srv("k8s-node-1", "BUILD", id="old", created="2024-01-01T00:00:00Z"),
      srv("k8s-node-2", "BUILD", id="b"), srv("k8s-node-2", "ACTIVE", id="a"), srv("k8s-node-3")],
     {"reuse": ["old", "a", "id-k8s-node-3-ACTIVE"], "delete": ["young", "b"]}),
    ("DELETED servers count as absent",
     [srv("k8s-node-1", "DELETED"), srv("k8s-node-2"), srv("k8s-node-3")],
     {"create": ["k8s-node-1"], "reuse": ["id-k8s-node-2-ACTIVE", "id-k8s-node-3-ACTIVE"]}),
    ("another cluster's servers are ignored, even in ERROR",
     [srv("other-node-1", "ERROR", cluster="other"), srv("k8s-node-1"), srv("k8s-node-2"), srv("k8s-node-3"),
      srv("k8s-x-node-1", "ERROR", cluster="k8s-x")],
     {"reuse": ["id-k8s-node-1-ACTIVE", "id-k8s-node-2-ACTIVE", "id-k8s-node-3-ACTIVE"]}),
    ("our name without our metadata: a conflict, never touched",
     [srv("k8s-node-1", cluster=None), srv("k8s-node-2"), srv("k8s-node-3")],
     {"conflicts": ["id-k8s-node-1-ACTIVE"], "reuse": ["id-k8s-node-2-ACTIVE", "id-k8s-node-3-ACTIVE"]}),
    ("our name, our cluster, but metadata of another index: a conflict",
     [srv("k8s-node-1", index=7), srv("k8s-node-2"), srv("k8s-node-3")],
     {"conflicts": ["id-k8s-node-1-ACTIVE"], "reuse": ["id-k8s-node-2-ACTIVE", "id-k8s-node-3-ACTIVE"]}),
    ("NUM_NODES lowered: the extra nodes are surplus, left alone",
     [srv("k8s-node-1"), srv("k8s-node-2"), srv("k8s-node-3"), srv("k8s-node-4"), srv("k8s-master")],
     {"reuse": ["id-k8s-node-1-ACTIVE", "id-k8s-node-2-ACTIVE", "id-k8s-node-3-ACTIVE"],
      "surplus": ["k8s-node-4"]}),
]


@pytest.mark.parametrize("existing, expected", [c[1:] for c in NODE_CASES], ids=[c[0] for c in NODE_CASES])
def test_node_plan(existing, expected):
    full = {"create": [], "reuse": [], "delete": [], "conflicts": [], "surplus": []}
    full.update(expected)
    assert summary(servers.plan(S, "node", existing)) == full


MASTER_CASES = [
    ("none: create", [srv("k8s-node-1")], {"create": ["k8s-master"]}),
    ("exists while building: reuse", [srv("k8s-master", "BUILD")], {"reuse": ["id-k8s-master-BUILD"]}),
    ("ERROR: delete, create", [srv("k8s-master", "ERROR")],
     {"create": ["k8s-master"], "delete": ["id-k8s-master-ERROR"]}),
    ("a node's metadata on the master's name: conflict", [srv("k8s-master", role="node", index=1)],
     {"conflicts": ["id-k8s-master-ACTIVE"]}),
    ("another cluster's master: ignored", [srv("k8s2-master", cluster="k8s2")], {"create": ["k8s-master"]}),
]


@pytest.mark.parametrize("existing, expected", [c[1:] for c in MASTER_CASES], ids=[c[0] for c in MASTER_CASES])
def test_master_plan(existing, expected):
    full = {"create": [], "reuse": [], "delete": [], "conflicts": [], "surplus": []}
    full.update(expected)
    assert summary(servers.plan(S, "master", existing)) == full


def test_server_from_api_reads_addresses_and_fault():
    d = {"id": "1", "name": "k8s-master", "status": "error", "metadata": None,
         "addresses": {"public": [{"addr": "2001:db8::1", "version": 6}, {"addr": "203.0.113.5", "version": 4}],
                       "private": [{"addr": "10.176.0.7", "version": 4}],
                       "k8s-pool-net": [{"addr": "192.168.0.3", "version": 4}]},
         "fault": {"message": "No valid host was found.", "code": 500}}
    server = servers.Server.from_api(d)
    assert (server.status, server.public_ip, server.servicenet_ip, server.ipv4("k8s-pool-net"), server.fault) == \
        ("ERROR", "203.0.113.5", "10.176.0.7", "192.168.0.3", "No valid host was found.")
    assert servers.Server.from_api({"id": "2", "name": "x", "status": "BUILD"}).servicenet_ip is None


def test_cloud_network_address_is_found_by_cidr_not_by_label():
    d = {"id": "1", "name": "k8s-master", "status": "BUILD",
         "addresses": {"public": [{"addr": "203.0.113.5", "version": 4}],
                       "private": [{"addr": "10.176.0.7", "version": 4}],
                       "some-other-label": [{"addr": "fd00::3", "version": 6},
                                            {"addr": "172.16.20.9", "version": 4}]}}
    server = servers.Server.from_api(d)
    assert server.ipv4_in("172.16.16.0/20") == "172.16.20.9"
    assert server.ipv4_in("10.176.0.0/12") == "10.176.0.7"
    assert server.ipv4_in("192.168.0.0/24") is None


WAIT_CASES = [
    ("all ACTIVE", [srv("k8s-master"), srv("k8s-node-1"), srv("k8s-node-2")], True, [], []),
    ("one building, one not listed yet", [srv("k8s-master"), srv("k8s-node-1", "BUILD")], False, [],
     [("k8s-node-1", "BUILD"), ("k8s-node-2", "missing")]),
    ("ERROR ends that server's wait", [srv("k8s-master"), srv("k8s-node-1", "ERROR", fault="boom"),
                                       srv("k8s-node-2")], True, [("k8s-node-1", "ERROR", "boom")], []),
    ("the replacement of a deleted ERROR server counts", [srv("k8s-master"), srv("k8s-node-1", "ERROR"),
                                                          srv("k8s-node-1", "BUILD"), srv("k8s-node-2")],
     False, [], [("k8s-node-1", "BUILD")]),
    ("another cluster's server of the same name does not count",
     [srv("k8s-master"), srv("k8s-node-1", cluster=None), srv("k8s-node-2")], False, [],
     [("k8s-node-1", "missing")]),
]


@pytest.mark.parametrize("listed, done, failed, pending", [c[1:] for c in WAIT_CASES], ids=[c[0] for c in WAIT_CASES])
def test_wait_state(listed, done, failed, pending):
    wanted = ["k8s-master", "k8s-node-1", "k8s-node-2"]
    state = servers.wait_state(S, wanted, listed)
    assert (state.done, state.failed, state.pending) == (done, failed, pending)


def test_wait_messages_name_every_server():
    state = servers.wait_state(S, ["k8s-master", "k8s-node-1", "k8s-node-2"],
                               [srv("k8s-master"), srv("k8s-node-1", "BUILD")])
    assert state.line() == "1/3 ACTIVE; waiting: k8s-node-1 BUILD, k8s-node-2 missing"
    message = servers.timeout_message(60, state.pending)
    assert "BOOT_TIMEOUT (60s)" in message and "k8s-node-1 (BUILD), k8s-node-2 (missing)" in message
    assert servers.failed_message([("k8s-node-1", "ERROR", "")]) == \
        "k8s-node-1 went to ERROR: Nova gave no fault message"


def test_poll_intervals_start_short_and_stay_at_a_few_seconds():
    gen = servers.poll_intervals()
    first = [next(gen) for _ in range(10)]
    assert first[0] == 1.0 and first == sorted(first) and first[-1] == 3.0


# --- network -----------------------------------------------------------------

CIDR = S.NOVA_NETWORK


def subnets(table):
    return lambda network_id: table.get(network_id, [])


NETWORK_CASES = [
    ("none: create", [], {}, kind_legacy.NetworkPlan("create")),
    ("ours with the same CIDR: reuse", [{"id": "n1", "name": "k8s-pool-net"}],
     {"n1": [{"cidr": str(CIDR), "ip_version": 4}]}, kind_legacy.NetworkPlan("reuse", "n1")),
    ("created last time without its subnet: add it", [{"id": "n1", "name": "k8s-pool-net"}], {},
     kind_legacy.NetworkPlan("add-subnet", "n1")),
]


@pytest.mark.parametrize("nets, subs, expected", [c[1:] for c in NETWORK_CASES], ids=[c[0] for c in NETWORK_CASES])
def test_network_plan(nets, subs, expected):
    assert kind_legacy.network_plan("k8s-pool-net", CIDR, nets, subnets(subs)) == expected


def test_network_with_another_cidr_is_an_error_naming_both():
    with pytest.raises(CloudError, match=r"has the subnet 10\.9\.0\.0/24, but NOVA_NETWORK is 192\.168\.0\.0/24"):
        kind_legacy.network_plan("k8s-pool-net", CIDR, [{"id": "n1", "name": "k8s-pool-net"}],
                     subnets({"n1": [{"cidr": "10.9.0.0/24", "ip_version": 4}]}))


def test_two_networks_of_our_label_are_an_error():
    with pytest.raises(CloudError, match="several Cloud Networks are labelled k8s-pool-net"):
        kind_legacy.network_plan("k8s-pool-net", CIDR, [{"id": "a"}, {"id": "b"}], subnets({}))


# --- keypair -----------------------------------------------------------------

def local_key():
    _, public = sshkeys.generate("ed25519")
    return sshkeys.LocalKey("~/.ssh/k", "~/.ssh/k.pub", public, sshkeys.fingerprint(public), False)


def test_keypair_decision():
    mine = local_key()
    assert keypairs.decide("k8s-k", mine, None) == "create"
    assert keypairs.decide("k8s-k", mine, ("k8s-k", mine.public_key, mine.fingerprint)) == "reuse"
    other = local_key()
    with pytest.raises(CloudError, match="Nova keypair k8s-k holds another key"):
        keypairs.decide("k8s-k", mine, ("k8s-k", other.public_key, other.fingerprint))


# --- images and flavors --------------------------------------------------------

IMAGES = [{"id": "aa-1", "name": "Flatcar Container Linux (Stable)"},
          {"id": "bb-2", "name": "Flatcar Container Linux (Beta)"},
          {"id": "cc-3", "name": "Ubuntu 24.04 LTS (Noble Numbat)"},
          {"id": "dd-4", "name": "Twin"}, {"id": "ee-5", "name": "Twin"}]


@pytest.mark.parametrize("ref, expected", [("aa-1", "aa-1"), ("Flatcar Container Linux (Beta)", "bb-2")])
def test_image_by_id_or_name(ref, expected):
    assert cloudservers._resolve("KUBE_IMAGE", ref, IMAGES, "image", "ORD") == expected


def test_unknown_image_lists_close_matches_on_one_line():
    with pytest.raises(ConfigError) as err:
        cloudservers._resolve("KUBE_IMAGE", "flatcar", IMAGES, "image", "ORD")
    message = str(err.value)
    assert "\n" not in message and message.startswith("KUBE_IMAGE='flatcar' is neither")
    assert "'Flatcar Container Linux (Stable)'" in message and "'Flatcar Container Linux (Beta)'" in message
    assert "Ubuntu" not in message


def test_ambiguous_name_asks_for_an_id():
    with pytest.raises(ConfigError, match="names several images .dd-4, ee-5."):
        cloudservers._resolve("KUBE_IMAGE", "Twin", IMAGES, "image", "ORD")


def test_unknown_flavor_names_its_setting():
    flavors = [{"id": "general1-1", "name": "1 GB General Purpose v1"}]
    with pytest.raises(ConfigError) as err:
        cloudservers._resolve("KUBE_NODE_FLAVOR", "general1-3", flavors, "flavor", "ORD")
    assert str(err.value).startswith("KUBE_NODE_FLAVOR='general1-3' is neither the ID nor the name of a flavor in ORD")


# Mimic's, as GET /flavors/detail lists them (ram in MiB, disk in GB;
# Rackspace's memory and compute flavors have disk 0: volumes only), and
# Flex's gp.0.1.2 with its 10 GB disk.
FLAVORS = [{"id": "2", "name": "512MB Standard Instance", "vcpus": 1, "ram": 512, "disk": 20},
           {"id": "4", "name": "2GB Standard Instance", "vcpus": 2, "ram": 2048, "disk": 80},
           {"id": "general1-1", "name": "1 GB General Purpose v1", "vcpus": 1, "ram": 1024, "disk": 20},
           {"id": "general1-2", "name": "2 GB General Purpose v1", "vcpus": 2, "ram": 2048, "disk": 40},
           {"id": "general1-4", "name": "4 GB General Purpose v1", "vcpus": 4, "ram": 4096, "disk": 80},
           {"id": "memory1-15", "name": "15 GB Memory v1", "vcpus": 2, "ram": 15360, "disk": 0},
           {"id": "odd-1", "name": "1.5 GB two cores", "vcpus": 2, "ram": 1536, "disk": 40},
           {"id": "odd-2", "name": "1.7 GB two cores", "vcpus": 2, "ram": 1700, "disk": 40},
           {"id": "gp.0.1.2", "name": "gp.0.1.2", "vcpus": 1, "ram": 2048, "disk": 10}]
FLAVOR = {f["id"]: f for f in FLAVORS}


@pytest.mark.parametrize("role, flavor, ok", [
    ("master", "general1-1", False),   # the seed's default: kubeadm init refuses 1 CPU and 1 GiB
    ("master", "odd-1", False),        # 2 CPUs, but under MemCheck's 1700 MB
    ("master", "odd-2", True),
    ("master", "general1-2", True),
    ("master", "memory1-15", False),   # disk 0: boots only from a volume
    ("node", "general1-1", True),
    ("node", "2", False),
    ("node", "gp.0.1.2", False),       # 10 GB: less than Flatcar and the cluster's images need
])
def test_flavor_minimums_per_role(role, flavor, ok):
    assert (servers.flavor_problem(role, FLAVOR[flavor], FLAVORS) is None) == ok


def test_a_small_master_flavor_names_size_minimum_and_the_smallest_that_fits():
    message = servers.flavor_problem("master", FLAVOR["general1-1"], [f for f in FLAVORS if f["id"] != "odd-2"])
    assert message == ("KUBE_MASTER_FLAVOR=general1-1 (1 GB General Purpose v1) has 1 vCPU, 1024 MiB, 20 GB disk; "
                       "kubeadm init's preflight needs at least 2 vCPU, 1700 MiB and 20 GB of disk: the smallest "
                       "that fits is general1-2 (2 GB General Purpose v1, 2 vCPU, 2048 MiB, 40 GB disk)")
    assert "smallest that fits is odd-2 " in servers.flavor_problem("master", FLAVOR["general1-1"], FLAVORS)
    node = servers.flavor_problem("node", FLAVOR["2"], FLAVORS[:1])
    assert node.startswith("KUBE_NODE_FLAVOR=2 (512MB Standard Instance) has 1 vCPU, 512 MiB, 20 GB disk; a node "
                           "needs at least 1 vCPU, 1024 MiB and 20 GB of disk") and \
        node.endswith("no listed flavor is that large")


def test_a_flavor_with_too_small_a_disk_names_disk_minimum_and_the_smallest_that_fits():
    message = servers.flavor_problem("node", FLAVOR["gp.0.1.2"], FLAVORS)
    assert message == ("KUBE_NODE_FLAVOR=gp.0.1.2 (gp.0.1.2) has 1 vCPU, 2048 MiB, 10 GB disk; a node needs at "
                       "least 1 vCPU, 1024 MiB and 20 GB of disk: the smallest that fits is general1-1 "
                       "(1 GB General Purpose v1, 1 vCPU, 1024 MiB, 20 GB disk)")


def test_the_images_min_disk_and_min_ram_raise_the_minimum():
    # An image that needs 30 GB and 2 GiB: general1-1 (20 GB) no longer fits.
    message = servers.flavor_problem("node", FLAVOR["general1-1"], FLAVORS, image_min=(30, 2048))
    assert "at least 1 vCPU, 2048 MiB and 30 GB of disk (the image's min_disk)" in message
    # Of the same RAM, the flavor family of the one set (general1) first.
    assert message.endswith("the smallest that fits is general1-2 (2 GB General Purpose v1, 2 vCPU, 2048 MiB, "
                            "40 GB disk)")
    assert servers.flavor_problem("node", FLAVOR["general1-1"], FLAVORS, image_min=(13, 1024)) is None
    assert servers.minimum("master", (13, 1024)) == (2, 1700, servers.ROOT_DISK_GB)


def test_a_disk_0_flavor_is_refused_in_one_line():
    message = servers.flavor_problem("master", FLAVOR["memory1-15"], FLAVORS)
    assert "\n" not in message
    assert message == ("KUBE_MASTER_FLAVOR=memory1-15 (15 GB Memory v1) has no root disk (disk 0: it boots only "
                       "from a volume, which this tool does not create); a server needs a flavor with at least "
                       "20 GB of disk: the smallest that fits is odd-2 (1.7 GB two cores, 2 vCPU, 1700 MiB, "
                       "40 GB disk)")


def test_the_default_flavors_pass_on_mimic():
    from tasks.model import settings

    s = settings.load(environ={})
    for role in ("master", "node"):
        assert servers.flavor_problem(role, FLAVOR[s[servers.FLAVOR_SETTINGS[role]]], FLAVORS) is None


# --- the create request ----------------------------------------------------------

def request(user_data):
    return cloudservers.CreateRequest(name="k8s-node-1", image_id="i", flavor_id="f", key_name="k8s-k",
                                      nics=({"net-id": "a"},), metadata={}, user_data=user_data)


def test_user_data_over_novas_limit_is_refused_before_any_request():
    request(b"x" * 49149).check()               # 65532 bytes in base64
    with pytest.raises(UserError, match="over Nova's limit of 65535"):
        request(b"x" * 49152).check()           # 65536 bytes in base64


def test_legacy_attach_puts_the_networks_in_interface_order():
    from tasks.kinds import legacy as kind_legacy
    from tasks import kinds

    attach = kind_legacy.attach(None, None, kinds.Target("net-id", "k"), None)
    assert attach.nics == ({"net-id": "00000000-0000-0000-0000-000000000000"},
                           {"net-id": "11111111-1111-1111-1111-111111111111"}, {"net-id": "net-id"})
    assert attach.cluster_ip is None and attach.public_ip is None
