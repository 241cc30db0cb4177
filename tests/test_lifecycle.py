"""The commands users type, through the real `inv` command line against the
test cloud: up, status, ssh, down; re-running after an interruption; two
clusters in one account; unhealthy servers; a changed host key."""

import json
import subprocess
import urllib.request

import pytest
import yaml

from tests.fixtures_cloud import run_inv

IMAGE = "CoreOS (Stable)"   # what Mimic's catalogue offers


@pytest.fixture
def env(cloud_env, test_cloud):
    # A small cluster, and BOOT_TIMEOUT short enough that a failing check
    # does not hold a test for long.
    return dict(cloud_env, NUM_NODES="2", KUBE_IMAGE=IMAGE, KUBE_MASTER_FLAVOR="general1-2",
                KUBE_NODE_FLAVOR="general1-2", BOOT_TIMEOUT="60")


@pytest.fixture
def built(env):
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    return env


def _json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def resources(cloud):
    """Everything in the account that up/down could touch, as sets."""
    token = cloud.token()
    network_url = cloud.mimic_url + "/cloudNetworks/ORD/v2.0"

    def neutron(kind):
        req = urllib.request.Request(f"{network_url}/{kind}", headers={"X-Auth-Token": token})
        with urllib.request.urlopen(req, timeout=10) as r:
            return {item["id"] for item in json.load(r)[kind]}

    objects = set()
    req = urllib.request.Request(cloud.storage_url + "?format=json", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=10) as r:
        containers = [c["name"] for c in json.load(r)]
    for container in containers:
        req = urllib.request.Request(f"{cloud.storage_url}/{container}?format=json", headers={"X-Auth-Token": token})
        with urllib.request.urlopen(req, timeout=10) as r:
            objects |= {f"{container}/{o['name']}" for o in json.load(r)}
        objects.add(container + "/")
    return {
        "servers": {srv["id"] for srv in cloud.servers()},
        "keypairs": {kp["name"] for kp in cloud.keypairs()},
        "networks": neutron("networks"),
        "subnets": neutron("subnets"),
        "ports": neutron("ports"),
        "objects": objects,
    }


def cluster(cloud, prefix):
    return sorted(srv["name"] for srv in cloud.servers() if srv["name"].startswith(prefix + "-"))


def test_up_status_ssh_down_leaves_the_account_as_it_was(test_cloud, built):
    env = built
    prefix = env["INSTANCE_PREFIX"]
    before = resources(test_cloud)

    up = run_inv(["up"], env)
    assert cluster(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    assert f"rackspace_{prefix}" in up.stdout and "inv ssh" in up.stdout and ":6443" in up.stdout
    config = yaml.safe_load(open(f"{env['HOME']}/.kube/config"))
    assert f"rackspace_{prefix}" in {c["name"] for c in config["contexts"]}
    assert not any(c["cluster"].get("insecure-skip-tls-verify") for c in config["clusters"])

    again = run_inv(["up"], env)
    assert "created" not in again.stdout.replace("already created", "")
    assert cluster(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]

    status = run_inv(["status"], env)
    for name in cluster(test_cloud, prefix):
        assert name in status.stdout
    assert "temp URL expires" in status.stdout

    ssh = run_inv(["ssh", "--node", "2", "--command", "hostname"], env)
    assert ssh.stdout.strip().splitlines()[-1] == f"{prefix}-node-2"
    failing = run_inv(["ssh", "--command", "exit 7"], env, check=False)
    assert failing.returncode == 7
    missing = run_inv(["ssh", "--node", "9", "--command", "hostname"], env, check=False)
    assert missing.returncode == 1
    assert missing.stdout.strip() == f"error: no node 9 in cluster {prefix}: nodes are 1-2"

    down = run_inv(["down"], env)     # no terminal: no question
    assert f"server {prefix}-master" in down.stdout
    assert resources(test_cloud) == before
    second = run_inv(["down"], env)
    assert "nothing to remove" in second.stdout
    config = yaml.safe_load(open(f"{env['HOME']}/.kube/config"))
    assert f"rackspace_{prefix}" not in {c["name"] for c in config["contexts"]}


def test_an_interrupted_up_resumes_with_one_master(test_cloud, built):
    env = built
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["master"], env)          # what an `up` stopped after the master leaves
    assert cluster(test_cloud, prefix) == [f"{prefix}-master"]
    run_inv(["up", "--no-checks"], env)
    run_inv(["up"], env)
    names = cluster(test_cloud, prefix)
    assert names == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    run_inv(["down", "--yes"], env)
    assert cluster(test_cloud, prefix) == []


def test_down_of_one_cluster_leaves_the_other_whole(test_cloud, built):
    a = built
    b = dict(a, INSTANCE_PREFIX=a["INSTANCE_PREFIX"] + "b", NUM_NODES="1")
    run_inv(["up", "--no-checks"], a)
    run_inv(["up", "--no-checks"], b)
    b_servers = {srv["id"] for srv in test_cloud.servers() if srv["name"].startswith(b["INSTANCE_PREFIX"] + "-")}
    assert len(b_servers) == 2
    run_inv(["down", "--yes"], a)
    assert cluster(test_cloud, a["INSTANCE_PREFIX"]) == []
    left = {srv["id"] for srv in test_cloud.servers() if srv["name"].startswith(b["INSTANCE_PREFIX"] + "-")}
    assert left == b_servers
    assert f"{b['INSTANCE_PREFIX']}-id_kubernetes" in {kp["name"] for kp in test_cloud.keypairs()}
    status = run_inv(["status"], b)
    assert f"{b['INSTANCE_PREFIX']}-pool-net" in status.stdout
    assert "release: none" not in status.stdout
    run_inv(["down", "--yes"], b)


def test_unhealthy_servers_are_all_reported(test_cloud, built):
    env = built
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["up", "--no-checks"], env)
    test_cloud.set_server_health(f"{prefix}-node-1", unit="kubelet", active=False,
                                 journal="kubelet[1]: failed to load kubelet config file")
    test_cloud.set_server_health(f"{prefix}-node-2", unit="kubelet", active=False,
                                 journal="kubelet[2]: node-2 is broken too")
    try:
        result = run_inv(["up"], env, check=False)
    finally:
        test_cloud.reset_server_health()
    assert result.returncode == 1
    last = result.stdout.strip().splitlines()[-1]
    # Both broken kubelets are reported, and so is the master, whose node
    # list shows those two nodes NotReady.
    assert last.startswith("error: post-boot checks failed on 3 of 3 servers")
    assert f"{prefix}-node-1 (kubelet.service is active: failed)" in last
    assert f"{prefix}-node-2 (kubelet.service is active: failed)" in last
    assert f"not Ready: {prefix}-node-1, {prefix}-node-2" in last
    assert "failed to load kubelet config file" in result.stdout
    assert "node-2 is broken too" in result.stdout
    assert "Traceback" not in result.stdout
    run_inv(["down", "--yes"], env)


def test_a_changed_host_key_is_refused(test_cloud, built):
    env = built
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["up", "--no-checks"], env)
    run_inv(["ssh", "--command", "true"], env)           # first contact: recorded
    known = f"{env['HOME']}/.kube/rackspace/{prefix}/known_hosts"
    lines = open(known).read().splitlines()
    assert len(lines) == 1
    # Another key for the same address, as a rebuilt (or impostor) server would show.
    address = lines[0].split()[0]
    keyfile = f"{env['HOME']}/otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyfile], check=True)
    with open(keyfile + ".pub") as f:
        kind, blob = f.read().split()[:2]
    with open(known, "w") as f:
        f.write(f"{address} {kind} {blob}\n")
    refused = run_inv(["ssh", "--command", "true"], env, check=False)
    assert refused.returncode == 1
    line = refused.stdout.strip().splitlines()[-1]
    assert line.startswith(f"error: {prefix}-master ({address}) presented a host key other than")
    assert known in line
    checks = run_inv(["up"], env, check=False)
    assert checks.returncode == 1 and "presented a host key other than" in checks.stdout
    run_inv(["down", "--yes"], env)


def test_plan_shows_what_up_would_do_and_changes_nothing(test_cloud, built):
    env = built
    prefix = env["INSTANCE_PREFIX"]
    before = resources(test_cloud)
    result = run_inv(["plan"], env)
    assert resources(test_cloud) == before
    out = result.stdout
    assert f"{prefix}-pool-net" in out and "create" in out
    for name in (f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"):
        assert f"{name:<32} create" in out
    plan_dir = f"{env['HOME']}/.kube/rackspace/{prefix}/plan"
    node = yaml.safe_load(open(f"{plan_dir}/{prefix}-node-1.yaml"))
    assert node["hostname"] == f"{prefix}-node-1"
    assert "192.0.2.1" in out

    run_inv(["up", "--no-checks"], env)
    result = run_inv(["plan"], env)
    for name in (f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"):
        assert f"{name:<32} reuse (ACTIVE" in result.stdout
    master_ip = next(s for s in test_cloud.servers() if s["name"] == f"{prefix}-master")["addresses"]["private"]
    master_ip = next(a["addr"] for a in master_ip if a["version"] == 4)
    assert master_ip in open(f"{plan_dir}/{prefix}-node-2.yaml").read()
    run_inv(["down", "--yes"], env)


@pytest.mark.parametrize("setting,value,message", [
    ("NUM_NODES", "0", "error: NUM_NODES (from environment) must be at least 1, got 0"),
    ("KUBE_NETWORK", "192.168.0.0/16", "error: NOVA_NETWORK (192.168.0.0/24) overlaps KUBE_NETWORK"),
    ("INSTANCE_PREFIX", "Bad_Prefix", "error: INSTANCE_PREFIX (from environment) 'Bad_Prefix' cannot be part"),
    ("OS_API_KEY", "", "error: missing credentials: OS_API_KEY (or OS_PASSWORD)"),
    ("KUBE_MASTER_FLAVOR", "general1-1",
     "error: KUBE_MASTER_FLAVOR=general1-1 (1 GB General Purpose v1) has 1 vCPU, 1024 MiB; kubeadm init's "
     "preflight needs at least 2 vCPU and 1700 MiB: the smallest that fits is general1-2 (2 GB General Purpose v1"),
])
def test_a_bad_setting_stops_up_before_any_server_exists(test_cloud, env, setting, value, message):
    before = resources(test_cloud)
    result = run_inv(["up"], dict(env, **{setting: value}), check=False)
    assert result.returncode == 1
    assert result.stdout.startswith(message) and result.stdout.count("\n") == 1, result.stdout
    assert resources(test_cloud) == before


def test_down_keeps_a_cloud_network_another_cluster_still_uses(test_cloud, built):
    a = dict(built, NOVA_NETWORK_LABEL=built["INSTANCE_PREFIX"] + "-shared")
    b = dict(a, INSTANCE_PREFIX=a["INSTANCE_PREFIX"] + "b", NUM_NODES="1")
    run_inv(["up", "--no-checks"], a)
    run_inv(["up", "--no-checks"], b)
    b_ports_before = resources(test_cloud)["ports"]
    result = run_inv(["down", "--yes"], a)
    assert f"kept Cloud Network {a['NOVA_NETWORK_LABEL']}: still used by server(s)" in result.stdout
    assert cluster(test_cloud, a["INSTANCE_PREFIX"]) == []
    assert cluster(test_cloud, b["INSTANCE_PREFIX"]) == [f"{b['INSTANCE_PREFIX']}-master", f"{b['INSTANCE_PREFIX']}-node-1"]
    after = resources(test_cloud)["ports"]
    assert after and after <= b_ports_before
    result = run_inv(["down", "--yes"], b)
    assert f"Cloud Network {a['NOVA_NETWORK_LABEL']} (" in result.stdout


def test_up_without_a_tarball_stops_before_touching_the_cloud(test_cloud, env):
    before = resources(test_cloud)
    result = run_inv(["up"], env, check=False)
    assert result.returncode == 1
    assert result.stdout.startswith("error: no kubernetes-server-linux-amd64.tar.gz: looked in ")
    assert "inv build" in result.stdout and result.stdout.count("\n") == 1, result.stdout
    assert resources(test_cloud) == before
