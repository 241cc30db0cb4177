"""Rackspace Flex / any OpenStack, through the real `inv` command line
against the OpenStack bed (tests/osbed: real Keystone v3, Neutron, Nova,
Glance, Swift behind Keystone): plan, up, status, down, and two clusters in
one project leaving each other whole.

The bed needs its own virtualenv (scripts/bootstrap --tests makes
.venv-openstack; OSBED_VENV points elsewhere)."""

import os
import secrets

import pytest

from tests.fixtures_cloud import run_inv
from tests.testcloud import in_loopback_namespace, release_mirror

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
def os_env(bed, mirror, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(bed.env())
    env.update(HOME=str(home), INSTANCE_PREFIX="f" + secrets.token_hex(3), NUM_NODES="2",
               KUBE_RELEASE_URL=mirror.base_url, KUBE_VERSION=VERSION, BOOT_TIMEOUT="300",
               # The bed keeps Nova and Neutron in SQLite: one create at a time.
               CREATE_CONCURRENCY="1")
    run_inv(["build", "--release", VERSION], env)
    return env


def resources(bed):
    """Everything in the project that up/down could touch, as sets of IDs."""
    token, body = bed.user_token()
    project = body["project"]["id"]
    found = {}
    for kind in NEUTRON:
        _s, _h, out = bed.request("GET", f"{bed.public_urls['network']}/v2.0/{kind}?project_id={project}",
                                  token=token)
        found[kind] = {item["id"] for item in out[kind.replace("-", "_")]}
    _s, _h, out = bed.request("GET", f"{bed.public_urls['compute']}/v2.1/servers", token=token)
    found["servers"] = {srv["id"] for srv in out["servers"]}
    _s, _h, out = bed.request("GET", f"{bed.public_urls['compute']}/v2.1/os-keypairs", token=token)
    found["keypairs"] = {kp["keypair"]["name"] for kp in out["keypairs"]}
    storage = f"{bed.public_urls['object-store']}/v1/AUTH_{project}"
    _s, _h, out = bed.request("GET", storage + "?format=json", token=token)
    objects = set()
    for container in out or []:
        _s, _h, listed = bed.request("GET", f"{storage}/{container['name']}?format=json", token=token)
        objects |= {f"{container['name']}/{o['name']}" for o in listed or []} | {container["name"] + "/"}
    found["objects"] = objects
    return found


def neutron(bed, kind, **query):
    token, _ = bed.user_token()
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    _s, _h, out = bed.request("GET", f"{bed.public_urls['network']}/v2.0/{kind}?{qs}", token=token)
    return out[kind.replace("-", "_")]


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
    assert resources(bed) == before

    up = run_inv(["up", "--no-checks"], env)
    assert f"created router {prefix}-router" in up.stdout
    nets = neutron(bed, "networks", name=f"{prefix}-pool-net")
    assert len(nets) == 1 and tag in nets[0]["tags"]
    subnet = neutron(bed, "subnets", network_id=nets[0]["id"])[0]
    assert subnet["cidr"] == "192.168.0.0/24" and subnet["dns_nameservers"] == ["1.1.1.1", "8.8.8.8"]
    group = neutron(bed, "security-groups", name=f"{prefix}-cluster")[0]
    ingress = {(r["protocol"], r["port_range_min"], r["remote_ip_prefix"], bool(r["remote_group_id"]))
               for r in group["security_group_rules"] if r["direction"] == "ingress"}
    assert ingress == {(None, None, None, True), ("tcp", 22, "0.0.0.0/0", False),
                       ("tcp", 6443, "0.0.0.0/0", False), (None, None, "10.240.0.0/16", False)}
    ports = {p["name"]: p for p in neutron(bed, "ports", network_id=nets[0]["id"]) if p["name"]}
    assert set(ports) == {f"{prefix}-master-port", f"{prefix}-node-1-port", f"{prefix}-node-2-port"}
    for port in ports.values():
        assert port["security_groups"] == [group["id"]] and tag in port["tags"]
        assert port["allowed_address_pairs"][0]["ip_address"] == "10.240.0.0/16"
    fips = neutron(bed, "floatingips", tags=tag)
    assert [f["port_id"] for f in fips] == [ports[f"{prefix}-master-port"]["id"]]
    master_fip = fips[0]["floating_ip_address"]
    assert f"floating IP {master_fip}" in up.stdout

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


def test_two_clusters_in_one_project_leave_each_other_whole(bed, os_env):
    a = os_env
    b = dict(a, INSTANCE_PREFIX="g" + secrets.token_hex(3), NUM_NODES="1")
    before = resources(bed)
    run_inv(["up", "--no-checks"], a)
    with_a = resources(bed)
    run_inv(["up", "--no-checks"], b)
    both = resources(bed)
    run_inv(["down", "--yes"], b)
    assert resources(bed) == with_a
    run_inv(["down", "--yes"], a)
    assert resources(bed) == before
    assert all(both[k] >= with_a[k] for k in both)
