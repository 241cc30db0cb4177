"""`inv network`, `inv keypair`, `inv master`, `inv nodes` against the test
cloud (Mimic + Cloud Networks + Swift on loopback), through the real `inv`
command line. Faults come from Mimic's behaviors API, scoped to each test's
INSTANCE_PREFIX and removed when the test ends (all tests share a tenant)."""

import base64
import gzip
import json
import re
import urllib.request

import pytest
import yaml

from tasks import sshkeys
from tests.fixtures_cloud import run_inv

PUBLICNET = "00000000-0000-0000-0000-000000000000"
SERVICENET = "11111111-1111-1111-1111-111111111111"
IMAGE = "CoreOS (Stable)"   # a name Mimic's image list has


@pytest.fixture
def env(cloud_env):
    env = dict(cloud_env, NUM_NODES="2", KUBE_IMAGE=IMAGE, KUBE_MASTER_FLAVOR="general1-2",
               KUBE_NODE_FLAVOR="1 GB General Purpose v1", BOOT_TIMEOUT="60")
    run_inv(["build", "--release"], env)   # the tarball `upload` publishes (from the loopback mirror)
    return env


@pytest.fixture
def behaviors(test_cloud):
    """inject(name, params, server_name_regex) -> id; all removed at teardown."""
    ids = []

    def inject(name, parameters=None, server_name=None):
        ids.append(test_cloud.inject_nova_behavior(name, parameters or {}, server_name=server_name))
        return ids[-1]
    yield inject
    for behavior_id in ids:
        try:
            test_cloud.remove_nova_behavior(behavior_id)
        except OSError:
            pass  # removed by the test already


def ours(test_cloud, prefix):
    return sorted((srv for srv in test_cloud.servers() if srv["name"].startswith(prefix + "-")),
                  key=lambda srv: srv["name"])


def by_name(test_cloud, prefix):
    found = {}
    for srv in ours(test_cloud, prefix):
        assert srv["name"] not in found, f"duplicate server {srv['name']}"
        found[srv["name"]] = srv
    return found


def error_line(proc):
    """The run failed with exactly one `error:` line and no traceback."""
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stdout, proc.stdout
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stdout
    return errors[0]


def nova(test_cloud, path):
    """GET on the compute API as the test user (to read what the tool made)."""
    body = json.dumps({"auth": {"RAX-KSKEY:apiKeyCredentials": {
        "username": test_cloud.username, "apiKey": test_cloud.api_key}}}).encode()
    req = urllib.request.Request(test_cloud.auth_url + "/tokens", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        access = json.load(r)["access"]
    compute = next(e["publicURL"] for svc in access["serviceCatalog"] if svc["type"] == "compute"
                   for e in svc["endpoints"] if e.get("region") == "ORD")
    req = urllib.request.Request(compute.rstrip("/") + path, headers={"X-Auth-Token": access["token"]["id"]})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def user_data_text(request):
    data = base64.b64decode(request["server"]["user_data"])
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


# --- happy path, re-run -----------------------------------------------------------

def test_happy_path_builds_every_field_and_a_rerun_creates_nothing(test_cloud, env, tmp_path):
    prefix = env["INSTANCE_PREFIX"]
    first = run_inv(["network", "keypair", "master", "nodes"], env)
    servers = by_name(test_cloud, prefix)
    assert sorted(servers) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]

    # keypair: per cluster, holding the local key, which is 0600
    home = tmp_path / "home"
    private = home / ".ssh" / "id_kubernetes"
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    local_fp = sshkeys.fingerprint((home / ".ssh" / "id_kubernetes.pub").read_text())
    keypairs = [kp for kp in test_cloud.keypairs() if kp["name"] == f"{prefix}-id_kubernetes"]
    assert [kp["fingerprint"] for kp in keypairs] == [local_fp]

    network_ids = {srv["request"]["server"]["networks"][2]["uuid"] for srv in servers.values()}
    assert len(network_ids) == 1   # the one labelled PREFIX-pool-net: see the addresses below
    network_id = network_ids.pop()
    image_id = next(i["id"] for i in nova(test_cloud, "/images/detail")["images"] if i["name"] == IMAGE)
    node_flavor = next(f["id"] for f in nova(test_cloud, "/flavors")["flavors"]
                       if f["name"] == "1 GB General Purpose v1")
    for name, srv in servers.items():
        role = "master" if name.endswith("-master") else "node"
        index = "0" if role == "master" else name.rsplit("-", 1)[1]
        assert srv["status"] == "ACTIVE"
        assert srv["metadata"] == {"kube-rackspace-cluster": prefix, "kube-rackspace-role": role,
                                   "kube-rackspace-index": index}
        assert set(srv["addresses"]) == {"public", "private", f"{prefix}-pool-net"}
        detail = nova(test_cloud, f"/servers/{srv['id']}")["server"]
        assert detail["key_name"] == f"{prefix}-id_kubernetes"
        assert detail["image"]["id"] == image_id
        assert detail["flavor"]["id"] == ("general1-2" if role == "master" else node_flavor)
        # the create request as Nova received it
        request = srv["request"]["server"]
        assert request["name"] == name
        assert request["imageRef"] == image_id
        assert request["config_drive"] is True
        assert request["key_name"] == f"{prefix}-id_kubernetes"
        assert request["networks"] == [{"uuid": PUBLICNET}, {"uuid": SERVICENET}, {"uuid": network_id}]
        assert request["metadata"] == srv["metadata"]
        assert len(request["user_data"]) <= 65535
        config = user_data_text(srv["request"])
        assert config.startswith("#cloud-config")
        assert yaml.safe_load(config)["hostname"] == name
        if role == "node":  # nodes learn the master's ServiceNet address from their user data
            master_ip = servers[f"{prefix}-master"]["addresses"]["private"][0]["addr"]
            assert master_ip in config
    # secrets stay out of the output
    assert env["OS_API_KEY"] not in first.stdout and "temp_url_sig" not in first.stdout

    ids = {name: srv["id"] for name, srv in servers.items()}
    test_cloud.reset_request_counts()
    again = run_inv(["network", "keypair", "master", "nodes"], env)
    assert {name: srv["id"] for name, srv in by_name(test_cloud, prefix).items()} == ids
    assert "created" not in again.stdout and "registered" not in again.stdout
    assert len([kp for kp in test_cloud.keypairs() if kp["name"] == f"{prefix}-id_kubernetes"]) == 1


def test_raising_num_nodes_adds_only_the_missing_nodes(test_cloud, env):
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["master", "nodes"], env)
    before = {name: srv["id"] for name, srv in by_name(test_cloud, prefix).items()}
    run_inv(["nodes", "--num-nodes", "4"], env)
    after = {name: srv["id"] for name, srv in by_name(test_cloud, prefix).items()}
    assert sorted(after) == sorted(before) + [f"{prefix}-node-3", f"{prefix}-node-4"]
    assert all(after[name] == before[name] for name in before)


# --- network and keypair ------------------------------------------------------------

def network_id(output, label):
    return re.search(rf"Cloud Network {label} \(([0-9a-f-]{{36}})", output).group(1)


def test_network_of_our_label_with_another_cidr_is_an_error(test_cloud, env):
    label = f"{env['INSTANCE_PREFIX']}-pool-net"
    first = run_inv(["network"], env).stdout
    assert f"created Cloud Network {label}" in first
    again = run_inv(["network"], env).stdout
    assert "created" not in again and network_id(again, label) == network_id(first, label)
    line = error_line(run_inv(["network"], dict(env, NOVA_NETWORK="192.168.7.0/24"), check=False))
    assert "192.168.0.0/24" in line and "NOVA_NETWORK is 192.168.7.0/24" in line
    assert f"{env['INSTANCE_PREFIX']}-pool-net" in line


def test_keypair_of_the_same_name_with_another_key_stops_before_any_server(test_cloud, env, tmp_path):
    other_home = tmp_path / "other-home"
    other_home.mkdir()
    run_inv(["keypair"], dict(env, HOME=str(other_home)))   # registers a key we do not hold
    proc = run_inv(["network", "keypair", "master", "nodes"], env, check=False)
    line = error_line(proc)
    assert f"Nova keypair {env['INSTANCE_PREFIX']}-id_kubernetes holds another key" in line
    assert ours(test_cloud, env["INSTANCE_PREFIX"]) == []


def test_unknown_image_name_lists_close_matches(test_cloud, env):
    line = error_line(run_inv(["master"], dict(env, KUBE_IMAGE="CoreOS Stable"), check=False))
    assert line.startswith("error: KUBE_IMAGE='CoreOS Stable' is neither the ID nor the name")
    assert "'CoreOS (Stable)'" in line
    assert ours(test_cloud, env["INSTANCE_PREFIX"]) == []


# --- faults ------------------------------------------------------------------------------

def test_a_500_on_one_nodes_create_is_reported_and_the_rerun_adds_it(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["master"], env)
    fault = behaviors("fail", {"code": 500, "message": "synthetic compute fault"},
                      server_name=f"^{prefix}-node-2$")
    line = error_line(run_inv(["nodes"], env, check=False))
    assert f"creating server {prefix}-node-2: synthetic compute fault (HTTP 500)" in line
    servers = by_name(test_cloud, prefix)
    assert sorted(servers) == [f"{prefix}-master", f"{prefix}-node-1"]   # the other node was made
    assert servers[f"{prefix}-node-1"]["status"] == "ACTIVE"

    test_cloud.remove_nova_behavior(fault)
    run_inv(["nodes"], env)
    after = by_name(test_cloud, prefix)
    assert sorted(after) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    assert after[f"{prefix}-node-1"]["id"] == servers[f"{prefix}-node-1"]["id"]


def test_a_500_once_is_retried_after_a_look_up(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    behaviors("sequence", {"behaviors": [{"name": "fail", "parameters": {"code": 503}},
                                         {"name": "default", "parameters": {}}]},
              server_name=f"^{prefix}-node-1$")
    run_inv(["master", "nodes"], env)
    assert sorted(by_name(test_cloud, prefix)) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]


def test_a_false_negative_create_leaves_no_duplicate(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    behaviors("false-negative", {"code": 500}, server_name=f"^{prefix}-node-1$")
    run_inv(["master", "nodes"], env)
    # by_name asserts every name exists once
    assert sorted(by_name(test_cloud, prefix)) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]


def test_a_413_with_retry_after_is_waited_out(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    behaviors("sequence", {"behaviors": [{"name": "over-limit", "parameters": {"retry_after": 1}},
                                         {"name": "default", "parameters": {}}]},
              server_name=f"^{prefix}-master$")
    run_inv(["master", "nodes"], env)
    servers = by_name(test_cloud, prefix)
    assert sorted(servers) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]


def test_a_server_in_error_fails_the_run_and_the_rerun_replaces_it(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    broken = behaviors("error", server_name=f"^{prefix}-node-1$")
    line = error_line(run_inv(["master", "nodes"], env, check=False))
    assert f"{prefix}-node-1 went to ERROR" in line and "deletes and recreates" in line
    failed = by_name(test_cloud, prefix)
    assert failed[f"{prefix}-node-1"]["status"] == "ERROR"
    assert failed[f"{prefix}-node-2"]["status"] == "ACTIVE"   # the others were still waited for

    test_cloud.remove_nova_behavior(broken)
    proc = run_inv(["master", "nodes"], env)
    assert re.search(rf"deleting {prefix}-node-1 .*in ERROR", proc.stdout)
    fixed = by_name(test_cloud, prefix)
    assert fixed[f"{prefix}-node-1"]["status"] == "ACTIVE"
    assert fixed[f"{prefix}-node-1"]["id"] != failed[f"{prefix}-node-1"]["id"]
    assert fixed[f"{prefix}-node-2"]["id"] == failed[f"{prefix}-node-2"]["id"]


def test_a_server_stuck_in_build_ends_the_wait_at_boot_timeout(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    behaviors("build", {"duration": 3600}, server_name=f"^{prefix}-node-2$")
    line = error_line(run_inv(["master", "nodes"], dict(env, BOOT_TIMEOUT="3"), check=False))
    assert "BOOT_TIMEOUT (3s) ran out" in line
    assert f"{prefix}-node-2 (BUILD)" in line and f"{prefix}-node-1" not in line


# --- two clusters in one account -----------------------------------------------------------

def test_two_clusters_leave_each_other_untouched(test_cloud, env, cloud_env, tmp_path):
    a = env
    # B's names start with A's prefix, so A's list requests see B's servers too.
    b = dict(env, INSTANCE_PREFIX=a["INSTANCE_PREFIX"] + "-b", NUM_NODES="1")
    run_inv(["network", "keypair", "master", "nodes"], a)
    a_servers = by_name(test_cloud, a["INSTANCE_PREFIX"])
    # A's node-1 breaks: B's stages must neither delete nor wait for it.
    test_cloud.set_server_status(a_servers[f"{a['INSTANCE_PREFIX']}-node-1"]["id"], "ERROR")

    run_inv(["network", "keypair", "master", "nodes"], b)
    b_servers = by_name(test_cloud, b["INSTANCE_PREFIX"])
    assert sorted(b_servers) == [f"{b['INSTANCE_PREFIX']}-master", f"{b['INSTANCE_PREFIX']}-node-1"]
    assert all(srv["metadata"]["kube-rackspace-cluster"] == b["INSTANCE_PREFIX"] for srv in b_servers.values())
    after = {n: s for n, s in by_name(test_cloud, a["INSTANCE_PREFIX"]).items()
             if s["metadata"]["kube-rackspace-cluster"] == a["INSTANCE_PREFIX"]}
    assert {n: (s["id"], s["status"]) for n, s in after.items()} == {
        n: (s["id"], "ERROR" if n.endswith("-node-1") else s["status"]) for n, s in a_servers.items()}
    names = {kp["name"] for kp in test_cloud.keypairs()}
    assert {f"{a['INSTANCE_PREFIX']}-id_kubernetes", f"{b['INSTANCE_PREFIX']}-id_kubernetes"} <= names

    # and A's re-run replaces only its own broken node
    run_inv(["master", "nodes"], a)
    assert {n: s["id"] for n, s in by_name(test_cloud, b["INSTANCE_PREFIX"]).items()} == \
        {n: s["id"] for n, s in b_servers.items()}
