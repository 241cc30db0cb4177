"""remote: host keys recorded at first contact and refused when changed;
node readiness; the report table; which server `inv ssh` means."""

import json
import subprocess

import paramiko
import pytest

from tasks import kinds, names, remote, settings, ssh
from tasks.errors import UserError
from tasks.servers import Server


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
    down = remote.ServerResult(remote.Target("demo-node-1", "node", "203.0.113.2"), error="no SSH login")
    header, rows = remote.table_rows([ok, down])
    assert header == ["server", "role", "address", "ssh", "kubelet", "readyz"]
    assert rows == [["demo-master", "master", "203.0.113.1", "ok", "ok", "FAIL"],
                    ["demo-node-1", "node", "203.0.113.2", "FAIL", "-", "-"]]
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
    found = remote.cluster_servers(s, listed)
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
