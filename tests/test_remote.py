"""remote: host keys recorded at first contact and refused when changed;
node readiness; the report table; which server `inv ssh` means."""

import json
import subprocess

import paramiko
import pytest

from tasks import kinds, ssh
from tasks.model import layout, names, servers, settings
from tasks.services import ssh as remote
from tasks.support.errors import UserError
from tasks.model.servers import Server


@pytest.fixture
def s(tmp_path):
    return settings.load(environ={"KUBE_STATE_DIR": str(tmp_path / "state"), "INSTANCE_PREFIX": "demo",
                                  "NUM_NODES": "3"})


def contact(test_cloud, path, load=True):
    """One SSH connection to the test cloud's real sshd, host keys checked as
    remote.connection does (the file, then RecordNewHostKey). The login
    itself fails (a key the server does not know): host keys are settled
    before authentication. Returns the name the key is recorded under."""
    client = paramiko.SSHClient()
    if load and path.exists():
        client.load_host_keys(str(path))
    client.set_missing_host_key_policy(remote.RecordNewHostKey(path))
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.connect("127.0.0.1", port=test_cloud.sshd_port, username="root",
                           pkey=paramiko.Ed25519Key.from_private_key_file(str(stranger_key(path))),
                           look_for_keys=False, allow_agent=False, timeout=10)
    finally:
        client.close()
    return f"[127.0.0.1]:{test_cloud.sshd_port}"


def stranger_key(path):
    key = path.parent.parent / "stranger"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def test_first_contact_is_recorded_and_a_changed_key_refused(s, test_cloud):
    path = remote.known_hosts_path(s)
    host = contact(test_cloud, path)
    assert (path.stat().st_mode & 0o777) == 0o600
    recorded = paramiko.HostKeys(str(path))
    server_key = recorded.lookup(host)["ssh-ed25519"]
    with open(f"{test_cloud.workdir}/ssh/ssh_host_ed25519_key.pub") as f:
        assert f.read().split()[1] == server_key.get_base64()
    # Seen again by another run, from the file or (raced) by the policy: fine.
    contact(test_cloud, path)
    contact(test_cloud, path, load=False)
    assert len(path.read_text().splitlines()) == 1
    # Another key on record for that address: refused either way.
    other = paramiko.Ed25519Key.from_private_key_file(str(stranger_key(path)))
    path.write_text(f"{host} ssh-ed25519 {other.get_base64()}\n")
    for load in (True, False):
        with pytest.raises(paramiko.BadHostKeyException):
            contact(test_cloud, path, load=load)
    assert path.read_text() == f"{host} ssh-ed25519 {other.get_base64()}\n"


def test_refusal_names_the_server_and_the_file(s):
    message = str(remote.host_key_refusal(s, "demo-node-1", "203.0.113.9"))
    assert "demo-node-1 (203.0.113.9)" in message
    assert str(remote.known_hosts_path(s)) in message


def _node(name, ready):
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True" if ready else "False"}]}}


def test_nodes_ready():
    listing = json.dumps({"items": [_node("a", True), _node("b", False)]})
    assert remote.nodes_ready(listing, ["a"]) == ""
    assert remote.nodes_ready(listing, ["a", "b", "c"]) == "not registered: c; not Ready: b"
    assert remote.nodes_ready("", ["a"]) == remote.NO_LIST


def test_table_has_a_column_per_check_and_marks_failures():
    ok = remote.ServerResult(remote.Target("demo-master", "master", "203.0.113.1"),
                             [remote.CheckResult("kubelet", True), remote.CheckResult("readyz", False, "refused")],
                             journal=("kubelet.service", "boom"))
    down = remote.ServerResult(remote.Target("demo-node-1", "node", "203.0.113.2"), error="no SSH login",
                               planned=("kubelet", "cluster DNS answers"))
    header, rows = remote.table_rows([ok, down])
    # A check no server got to (after a failure, or no login) keeps its column.
    assert header == ["server", "role", "address", "ssh", "kubelet", "readyz", "cluster DNS answers"]
    assert rows == [["demo-master", "master", "203.0.113.1", "ok", "ok", "FAIL", "-"],
                    ["demo-node-1", "node", "203.0.113.2", "FAIL", "-", "-", "-"]]
    text = remote.plain_table(header, rows)
    lines = text.splitlines()
    # Aligned: every row's role column starts where the header's does.
    assert {line.index(cell, len("demo-master")) for line, cell in zip(lines, ["role", "master", "node"])} \
        == {lines[0].index("role")}


def test_report_names_every_failing_server(capsys):
    bad = [remote.ServerResult(remote.Target(f"demo-node-{i}", "node", f"203.0.113.{i}"),
                               [remote.CheckResult("kubelet.service is active", False, "exit status 3")],
                               journal=("kubelet.service", f"journal of {i}")) for i in (1, 2)]
    good = remote.ServerResult(remote.Target("demo-master", "master", "203.0.113.9"),
                               [remote.CheckResult("kubelet.service is active", True)])
    with pytest.raises(UserError) as caught:
        remote.report([good] + bad)
    assert "demo-node-1" in str(caught.value) and "demo-node-2" in str(caught.value)
    assert "demo-master" not in str(caught.value)
    out = capsys.readouterr().out
    assert "journal of 1" in out and "journal of 2" in out
    remote.report([good])


def _server(s, name, role, index, prefix=None, status="ACTIVE"):
    meta = names.server_metadata(s, role, index)
    if prefix:
        meta[names.META_CLUSTER] = prefix
    return Server(id=f"id-{name}-{prefix or ''}", name=name, status=status, metadata=meta,
                  addresses={"public": [{"version": 4, "addr": f"203.0.113.{index + 1}"}]})


def test_cluster_servers_and_pick(s):
    listed = [_server(s, "demo-node-2", "node", 2), _server(s, "demo-master", "master", 0),
              _server(s, "demo-node-1", "node", 1),
              _server(s, "demo-node-3", "node", 3, prefix="other"),      # another cluster's metadata
              _server(s, "demo-node-4", "node", 4, status="DELETED")]
    found = servers.cluster_servers(s, listed)
    assert [srv.name for srv in found] == ["demo-master", "demo-node-1", "demo-node-2"]
    assert ssh.pick(s, found).name == "demo-master"
    assert ssh.pick(s, found, "2").name == "demo-node-2"
    with pytest.raises(UserError, match="no node 7 in cluster demo: nodes are 1-2"):
        ssh.pick(s, found, "7")
    with pytest.raises(UserError, match="no cluster named demo"):
        ssh.pick(s, [])


def test_ssh_argv_uses_the_cluster_key_and_known_hosts(s):
    argv = ssh.ssh_argv(s, "203.0.113.5", "hostname")
    assert argv[-3:] == ["203.0.113.5", "--", "hostname"]
    assert f"UserKnownHostsFile={remote.known_hosts_path(s)}" in argv
    assert "StrictHostKeyChecking=accept-new" in argv
    assert str(names.private_key_path(s)) in argv


def test_a_node_behind_the_master_is_reached_through_it_as_gateway(s, tmp_path, monkeypatch):
    # Fabric opens the gateway first and tunnels to the node through it; the
    # same config (SSH_CONFIG, user, key) and the cluster's known_hosts apply
    # to both hops.

    monkeypatch.setenv("HOME", str(tmp_path))
    key_path = names.private_key_path(s)
    key_path.parent.mkdir(parents=True)
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    conn = remote.connection(s, "192.168.0.6", gateway="198.51.100.7")
    assert conn.host == "192.168.0.6" and conn.user == s.SSH_USER
    assert conn.gateway is not None and conn.gateway.host == "198.51.100.7"
    assert conn.gateway.user == s.SSH_USER and conn.gateway.gateway is None
    assert isinstance(conn.gateway.client._policy, remote.RecordNewHostKey)
    assert remote.connection(s, "198.51.100.7").gateway is None
    target = remote.target(Server(id="1", name="demo-node-1", status="ACTIVE",
                                  metadata={names.META_ROLE: "node", names.META_INDEX: "1"},
                                  reach=kinds.Reach(address="192.168.0.6", cluster_ip="192.168.0.6",
                                                    gateway="198.51.100.7")))
    assert (target.address, target.cluster_ip, target.gateway) == ("192.168.0.6", "192.168.0.6", "198.51.100.7")


# --- the checks past "nodes are Ready": pods and the cluster DNS -------------

def _pod(name, node, phase="Running", ready=True, waiting=None, deleting=False):
    """A pod as `kubectl get pods -o json` lists it (the fields read)."""
    status = {"phase": phase, "conditions": [{"type": "Initialized", "status": "True"},
                                             {"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        status["containerStatuses"] = [{"name": "c", "ready": False, "state": {"waiting": {"reason": waiting}}}]
    meta = {"name": name, "namespace": "kube-flannel"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def _list(*pods):
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(pods)})


def test_pod_state_says_why_a_pod_is_not_running():
    assert remote.pod_state(_pod("a", "n")) == ""
    assert remote.pod_state(_pod("a", "n", ready=False, waiting="CrashLoopBackOff")) == "CrashLoopBackOff"
    assert remote.pod_state(_pod("a", "n", phase="Pending", ready=False)) == "Pending"
    assert remote.pod_state(_pod("a", "n", ready=False)) == "not Ready"
    assert remote.pod_state(_pod("a", "n", deleting=True)) == "Terminating"


def test_flannel_must_run_on_every_node():
    nodes = ["demo-master", "demo-node-1", "demo-node-2"]
    running = [_pod(f"kube-flannel-ds-{i}", n) for i, n in enumerate(nodes)]
    assert remote.flannel_running(_list(*running), nodes) == ""
    # One crashing, one node without a pod: both named, with what is wrong.
    crashing = _pod("kube-flannel-ds-9", "demo-node-1", ready=False, waiting="CrashLoopBackOff")
    assert remote.flannel_running(_list(running[0], crashing), nodes) == \
        "flannel is not running on demo-node-1 (CrashLoopBackOff), demo-node-2 (no pod)"
    # A replaced pod still terminating beside its running successor is fine.
    old = _pod("kube-flannel-ds-old", "demo-node-1", deleting=True)
    assert remote.flannel_running(_list(old, *running), nodes) == ""
    assert remote.flannel_running(_list(*running, old), nodes) == ""
    assert remote.flannel_running("error: the server doesn't have a resource type", nodes) == remote.NO_PODS


def test_coredns_must_have_pods_all_ready():
    ready = [_pod("coredns-1", "demo-master"), _pod("coredns-2", "demo-master")]
    assert remote.coredns_ready(_list(*ready)) == ""
    assert remote.coredns_ready(_list()) == "no CoreDNS pod"
    pending = _pod("coredns-2", "", phase="Pending", ready=False)
    assert remote.coredns_ready(_list(ready[0], pending)) == "CoreDNS not ready: coredns-2 on no node (Pending)"
    assert remote.coredns_ready("") == remote.NO_PODS


# What BIND 9.18's `dig +short +time=2 +tries=2 @SERVER NAME A` printed (DiG
# 9.18.49, the major version Flatcar stable ships), to stdout, with exit status:
DIG_ANSWER = (0, "10.0.0.1\n")
DIG_TIMEOUT = (9, ";; communications error to 10.0.0.10#53: timed out\n"
                  ";; communications error to 10.0.0.10#53: timed out\n"
                  ";; no servers could be reached\n")
DIG_REFUSED = (9, ";; communications error to 10.0.0.10#53: connection refused\n"
                  ";; communications error to 10.0.0.10#53: connection refused\n"
                  ";; no servers could be reached\n")
DIG_NXDOMAIN = (0, "")


def test_the_dns_check_passes_only_on_an_address():
    check = layout.dns_check(layout.ClusterDNS("10.0.0.10", "cluster.local", "host-gw"))
    said = {name: remote.outcome(check, status, out, "", [])
            for name, (status, out) in (("answer", DIG_ANSWER), ("timeout", DIG_TIMEOUT),
                                        ("refused", DIG_REFUSED), ("nxdomain", DIG_NXDOMAIN))}
    assert said == {"answer": "", "timeout": "communications error to 10.0.0.10#53: timed out",
                    "refused": "communications error to 10.0.0.10#53: connection refused",
                    "nxdomain": "the answer holds no address"}
    # Not dig's: a shell that cannot find it says so on stderr.
    assert remote.outcome(check, 127, "", "sh: 1: dig: not found\n", []) == "sh: 1: dig: not found"


def test_outcome_reads_each_checks_output_by_its_expect():
    master = {c.expect: c for c in layout.checks("master", "192.0.2.10",
                                                  layout.ClusterDNS("10.0.0.10", "cluster.local", "vxlan"))}
    assert set(master) == {"", *layout.EXPECT}
    nodes = json.dumps({"items": [_node("demo-master", True)]})
    assert remote.outcome(master["nodes"], 0, nodes, "", ["demo-master"]) == ""
    assert remote.outcome(master["nodes"], 0, nodes, "", ["demo-master", "demo-node-1"]) == \
        "not registered: demo-node-1"
    assert remote.outcome(master["flannel"], 0, _list(), "", ["demo-master"]) == \
        "flannel is not running on demo-master (no pod)"
    assert remote.outcome(master["coredns"], 1, "", "The connection to the server was refused\n", []) == \
        "The connection to the server was refused"
    assert remote.outcome(master[""], 0, "anything", "", []) == ""


def test_a_failed_check_prints_its_hint_and_diagnostics(capsys):
    hint = "pods on demo-node-2 cannot reach pods on other nodes: POD_NETWORK_BACKEND=vxlan; see README"
    bad = remote.ServerResult(remote.Target("demo-node-2", "node", "192.0.2.12"),
                              [remote.CheckResult("kubelet.service is active", True),
                               remote.CheckResult("cluster DNS answers", False,
                                                  "communications error to 10.0.0.10#53: timed out", hint)],
                              journal=("ip route show", "default via 192.0.2.1 dev eth0"))
    with pytest.raises(UserError) as caught:
        remote.report([bad])
    out = capsys.readouterr().out.splitlines()
    assert hint in out
    assert "demo-node-2: cluster DNS answers: communications error to 10.0.0.10#53: timed out" in out
    assert out[out.index("--- demo-node-2: ip route show ---") + 1] == "default via 192.0.2.1 dev eth0"
    assert "demo-node-2 (cluster DNS answers: communications error" in str(caught.value)


def test_cluster_dns_follows_the_settings(tmp_path):
    s = settings.load(environ={"KUBE_STATE_DIR": str(tmp_path), "DNS_SERVER_IP": "10.0.0.53",
                               "DNS_DOMAIN": "dev.example"})
    assert remote.cluster_dns(s, "vxlan") == layout.ClusterDNS("10.0.0.53", "dev.example", "vxlan")
    assert remote.cluster_dns(settings.load(environ={"ENABLE_CLUSTER_DNS": "false"}), "host-gw") is None
