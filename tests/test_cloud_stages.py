"""`inv network`, `inv keypair`, `inv master`, `inv nodes` against the test
cloud (Mimic + Cloud Networks + Swift on loopback), through the real `inv`
command line. Faults come from Mimic's behaviors API, scoped to each test's
INSTANCE_PREFIX and removed when the test ends (all tests share a tenant)."""

import base64
import dataclasses
import datetime
import gzip
import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from tasks.services import compute as cloudservers
from tasks.model import layout, names, pki, settings, sshkeys
from tasks.steps import tokens
from tasks.services.session import Cloud
from tasks.support.errors import ConfigError
from tests.harness import run_inv

PUBLICNET, SERVICENET = names.PUBLICNET, names.SERVICENET
IMAGE = "CoreOS (Stable)"   # a name Mimic's image list has


@pytest.fixture
def env(cloud_env, release_cache):
    env = dict(cloud_env, NUM_NODES="2", KUBE_IMAGE=IMAGE, KUBE_MASTER_FLAVOR="general1-2",
               KUBE_NODE_FLAVOR="1 GB General Purpose v1", BOOT_TIMEOUT="60", KUBE_DOWNLOAD_DIR=release_cache)
    run_inv(["build", "--release"], env)   # the tarball `upload` publishes (from the loopback mirror)
    return env


class Behaviors:
    """inject(name, params, server_name_regex) -> id; remove(id); what the
    test did not remove goes at teardown, and a removal that fails fails
    the test."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.ids = []

    def __call__(self, name, parameters=None, server_name=None):
        self.ids.append(self.cloud.inject_nova_behavior(name, parameters or {}, server_name=server_name))
        return self.ids[-1]

    def remove(self, behavior_id):
        self.ids.remove(behavior_id)
        self.cloud.remove_nova_behavior(behavior_id)


@pytest.fixture
def behaviors(test_cloud):
    injected = Behaviors(test_cloud)
    yield injected
    while injected.ids:
        injected.remove(injected.ids[0])


def compute_log(test_cloud, since):
    return [r for r in test_cloud.request_log(since) if r["service"] == "compute"]


def is_list(request):
    return request["method"] == "GET" and request["path"].endswith("/servers/detail")


def is_create(request):
    return request["method"] == "POST" and request["path"].endswith("/servers")


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
    url, merged = compute.rstrip("/") + path, None
    while url:   # lists come in pages (the test cloud pages at 5): follow the next links
        req = urllib.request.Request(url, headers={"X-Auth-Token": access["token"]["id"]})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.load(r)
        url = None
        if merged is None:
            merged = body
        else:
            for key, value in body.items():
                if isinstance(value, list) and not key.endswith("_links"):
                    merged[key].extend(value)
        for key in [k for k in body if k.endswith("_links")]:
            url = next((link["href"] for link in body[key] if link.get("rel") == "next"), None)
    return merged


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
        if role == "node":  # nodes join the master at its Cloud Network address, never ServiceNet
            master = servers[f"{prefix}-master"]["addresses"]
            assert f'apiServerEndpoint: "{master[f"{prefix}-pool-net"][0]["addr"]}:6443"' in config
            assert master["private"][0]["addr"] not in config
    # secrets stay out of the output
    assert env["OS_API_KEY"] not in first.stdout and "temp_url_sig" not in first.stdout

    ids = {name: srv["id"] for name, srv in servers.items()}
    test_cloud.reset_request_counts()
    mark = test_cloud.request_log_mark()
    again = run_inv(["network", "keypair", "master", "nodes"], env)
    assert {name: srv["id"] for name, srv in by_name(test_cloud, prefix).items()} == ids
    # As the cloud saw it: nothing but reads (and a token per stage), and
    # the stages read the cluster's servers by list requests, not one by one.
    log = test_cloud.request_log(mark)
    assert {(r["method"], r["path"]) for r in log if r["method"] != "GET"} == {("POST", "/identity/v2.0/tokens")}
    counts = test_cloud.request_counts()
    lists = [r for r in log if is_list(r)]
    assert counts["compute"] == len([r for r in log if r["service"] == "compute"])
    assert 1 <= len(lists) <= 4 and not any(re.search(r"/servers/[0-9a-f-]{36}$", r["path"]) for r in log)
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


# --- the bootstrap token -------------------------------------------------------------

def token_record(env):
    path = Path(env["HOME"]) / ".kube" / "rackspace" / env["INSTANCE_PREFIX"] / pki.TOKEN_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return path, pki.read_token(path.parent)


def join_token(test_cloud, prefix, name):
    config = yaml.safe_load(user_data_text(by_name(test_cloud, prefix)[name]["request"]))
    kubeadm = next(f["content"] for f in config["write_files"] if f["path"] == "/etc/kube-rackspace/kubeadm.yaml")
    docs = list(yaml.safe_load_all(kubeadm))
    if docs[0]["kind"] == "JoinConfiguration":
        return docs[0]["discovery"]["bootstrapToken"]["token"]
    return docs[0]["bootstrapTokens"][0]


def test_nodes_made_after_the_token_expired_join_with_a_new_one(test_cloud, env):
    prefix = env["INSTANCE_PREFIX"]
    master = f"{prefix}-master"
    run_inv(["master", "nodes"], env)
    path, first = token_record(env)
    # The master's kubeadm init registers the token; its bootstrap script
    # counts the ttl at boot from the recorded expiry (no `expires` beside it).
    registered = join_token(test_cloud, prefix, master)
    assert registered["token"] == first.token and registered["ttl"] == "@TOKEN_TTL@"
    assert "expires" not in registered
    master_data = yaml.safe_load(user_data_text(by_name(test_cloud, prefix)[master]["request"]))
    script = next(f["content"] for f in master_data["write_files"] if f["path"] == layout.BOOTSTRAP_SCRIPT)
    assert f"token_expires={first.expires_text}" in script
    left = first.expires - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=23, minutes=50) < left <= datetime.timedelta(hours=24)
    assert join_token(test_cloud, prefix, f"{prefix}-node-2") == first.token
    assert test_cloud.kube_objects(master, "kube-system", "Secret") == {}

    # A day later: the token has expired.
    pki.write_token(path.parent, dataclasses.replace(
        first, expires=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)))
    out = run_inv(["nodes", "--num-nodes", "3"], env).stdout
    assert f"bootstrap token expired: creating a new one on {master}" in out
    _, second = token_record(env)
    assert second.token != first.token and second.expires > first.expires
    assert second.token not in out
    secrets = test_cloud.kube_objects(master, "kube-system", "Secret")
    token_id, token_secret = second.token.split(".")
    # The Secret as https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/ defines it.
    assert secrets == {f"bootstrap-token-{token_id}": {
        "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "stringData": {"description": tokens.DESCRIPTION, "token-id": token_id, "token-secret": token_secret,
                       "expiration": second.expires_text, "usage-bootstrap-authentication": "true",
                       "usage-bootstrap-signing": "true",
                       "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}}}
    # The new node joins with the new token; the others were not touched.
    assert join_token(test_cloud, prefix, f"{prefix}-node-3") == second.token
    assert join_token(test_cloud, prefix, f"{prefix}-node-1") == first.token

    # Still fresh: nothing renewed.
    again = run_inv(["nodes", "--num-nodes", "4"], env).stdout
    assert "bootstrap token" not in again
    assert token_record(env)[1] == second
    assert join_token(test_cloud, prefix, f"{prefix}-node-4") == second.token
    assert len(test_cloud.kube_objects(master, "kube-system", "Secret")) == 1


def test_a_token_the_cluster_cannot_take_creates_no_node(test_cloud, env):
    prefix = env["INSTANCE_PREFIX"]
    master = f"{prefix}-master"
    env = dict(env, NUM_NODES="1")
    run_inv(["master", "nodes"], env)
    path, first = token_record(env)
    # Within 2 x BOOT_TIMEOUT of expiry: nodes made now might not join in time.
    soon = dataclasses.replace(first, expires=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
                               + datetime.timedelta(seconds=100))
    pki.write_token(path.parent, soon)
    test_cloud.set_server_health(master, unit="kube-apiserver", active=False)
    try:
        line = error_line(run_inv(["nodes", "--num-nodes", "2"], env, check=False))
    finally:
        test_cloud.reset_server_health(master)
    assert line.startswith(f"error: cannot renew the bootstrap token on {master}: kubectl create said: "
                           "The connection to the server")
    assert sorted(by_name(test_cloud, prefix)) == [master, f"{prefix}-node-1"]
    assert token_record(env)[1] == soon
    out = run_inv(["nodes", "--num-nodes", "2"], env).stdout
    assert "bootstrap token expires soon" in out
    assert join_token(test_cloud, prefix, f"{prefix}-node-2") == token_record(env)[1].token != soon.token


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

    behaviors.remove(fault)
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
    behaviors("sequence", {"behaviors": [{"name": "over-limit", "parameters": {"retry_after": 2}},
                                         {"name": "default", "parameters": {}}]},
              server_name=f"^{prefix}-master$")
    mark = test_cloud.request_log_mark()
    run_inv(["master", "nodes"], env)
    servers = by_name(test_cloud, prefix)
    assert sorted(servers) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    # The master's create: refused once, sent again after the 2 s it was told.
    creates = [r for r in compute_log(test_cloud, mark) if is_create(r)]
    assert [r["status"] for r in creates[:2]] == [413, 202]
    assert 1.9 <= creates[1]["t"] - creates[0]["t"] < 5


def test_transient_statuses_are_retried_and_retry_after_waited_for(test_cloud, env):
    """Each retried status leads to the same request again; a Retry-After of
    2 s puts about 2 s between the two requests, as the cloud saw them."""
    prefix = env["INSTANCE_PREFIX"]
    servers_list = rf"^GET /mimicking/[^ ]*/servers/detail\?name={prefix}-$"
    networks_list = rf"^GET /cloudNetworks/ORD/v2.0/networks\?name={prefix}-pool-net$"
    for status in (502, 504, 500, 503):
        test_cloud.inject_fault(servers_list, status, body={"message": f"synthetic {status}"})
    test_cloud.inject_fault(networks_list, 413, headers={"Retry-After": "2"},
                            body={"overLimit": {"code": 413, "message": "slow down"}})
    mark = test_cloud.request_log_mark()
    try:
        result = run_inv(["status"], env)
    finally:
        test_cloud.clear_faults()
    assert f"no cluster named {prefix}" in result.stdout
    log = test_cloud.request_log(mark)
    listed = [r for r in log if r["service"] == "compute" and is_list(r)]
    assert [r["status"] for r in listed] == [502, 504, 500, 503, 200]
    networks = [r for r in log if r["path"].endswith("/networks")]
    assert [r["status"] for r in networks] == [413, 200]
    assert 1.9 <= networks[1]["t"] - networks[0]["t"] < 5


def test_a_create_over_the_user_data_limit_is_never_sent(test_cloud, cloud_env):
    s = settings.load(environ=cloud_env)
    nova = Cloud(s).compute
    request = cloudservers.CreateRequest(
        name=f"{s.INSTANCE_PREFIX}-master", image_id=nova.image_id(IMAGE), flavor_id="general1-1",
        key_name="", nics=({"net-id": PUBLICNET},), metadata={}, user_data=os.urandom(50000))
    mark = test_cloud.request_log_mark()
    with pytest.raises(ConfigError, match="over Nova's limit of 65535"):
        nova.create_server(s, request)
    assert [r for r in test_cloud.request_log(mark) if r["method"] != "GET"] == []
    assert ours(test_cloud, s.INSTANCE_PREFIX) == []


def test_a_server_in_error_fails_the_run_and_the_rerun_replaces_it(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    broken = behaviors("error", server_name=f"^{prefix}-node-1$")
    line = error_line(run_inv(["master", "nodes"], env, check=False))
    assert f"{prefix}-node-1 went to ERROR" in line and "deletes and recreates" in line
    failed = by_name(test_cloud, prefix)
    assert failed[f"{prefix}-node-1"]["status"] == "ERROR"
    assert failed[f"{prefix}-node-2"]["status"] == "ACTIVE"   # the others were still waited for

    behaviors.remove(broken)
    proc = run_inv(["master", "nodes"], env)
    assert re.search(rf"deleting {prefix}-node-1 .*in ERROR", proc.stdout)
    fixed = by_name(test_cloud, prefix)
    assert fixed[f"{prefix}-node-1"]["status"] == "ACTIVE"
    assert fixed[f"{prefix}-node-1"]["id"] != failed[f"{prefix}-node-1"]["id"]
    assert fixed[f"{prefix}-node-2"]["id"] == failed[f"{prefix}-node-2"]["id"]


def test_a_server_stuck_in_build_ends_the_wait_at_boot_timeout(test_cloud, env, behaviors):
    prefix = env["INSTANCE_PREFIX"]
    behaviors("build", {"duration": 3600}, server_name=f"^{prefix}-node-2$")
    mark = test_cloud.request_log_mark()
    line = error_line(run_inv(["master", "nodes"], dict(env, BOOT_TIMEOUT="4"), check=False))
    assert "BOOT_TIMEOUT (4s) ran out" in line
    assert f"{prefix}-node-2 (BUILD)" in line and f"{prefix}-node-1" not in line
    # The wait polls with one list request for all three servers: after
    # the last create, list requests come one at a time, a poll interval
    # (1 s at least) apart, and no server is read on its own.
    log = compute_log(test_cloud, mark)
    last_create = max(i for i, r in enumerate(log) if is_create(r))
    polls = [r["t"] for r in log[last_create:] if is_list(r)]
    assert len(polls) >= 3, log
    assert min(b - a for a, b in zip(polls, polls[1:])) >= 0.9, polls
    assert not any(re.search(r"/servers/[0-9a-f-]{36}$", r["path"]) for r in log)


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
