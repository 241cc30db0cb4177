"""Rackspace Flex / any OpenStack, through the real `inv` command line
against the OpenStack bed (tests/osbed: real Keystone v3, Neutron, Nova,
Glance, Swift behind Keystone): plan, up, status, down, and two clusters in
one project leaving each other whole, and up/down on a bad day (a seeded
share of the tool's requests failing at the bed's fault proxies).

The bed needs its own virtualenv (scripts/bootstrap --tests makes
.venv-openstack; OSBED_VENV points elsewhere)."""

import os
import secrets

import pytest

from tests.harness import resources, run_inv
from tests.testcloud import in_loopback_namespace, release_mirror
from tests.testcloud.faults import ALL_KINDS

VERSION = "v1.31.4"
NEUTRON = ("networks", "subnets", "routers", "ports", "floatingips", "security-groups")


@pytest.fixture
def bed(os_bed):
    assert in_loopback_namespace()
    return os_bed


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    m = release_mirror.ReleaseMirror(str(tmp_path_factory.mktemp("mirror")), VERSION)
    yield m
    m.stop()


@pytest.fixture
def os_env(bed, mirror, tmp_path, release_cache):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(bed.env())
    env.update(HOME=str(home), INSTANCE_PREFIX="f" + secrets.token_hex(3), NUM_NODES="2",
               KUBE_RELEASE_URL=mirror.base_url, KUBE_VERSION=VERSION, BOOT_TIMEOUT="300",
               KUBE_DOWNLOAD_DIR=release_cache)
    run_inv(["build", "--release", VERSION], env)
    return env


def neutron(bed, kind, **query):
    token, _ = bed.user_token()
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    _s, _h, out = bed.request("GET", f"{bed.public_urls['network']}/v2.0/{kind}?{qs}", token=token)
    return out[kind.replace("-", "_")]


def cluster_shape(bed, prefix):
    """What one cluster holds in the project, by kind: the names of the
    Neutron resources carrying its tag, how many router interfaces its
    network has, any network of its name without the tag, and its servers."""
    tag = f"kube-rackspace-cluster={prefix}"
    shape = {kind: sorted(r.get("name") or "" for r in neutron(bed, kind, tags=tag)) for kind in NEUTRON}
    named = neutron(bed, "networks", name=f"{prefix}-pool-net")
    shape["untagged networks"] = [n["id"] for n in named if tag not in n["tags"]]
    shape["router interfaces"] = sum(p["device_owner"] == "network:router_interface"
                                     for n in named for p in neutron(bed, "ports", network_id=n["id"]))
    shape["servers"] = sorted(s["name"] for s in nova_servers(bed) if s["name"].startswith(prefix + "-"))
    return shape


def up_shape(prefix, nodes=2):
    """cluster_shape of what `inv up` builds (checked on `up` itself in
    test_plan_up_status_down_on_openstack)."""
    names = [f"{prefix}-master"] + [f"{prefix}-node-{i}" for i in range(1, nodes + 1)]
    return {"networks": [f"{prefix}-pool-net"], "subnets": [f"{prefix}-pool-net-subnet"],
            "routers": [f"{prefix}-router"], "ports": sorted(f"{n}-port" for n in names),
            "floatingips": [""], "security-groups": [f"{prefix}-cluster"],
            "untagged networks": [], "router interfaces": 1, "servers": names}


def test_plan_up_status_down_on_openstack(bed, os_env):
    env = os_env
    prefix = env["INSTANCE_PREFIX"]
    tag = f"kube-rackspace-cluster={prefix}"
    before = resources(bed)

    plan = run_inv(["plan"], env)
    assert "(openstack cloud)" in plan.stdout
    assert f"router         {prefix}-router" in plan.stdout and "create (gateway PUBLICNET)" in plan.stdout
    assert "ADMIN_CIDR=0.0.0.0/0: that is everywhere" in plan.stdout
    assert "gp.0.2.4" in plan.stdout                  # the smallest flavor with 2 vCPU and 1700 MB
    # The nodes' too: gp.0.1.2 has 1 vCPU and 2 GB but a 10 GB disk.
    assert "node flavor: gp.0.2.4" in plan.stdout and "gp.0.1.2" not in plan.stdout
    assert "pod network: flannel vxlan (the OpenStack default" in plan.stdout
    assert resources(bed) == before

    up = run_inv(["up"], env)
    assert f"created router {prefix}-router" in up.stdout
    nets = neutron(bed, "networks", name=f"{prefix}-pool-net")
    assert len(nets) == 1 and tag in nets[0]["tags"]
    subnet = neutron(bed, "subnets", network_id=nets[0]["id"])[0]
    assert subnet["cidr"] == "192.168.0.0/24" and subnet["dns_nameservers"] == ["1.1.1.1", "8.8.8.8"]
    group = neutron(bed, "security-groups", name=f"{prefix}-cluster")[0]
    ingress = {(r["protocol"], r["port_range_min"], r["remote_ip_prefix"], bool(r["remote_group_id"]))
               for r in group["security_group_rules"] if r["direction"] == "ingress"}
    # vxlan: members reach each other (its UDP 8472 too); nothing is open
    # to KUBE_NETWORK.
    assert ingress == {(None, None, None, True), ("tcp", 22, "0.0.0.0/0", False),
                       ("tcp", 6443, "0.0.0.0/0", False)}
    ports = {p["name"]: p for p in neutron(bed, "ports", network_id=nets[0]["id"]) if p["name"]}
    assert set(ports) == {f"{prefix}-master-port", f"{prefix}-node-1-port", f"{prefix}-node-2-port"}
    for port in ports.values():
        assert port["security_groups"] == [group["id"]] and tag in port["tags"]
        assert port["allowed_address_pairs"] == []
    fips = neutron(bed, "floatingips", tags=tag)
    assert [f["port_id"] for f in fips] == [ports[f"{prefix}-master-port"]["id"]]
    master_fip = fips[0]["floating_ip_address"]
    assert f"floating IP {master_fip}" in up.stdout
    assert cluster_shape(bed, prefix) == up_shape(prefix)

    # Post-boot checks passed on every server; the nodes have only fixed
    # addresses, which the bed refuses from outside: they were reached
    # through the master as the jump host.
    checks = up.stdout[up.stdout.index("post-boot checks\n"):]
    # Past Ready: flannel and CoreDNS on the master, the DNS query from each.
    header = checks.splitlines()[1]
    assert all(c in header for c in ("flannel runs on every node", "CoreDNS is ready", "cluster DNS answers"))
    for role, name in (("master", "master"), ("node", "node-1"), ("node", "node-2")):
        row = next(line.split() for line in checks.splitlines() if line.startswith(f"{prefix}-{name} "))
        assert row[1] == role and set(row[3:]) <= {"ok", "-"} and "ok" in row[3:], row
        address = ports[f"{prefix}-{name}-port"]["fixed_ips"][0]["ip_address"]
        assert row[2] == (master_fip if role == "master" else address)
    assert f"cluster {prefix} is up" in up.stdout
    kubeconfig = os.path.join(env["HOME"], ".kube", "rackspace", prefix, "kubeconfig")
    with open(kubeconfig) as f:
        assert f"server: https://{master_fip}:6443" in f.read()

    hostname = run_inv(["ssh", "--node", "2", "--command", "hostname"], env)
    assert hostname.stdout.strip().splitlines()[-1] == f"{prefix}-node-2"

    again = run_inv(["up", "--no-checks"], env)
    assert "created" not in again.stdout
    assert len(neutron(bed, "floatingips", tags=tag)) == 1

    status = run_inv(["status"], env)
    assert f"router: {prefix}-router" in status.stdout and f"floating IP: {master_fip}" in status.stdout
    assert f"API server: https://{master_fip}:6443" in status.stdout
    node_line = next(line for line in status.stdout.splitlines() if line.startswith(f"{prefix}-node-2 "))
    assert node_line.split()[-1] == master_fip                 # reached through the master

    down = run_inv(["down"], env)
    for what in (f"floating IP {master_fip}", f"router {prefix}-router", f"network {prefix}-pool-net",
                 f"security group {prefix}-cluster", f"port {prefix}-node-2-port"):
        assert what in down.stdout
    assert resources(bed) == before
    assert "nothing to remove" in run_inv(["down"], env).stdout


def test_the_seed_stages_one_at_a_time_build_what_up_builds_on_openstack(bed, os_env):
    """A new user follows the seed: `inv upload`, `inv network`, `inv
    keypair`, `inv master`, `inv nodes`, each alone. `inv network` makes
    the cluster's tagged network, subnet, router and security group (not
    an untagged network the later stages must refuse as someone else's);
    master and nodes add their ports, the master's floating IP and the
    servers. That is the cluster `inv up` builds: a following `inv up`
    creates nothing and its checks pass, and `inv down` leaves the project
    as it was."""
    env = os_env
    prefix = env["INSTANCE_PREFIX"]
    before = resources(bed)

    run_inv(["upload"], env)
    network = run_inv(["network"], env)
    shape = cluster_shape(bed, prefix)
    net = neutron(bed, "networks", name=f"{prefix}-pool-net")
    assert [n["id"] for n in net] == [network.stdout.strip().splitlines()[-1]]
    assert {k: shape[k] for k in ("networks", "subnets", "routers", "security-groups", "untagged networks",
                                  "router interfaces", "ports", "servers")} == \
        {k: up_shape(prefix)[k] for k in ("networks", "subnets", "routers", "security-groups",
                                           "untagged networks", "router interfaces")} | {"ports": [], "servers": []}
    assert "created" not in run_inv(["network"], env).stdout         # a re-run reuses all of it
    run_inv(["keypair"], env)
    master = run_inv(["master"], env)
    assert master.stdout.strip().splitlines()[-1].startswith(f"{prefix}-master\t")
    run_inv(["nodes"], env)
    assert cluster_shape(bed, prefix) == up_shape(prefix)
    built = resources(bed)

    up = run_inv(["up"], env)
    assert "created" not in up.stdout.replace("already created", "") and f"cluster {prefix} is up" in up.stdout
    assert resources(bed) == built

    down = run_inv(["down", "--yes"], env)
    assert f"network {prefix}-pool-net" in down.stdout
    assert resources(bed) == before


def test_two_clusters_in_one_project_leave_each_other_whole(bed, os_env):
    a = os_env
    # b chose host-gw: its ports carry KUBE_NETWORK as an address pair and
    # its group opens to it, as before vxlan became the default.
    b = dict(a, INSTANCE_PREFIX="g" + secrets.token_hex(3), NUM_NODES="1", POD_NETWORK_BACKEND="host-gw")
    before = resources(bed)
    run_inv(["up", "--no-checks"], a)
    with_a = resources(bed)
    run_inv(["up", "--no-checks"], b)
    both = resources(bed)
    for env, pairs, rule in ((a, [], False), (b, [{"ip_address": "10.240.0.0/16"}], True)):
        tag = f"kube-rackspace-cluster={env['INSTANCE_PREFIX']}"
        ports = neutron(bed, "ports", tags=tag)
        assert len(ports) == int(env["NUM_NODES"]) + 1
        assert all([{"ip_address": p["ip_address"]} for p in port["allowed_address_pairs"]] == pairs
                   for port in ports)
        group = neutron(bed, "security-groups", name=f"{env['INSTANCE_PREFIX']}-cluster")[0]
        assert any(r["remote_ip_prefix"] == "10.240.0.0/16" for r in group["security_group_rules"]) == rule
    run_inv(["down", "--yes"], b)
    assert resources(bed) == with_a
    run_inv(["down", "--yes"], a)
    assert resources(bed) == before
    assert all(both[k] >= with_a[k] for k in both)


FAULT_RUNS = int(os.environ.get("OS_FAULT_RUNS", "4"))
FAULT_RATE = 0.25


def test_up_and_down_survive_a_quarter_of_requests_failing_on_openstack(bed, os_env, capsys):
    """FAULT_RUNS seeded runs of `inv up --no-checks` then `inv down --yes`
    with a quarter of the tool's requests to Keystone, Nova, Neutron,
    Glance, Placement and Swift failing at the bed's fault proxies (503 +
    Retry-After, dropped connection, no answer within API_TIMEOUT, or done
    but its answer lost). Every
    command must succeed on its first try, with no duplicate server or
    Neutron resource, and nothing left behind."""
    import time

    env = dict(os_env, NUM_NODES="1", API_TIMEOUT="1")
    before = resources(bed)
    rows = []
    try:
        for seed in range(FAULT_RUNS):
            name = f"{env['INSTANCE_PREFIX']}f{seed}"
            e = dict(env, INSTANCE_PREFIX=name)
            tag = f"kube-rackspace-cluster={name}"
            start = time.monotonic()
            up, up_stats = faulty(bed, seed, ["up", "--no-checks"], e)
            made = {kind: len(neutron(bed, kind, tags=tag)) for kind in NEUTRON}
            servers = sorted(s["name"] for s in nova_servers(bed) if s["name"].startswith(name + "-"))
            down, down_stats = faulty(bed, 100 + seed, ["down", "--yes"], e)
            left = [s["name"] for s in nova_servers(bed) if s["name"].startswith(name + "-")]
            left += [kind for kind in NEUTRON if neutron(bed, kind, tags=tag)]
            stats = [svc for run in (up_stats, down_stats) for svc in run.values()]
            failed = sum(v for svc in stats for k, v in svc.items() if k != "forwarded")
            total = sum(sum(svc.values()) for svc in stats)
            ok = (up.returncode == 0 and down.returncode == 0 and not left
                  and servers == [f"{name}-master", f"{name}-node-1"]
                  and made == {"networks": 1, "subnets": 1, "routers": 1, "ports": 2,
                               "floatingips": 1, "security-groups": 1})
            rows.append(dict(seed=seed, ok=ok, up=up.returncode, down=down.returncode, made=made,
                             servers=servers, left=left, failed=failed, total=total,
                             elapsed=time.monotonic() - start, out=up.stdout + down.stdout))
    finally:
        bed.faults(0)
    after = resources(bed)
    with capsys.disabled():
        print(f"\nfaults (OpenStack bed): {sum(r['ok'] for r in rows)}/{FAULT_RUNS} seeded runs survived "
              f"`inv up --no-checks` + `inv down` with {FAULT_RATE:.0%} of requests failing; "
              f"nothing left behind: {after == before}")
        for r in rows:
            print(f"  seed {r['seed']}: up {r['up']} down {r['down']}, {r['failed']}/{r['total']} requests "
                  f"failed ({r['failed'] / max(r['total'], 1):.0%}), {r['elapsed']:.0f}s")
    bad = [r for r in rows if not r["ok"]]
    assert not bad, "\n\n".join(f"seed {r['seed']}: {r['servers']} {r['made']} left {r['left']}\n"
                                  f"{r['out'][-4000:]}" for r in bad)
    assert after == before


def nova_servers(bed):
    token, _ = bed.user_token()
    _s, _h, out = bed.request("GET", f"{bed.public_urls['compute']}/v2.1/servers", token=token)
    return out["servers"]


def faulty(bed, seed, args, env):
    """Run `inv ARGS` with FAULT_RATE of its requests failing; returns the
    process and the fault proxies' counts for that run alone."""
    for proxy in bed.fronts.values():
        proxy.reset_stats()
    bed.faults(FAULT_RATE, seed=seed, slow_seconds=1.5, kinds=ALL_KINDS)
    try:
        proc = run_inv(args, env, check=False)
    finally:
        bed.faults(0)
    return proc, bed.fault_stats()


def test_a_create_whose_answer_is_lost_is_found_and_tagged_once(bed, os_env, monkeypatch):
    """Neutron made it but the answer was lost (a timeout on a slow create
    does the same), before the tags were put on it. The look-up finds it by
    name, untagged, and tags it; no second one is made."""
    from tasks.services import session as cloud
    from tasks.model import names, settings

    for key in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE"):      # openstacksdk's loader reads os.environ
        monkeypatch.setenv(key, os_env[key])
    s = settings.load(environ=dict(os_env, INSTANCE_PREFIX="l" + secrets.token_hex(3)))
    api = cloud.Cloud(s).network
    tag = names.neutron_tag(s)
    made = []
    for proxy in bed.fronts.values():
        proxy.reset_stats()
    bed.faults(1.0, kinds=("lost",), match=r"^POST /v2\.0/(networks|subnets|security-groups|ports)$")
    try:
        net = api.create_network(f"{s.INSTANCE_PREFIX}-net", tags=[tag], sleep=lambda _: None)
        made.append(("networks", net["id"]))
        subnet = api.create_subnet(net["id"], f"{s.INSTANCE_PREFIX}-subnet", "10.9.0.0/24", tags=[tag],
                                   sleep=lambda _: None)
        made.append(("subnets", subnet["id"]))
        group = api.create_security_group(f"{s.INSTANCE_PREFIX}-sg", "test", tags=[tag])
        made.append(("security-groups", group["id"]))
        port = api.create_port(f"{s.INSTANCE_PREFIX}-port", net["id"], subnet["id"], [group["id"]], tags=[tag])
        made.append(("ports", port["id"]))
        lost = bed.fault_stats()["network"].get("lost", 0)
    finally:
        bed.faults(0)
    try:
        assert lost == 4                           # each create's first answer was lost, none sent twice
        for kind, rid in made:
            named = [r for r in neutron(bed, kind, network_id=net["id"]) if r["id"] == rid] \
                if kind in ("subnets", "ports") else neutron(bed, kind, id=rid)
            assert len(named) == 1 and tag in named[0]["tags"], (kind, named)
        assert [p["id"] for p in neutron(bed, "ports", network_id=net["id"])] == [port["id"]]
        assert len(neutron(bed, "networks", name=f"{s.INSTANCE_PREFIX}-net")) == 1
        assert len(neutron(bed, "security-groups", name=f"{s.INSTANCE_PREFIX}-sg")) == 1
    finally:
        for kind, rid in reversed(made):
            getattr(api, {"networks": "delete_network", "subnets": "delete_subnet",
                          "security-groups": "delete_security_group", "ports": "delete_port"}[kind])(rid)


def test_a_rule_whose_answer_is_lost_is_found_not_made_twice(bed, os_env, monkeypatch):
    """Every POST of a security group rule reaches Neutron, which makes the
    rule, and its answer is lost. create_rule's look-up (cloud.create_or_find)
    finds each rule: each POST is sent once, each rule exists once."""
    from tasks.model import settings
    from tasks.services import session as cloud

    for key in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE"):      # openstacksdk's loader reads os.environ
        monkeypatch.setenv(key, os_env[key])
    s = settings.load(environ=dict(os_env, INSTANCE_PREFIX="r" + secrets.token_hex(3)))
    api = cloud.Cloud(s).network
    group = api.create_security_group(f"{s.INSTANCE_PREFIX}-sg", "test")
    wanted = [{"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": port,
               "port_range_max": port, "remote_ip_prefix": "192.0.2.0/24"} for port in (22, 6443)]
    try:
        for proxy in bed.fronts.values():
            proxy.reset_stats()
        bed.faults(1.0, kinds=("lost",), match=r"^POST /v2\.0/security-group-rules$")
        try:
            answers = [api.create_rule(group["id"], rule, sleep=lambda _: None) for rule in wanted]
            lost = bed.fault_stats()["network"].get("lost", 0)
        finally:
            bed.faults(0)
        assert lost == 2                            # each rule's only POST lost its answer
        rules = neutron(bed, "security-group-rules", security_group_id=group["id"])
        for rule, answer in zip(wanted, answers):
            same = [r for r in rules if all(r.get(k) == v for k, v in rule.items())]
            assert len(same) == 1 and answer["id"] == same[0]["id"], (rule, same)
    finally:
        api.delete_security_group(group["id"])
