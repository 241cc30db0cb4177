"""The commands users type, through the real `inv` command line against the
test cloud: up, status, ssh, down; re-running after an interruption; two
clusters in one account; unhealthy servers; a changed host key."""

import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.harness import resources, run_inv
from tests.testcloud.util import REPO_ROOT

IMAGE = "CoreOS (Stable)"   # what Mimic's catalogue offers


@pytest.fixture
def env(cloud_env, test_cloud):
    # A small cluster, and BOOT_TIMEOUT short enough that a failing check
    # does not hold a test for long.
    return dict(cloud_env, NUM_NODES="2", KUBE_IMAGE=IMAGE, KUBE_MASTER_FLAVOR="general1-2",
                KUBE_NODE_FLAVOR="general1-2", BOOT_TIMEOUT="60")


@pytest.fixture
def built(env, release_cache):
    env["KUBE_DOWNLOAD_DIR"] = release_cache
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    return env


def _json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def cluster(cloud, prefix):
    return sorted(srv["name"] for srv in cloud.servers() if srv["name"].startswith(prefix + "-"))


def ids_of(cloud, prefix):
    """{name: id} of the servers whose metadata names cluster `prefix`."""
    return {srv["name"]: srv["id"] for srv in cloud.servers()
            if srv["metadata"].get("kube-rackspace-cluster") == prefix}


def compute(cloud, method, path, body=None):
    """A compute API request as the test user (to make what the tool did not)."""
    token = cloud.token()
    access_req = urllib.request.Request(
        cloud.auth_url + "/tokens", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"auth": {"RAX-KSKEY:apiKeyCredentials": {
            "username": cloud.username, "apiKey": cloud.api_key}}}).encode())
    with urllib.request.urlopen(access_req, timeout=10) as r:
        catalog = json.load(r)["access"]["serviceCatalog"]
    url = next(e["publicURL"] for svc in catalog if svc["type"] == "compute" for e in svc["endpoints"])
    req = urllib.request.Request(url.rstrip("/") + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def impostor(cloud, name):
    """A server named like a cluster's, made by someone else: no metadata."""
    page, image = compute(cloud, "GET", "/images/detail"), None
    while image is None:   # the test cloud pages its lists: follow the next links
        image = next((i["id"] for i in page["images"] if i["name"] == IMAGE), None)
        if image is None:
            marker = page["images"][-1]["id"]
            page = compute(cloud, "GET", f"/images/detail?marker={marker}")
    return compute(cloud, "POST", "/servers", {"server": {
        "name": name, "imageRef": image, "flavorRef": "general1-1"}})["server"]["id"]


def run_in_pty(args, env, answer=None, timeout=60):
    """Run `inv ARGS` with a pseudo-terminal as its stdin, stdout and stderr
    (as at a terminal); type `answer` once the output contains its key.
    answer: (expected text, bytes to type) or None. Returns (exit status,
    everything the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, env=env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert time.monotonic() < deadline, f"inv {' '.join(args)} still running:\n{shown.decode()}"
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:   # EIO: the last holder of the terminal is gone
                    data = b""
                if not data and proc.poll() is not None:
                    break
                shown += data
            elif proc.poll() is not None:
                break
            if answer and answer[0].encode() in shown:
                os.write(master, answer[1])
                answer = None
        return proc.wait(10), shown.decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def secret_files_are_private(root):
    """Every file under `root` is 0600 and every directory 0700."""
    root = Path(root)
    assert root.is_dir()
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


def test_build_up_status_ssh_kubeconfig_down_leaves_the_account_as_it_was(test_cloud, env, tmp_path):
    prefix = env["INSTANCE_PREFIX"]
    before = resources(test_cloud)

    # `inv build up`: invoke runs both, in that order.
    up = run_inv(["build", "--release", env["KUBE_VERSION"], "up"], env)
    assert cluster(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    assert f"rackspace_{prefix}" in up.stdout and "inv ssh" in up.stdout and ":6443" in up.stdout
    kube_config = Path(env["HOME"]) / ".kube" / "config"
    config = yaml.safe_load(kube_config.read_text())
    assert f"rackspace_{prefix}" in {c["name"] for c in config["contexts"]}
    assert not any(c["cluster"].get("insecure-skip-tls-verify") for c in config["clusters"])
    # Whatever holds a secret is the user's alone: the state dir (CA and
    # its key, tokens, admin kubeconfig, release record with the temp URL),
    # the merged kubeconfig, the cluster key.
    state = Path(env["HOME"]) / ".kube" / "rackspace" / prefix
    assert {"known_hosts", "release.json"} <= {p.name for p in state.iterdir()}
    secret_files_are_private(state)
    for path in (kube_config, Path(env["HOME"]) / ".ssh" / "id_kubernetes"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    again = run_inv(["up", "--kubeconfig", str(tmp_path / "elsewhere.yaml")], env)
    assert "created" not in again.stdout.replace("already created", "")
    assert cluster(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    elsewhere = yaml.safe_load((tmp_path / "elsewhere.yaml").read_text())
    assert [c["name"] for c in elsewhere["contexts"]] == [f"rackspace_{prefix}"]
    assert stat.S_IMODE((tmp_path / "elsewhere.yaml").stat().st_mode) == 0o600

    # `inv kubeconfig` puts the context back where it was removed.
    kube_config.unlink()
    written = run_inv(["kubeconfig"], env)
    assert f"merged context rackspace_{prefix} into {kube_config}" in written.stdout
    assert yaml.safe_load(kube_config.read_text())["current-context"] in (f"rackspace_{prefix}", None)
    assert f"rackspace_{prefix}" in {c["name"] for c in yaml.safe_load(kube_config.read_text())["contexts"]}
    other = tmp_path / "other" / "config"
    run_inv(["kubeconfig", "--path", str(other)], env)
    assert yaml.safe_load(other.read_text())["contexts"][0]["name"] == f"rackspace_{prefix}"
    secret_files_are_private(state)

    status = run_inv(["status"], env)
    for name in cluster(test_cloud, prefix):
        assert name in status.stdout
    assert "temp URL expires" in status.stdout and "(in 23h)" in status.stdout

    ssh = run_inv(["ssh", "--node", "2", "--command", "hostname"], env)
    assert ssh.stdout.strip().splitlines()[-1] == f"{prefix}-node-2"
    failing = run_inv(["ssh", "--command", "exit 7"], env, check=False)
    assert failing.returncode == 7
    missing = run_inv(["ssh", "--node", "9", "--command", "hostname"], env, check=False)
    assert missing.returncode == 1
    assert missing.stdout.strip() == f"error: no node 9 in cluster {prefix}: nodes are 1-2"
    # The interactive shell (root's prompt): the system ssh takes over the terminal.
    # (A login shell: /etc/profile resets PATH, so the test cloud's server name.)
    code, shown = run_in_pty(["ssh", "--node", "1"], env, ("# ", b"echo at-$TESTCLOUD_SERVER_NAME-now; exit 3\n"))
    assert code == 3, shown
    assert f"at-{prefix}-node-1-now" in shown

    down = run_inv(["down"], env)     # no terminal: no question
    assert f"server {prefix}-master" in down.stdout
    assert resources(test_cloud) == before
    second = run_inv(["down"], env)
    assert "nothing to remove" in second.stdout
    config = yaml.safe_load(open(f"{env['HOME']}/.kube/config"))
    assert f"rackspace_{prefix}" not in {c["name"] for c in config["contexts"]}


def test_the_seed_stages_one_at_a_time_build_what_up_builds(test_cloud, built):
    """The seed's order, each stage alone: `inv upload`, `inv network`,
    `inv keypair`, `inv master`, `inv nodes` build the cluster `inv up`
    builds (the Cloud Network with its subnet, the keypair, the servers on
    it); a following `inv up` creates nothing and its checks pass, and
    `inv down` leaves the account as it was."""
    env = built
    prefix = env["INSTANCE_PREFIX"]
    before = resources(test_cloud)

    run_inv(["upload"], env)
    network = run_inv(["network"], env)
    made = resources(test_cloud)
    assert (len(made["networks"] - before["networks"]), len(made["subnets"] - before["subnets"])) == (1, 1)
    assert made["networks"] - before["networks"] == {network.stdout.strip().splitlines()[-1]}
    assert "created" not in run_inv(["network"], env).stdout          # a re-run reuses it
    keypair = run_inv(["keypair"], env)
    assert keypair.stdout.strip().splitlines()[-1] == f"{prefix}-id_kubernetes"
    master = run_inv(["master"], env)
    assert master.stdout.strip().splitlines()[-1].startswith(f"{prefix}-master\t")
    run_inv(["nodes"], env)
    assert cluster(test_cloud, prefix) == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]
    built_cluster = resources(test_cloud)
    assert built_cluster["networks"] == made["networks"]

    up = run_inv(["up"], env)
    assert "created" not in up.stdout.replace("already created", "") and f"cluster {prefix} is up" in up.stdout
    assert resources(test_cloud) == built_cluster

    down = run_inv(["down", "--yes"], env)
    assert f"Cloud Network {prefix}-pool-net (" in down.stdout
    assert resources(test_cloud) == before


def test_status_says_when_the_temp_url_expires(test_cloud, built):
    env = built
    run_inv(["upload"], env)
    record_path = Path(env["HOME"]) / ".kube" / "rackspace" / env["INSTANCE_PREFIX"] / "release.json"
    record = json.loads(record_path.read_text())
    # Each edge against a set clock is in test_status.py; here the record
    # and the status task agree, one side of expiry each.
    for offset, said in ((-60, "(expired: re-run `inv upload`"), (90 * 60, "(in 1h)")):
        record["expires_at"] = int(time.time()) + offset
        record_path.write_text(json.dumps(record))
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record["expires_at"]))
        line = next(line for line in run_inv(["status"], env).stdout.splitlines() if "temp URL expires" in line)
        assert line.startswith(f"temp URL expires: {when} {said}"), line


def proxyjump_config(cloud, env, path):
    """An SSH_CONFIG that reaches every server through a bastion (ProxyJump):
    the test cloud's sshd at 127.0.0.1 as the bastion, which forwards to the
    server's own loopback address (public a.b.c.d -> 127.b.c.d)."""
    key = f"{env['HOME']}/.ssh/id_kubernetes"
    lines = ["Host testcloud-bastion", "    HostName 127.0.0.1", f"    Port {cloud.sshd_port}", "    User root",
             f"    IdentityFile {key}", "    IdentitiesOnly yes", "    StrictHostKeyChecking no",
             "    UserKnownHostsFile /dev/null"]
    for srv in cloud.servers():
        if srv["name"].startswith(env["INSTANCE_PREFIX"] + "-"):
            address = srv["public_ipv4"]
            lines += [f"Host {address}", f"    HostName 127.{address.split('.', 1)[1]}", f"    Port {cloud.sshd_port}",
                      "    ProxyJump testcloud-bastion"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def logins(cloud):
    with open(f"{cloud.workdir}/ssh/sshd.log", errors="replace") as f:
        return sum("Accepted publickey for root" in line for line in f)


def test_an_interrupted_up_resumes_with_one_master(test_cloud, built, tmp_path):
    env = built
    prefix = env["INSTANCE_PREFIX"]
    run_inv(["master"], env)          # what an `up` stopped after the master leaves
    assert cluster(test_cloud, prefix) == [f"{prefix}-master"]
    run_inv(["up", "--no-checks"], env)
    run_inv(["up"], env)
    names = cluster(test_cloud, prefix)
    assert names == [f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"]

    # SSH_CONFIG with ProxyJump: the checks (Fabric) and `inv ssh --command`
    # log in to the bastion, then to the server through it.
    jump = dict(env, SSH_CONFIG=proxyjump_config(test_cloud, env, tmp_path / "ssh_config"))
    before = logins(test_cloud)
    ssh = run_inv(["ssh", "--node", "2", "--command", "hostname"], jump)
    assert ssh.stdout.strip().splitlines()[-1] == f"{prefix}-node-2"
    assert logins(test_cloud) - before == 2
    code, shown = run_in_pty(["ssh"], jump, ("# ", b"echo at-$TESTCLOUD_SERVER_NAME-now; exit\n"))
    assert code == 0 and f"at-{prefix}-master-now" in shown, shown
    assert logins(test_cloud) - before == 4
    run_inv(["up"], jump)
    assert logins(test_cloud) - before >= 4 + 2 * 3

    # Neutron still holds a port for a moment after the servers are gone
    # (409 NetworkInUse): down waits and tries again.
    test_cloud.inject_fault(r"^DELETE /cloudNetworks/ORD/v2.0/networks/", 409, body={"NeutronError": {
        "type": "NetworkInUse", "message": "Unable to complete operation on network. "
        "There are one or more ports still in use on the network."}})
    mark = test_cloud.request_log_mark()
    try:
        down = run_inv(["down", "--yes"], env)
    finally:
        test_cloud.clear_faults()
    assert f"Cloud Network {prefix}-pool-net (" in down.stdout
    deletes = [r for r in test_cloud.request_log(mark)
               if r["method"] == "DELETE" and "/networks/" in r["path"]]
    assert [r["status"] for r in deletes] == [409, 204] and deletes[1]["t"] - deletes[0]["t"] >= 2.5
    assert cluster(test_cloud, prefix) == []


def test_password_authentication(test_cloud, env):
    with_password = dict(env, OS_API_KEY="", OS_PASSWORD=test_cloud.password)
    result = run_inv(["status"], with_password)
    assert result.stdout.startswith(f"no cluster named {env['INSTANCE_PREFIX']}")
    wrong = run_inv(["status"], dict(with_password, OS_PASSWORD="not-" + test_cloud.password), check=False)
    assert wrong.returncode == 1
    assert wrong.stdout == (f"error: Rackspace Identity at {test_cloud.auth_url} refused the credentials of "
                            f"OS_USERNAME={test_cloud.username}; check OS_API_KEY / OS_PASSWORD\n")


def test_two_clusters_x_and_x_b_and_a_look_alike_are_left_alone(test_cloud, built):
    """Clusters X and X-b in one account, and a server named like one of X's
    without its metadata: Nova's name filter for X lists all of them, and
    only the metadata tells them apart. status, ssh, up and down of X touch
    X's own servers only; down asks at a terminal and a "no" keeps it all."""
    x = built
    xb = dict(x, INSTANCE_PREFIX=x["INSTANCE_PREFIX"] + "-b", NUM_NODES="1")
    px, pb = x["INSTANCE_PREFIX"], xb["INSTANCE_PREFIX"]
    run_inv(["up", "--no-checks"], x)
    run_inv(["up", "--no-checks"], xb)
    fake = impostor(test_cloud, f"{px}-node-3")
    try:
        x_ids, b_ids = ids_of(test_cloud, px), ids_of(test_cloud, pb)
        assert sorted(x_ids) == [f"{px}-master", f"{px}-node-1", f"{px}-node-2"]
        assert sorted(b_ids) == [f"{pb}-master", f"{pb}-node-1"]

        status = run_inv(["status"], x).stdout
        assert f"{px}-node-2" in status
        assert pb not in status and f"{px}-node-3" not in status and "release: none" not in status
        ssh = run_inv(["ssh", "--node", "1", "--command", "hostname"], x)
        assert ssh.stdout.strip().splitlines()[-1] == f"{px}-node-1"
        ssh = run_inv(["ssh", "--node", "3", "--command", "hostname"], x, check=False)
        assert ssh.stdout.strip() == f"error: no node 3 in cluster {px}: nodes are 1-2"
        # A re-run of X's up with the look-alike around creates nothing, deletes nothing.
        run_inv(["up", "--no-checks"], x)
        assert ids_of(test_cloud, px) == x_ids and ids_of(test_cloud, pb) == b_ids

        # At a terminal, down asks first; "n" keeps everything.
        code, shown = run_in_pty(["down"], x, ("[y/N]", b"n\n"))
        assert code == 1 and "nothing deleted" in shown, shown
        assert f"delete cluster {px}: 3 server(s)" in shown and pb not in shown.split("[y/N]")[0]
        assert ids_of(test_cloud, px) == x_ids
        code, shown = run_in_pty(["down"], x, ("[y/N]", b"y\n"))
        assert code == 0, shown
        assert ids_of(test_cloud, px) == {}
        assert ids_of(test_cloud, pb) == b_ids
        assert fake in {srv["id"] for srv in test_cloud.servers()}
        assert f"{pb}-id_kubernetes" in {kp["name"] for kp in test_cloud.keypairs()}
        status = run_inv(["status"], xb)
        assert f"{pb}-pool-net" in status.stdout and f"{pb}-node-1" in status.stdout
        assert "release: none" not in status.stdout
    finally:
        compute(test_cloud, "DELETE", f"/servers/{fake}")
    run_inv(["down", "--yes"], xb)
    assert ids_of(test_cloud, pb) == {}


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


def checks_table(stdout):
    """The post-boot checks table of `inv up`'s plain output, as one
    {column: cell} per server; columns start where their header does."""
    lines = stdout[stdout.index("post-boot checks\n"):].splitlines()[1:]
    header = lines[0]
    names = [h for h in header.split("  ") if h.strip()]
    starts = [header.index(h.strip()) for h in names]
    rows = []
    for line in lines[1:]:
        if not re.match(r"\S+ +(master|node) ", line):
            break
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line)])]
        rows.append(dict(zip((h.strip() for h in names), cells)))
    return rows


POD_CHECKS = ("flannel runs on every node", "CoreDNS is ready", "cluster DNS answers")


def test_checks_prove_pods_run_and_pod_traffic_crosses_nodes(test_cloud, built):
    """Past "nodes are Ready": flannel runs on every node and CoreDNS is
    ready (asked on the master), and every server's query to the cluster
    DNS Service IP is answered. A node whose query is not answered is named
    with the pod network line; flannel crashing on a node fails the
    master's check naming that node; both are reported in one run."""
    env = built
    prefix = env["INSTANCE_PREFIX"]
    master, node1, node2 = f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"
    run_inv(["up", "--no-checks"], env)
    healthy = run_inv(["up"], env)
    rows = {r["server"]: r for r in checks_table(healthy.stdout)}
    assert set(rows) == {master, node1, node2}
    assert [rows[master][c] for c in POD_CHECKS] == ["ok", "ok", "ok"]
    for node in (node1, node2):
        # The pods are asked about on the master; the DNS query runs everywhere.
        assert [rows[node][c] for c in POD_CHECKS] == ["-", "-", "ok"]

    test_cloud.set_server_health(node2, pod_network=False)
    test_cloud.set_server_health(node1, flannel="CrashLoopBackOff")
    try:
        result = run_inv(["up"], dict(env, BOOT_TIMEOUT="30"), check=False)
    finally:
        test_cloud.reset_server_health()
    assert result.returncode == 1, result.stdout
    out = result.stdout.splitlines()
    rows = {r["server"]: r for r in checks_table(result.stdout)}
    assert rows[master]["flannel runs on every node"] == "FAIL"
    assert rows[master]["CoreDNS is ready"] == "-"
    assert rows[node1]["cluster DNS answers"] == "ok"
    assert rows[node2]["cluster DNS answers"] == "FAIL"
    # The failing node named, with what to read; no other node's line.
    assert f"pods on {node2} cannot reach pods on other nodes: POD_NETWORK_BACKEND=host-gw; see README" in out
    assert sum("cannot reach pods on other nodes" in line for line in out) == 1
    assert f"{node2}: cluster DNS answers: communications error to 10.0.0.10#53: timed out" in out
    # Diagnostics under each failure: the node's routes, the flannel pods.
    routes = out.index(f"--- {node2}: ip route show ---")
    assert out[routes + 1].startswith("default via ")
    pods = out.index(f"--- {master}: /opt/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf get pods --namespace "
                     "kube-flannel --selector app=flannel -o wide ---")
    assert any(node1 in line and "CrashLoopBackOff" in line for line in out[pods:pods + 5])
    last = out[-1]
    assert last.startswith("error: post-boot checks failed on 2 of 3 servers")
    assert f"{master} (flannel runs on every node: flannel is not running on {node1} (CrashLoopBackOff))" in last
    assert f"{node2} (cluster DNS answers: communications error to 10.0.0.10#53: timed out)" in last
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
    assert "pod network: flannel host-gw (the legacy default" in out
    plan_dir = f"{env['HOME']}/.kube/rackspace/{prefix}/plan"
    node = yaml.safe_load(open(f"{plan_dir}/{prefix}-node-1.yaml"))
    assert node["hostname"] == f"{prefix}-node-1"
    # The user data holds the bootstrap token, and the master's the CA key.
    assert sorted(os.listdir(plan_dir)) == sorted(f"{n}.yaml" for n in (
        f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"))
    secret_files_are_private(Path(plan_dir).parent)
    assert "192.0.2.1" in out
    assert (f"  kubeadm configs of {prefix}-master, {prefix}-node-1 checked with the release's kubeadm "
            "(kubeadm config validate): ok") in out.splitlines()

    up = run_inv(["up", "--no-checks"], env)
    # up's preflight ran the release's kubeadm on what it created.
    assert (f"kubeadm configs of {prefix}-master, {prefix}-node-1 checked with the release's kubeadm "
            "(kubeadm config validate): ok") in up.stdout.splitlines()
    result = run_inv(["plan"], env)
    for name in (f"{prefix}-master", f"{prefix}-node-1", f"{prefix}-node-2"):
        assert f"{name:<32} reuse (ACTIVE" in result.stdout
    assert "bootstrap token valid until" in result.stdout
    assert "checked with the release's kubeadm (kubeadm config validate): ok" in result.stdout
    addresses = next(s for s in test_cloud.servers() if s["name"] == f"{prefix}-master")["addresses"]
    master_ip = next(a["addr"] for a in addresses[f"{prefix}-pool-net"] if a["version"] == 4)
    assert f'"{master_ip}:6443"' in open(f"{plan_dir}/{prefix}-node-2.yaml").read()
    run_inv(["down", "--yes"], env)


@pytest.mark.parametrize("setting,value,message", [
    ("NUM_NODES", "0", "error: NUM_NODES (from environment) must be at least 1, got 0"),
    ("KUBE_NETWORK", "192.168.0.0/16", "error: NOVA_NETWORK (192.168.0.0/24) overlaps KUBE_NETWORK"),
    ("INSTANCE_PREFIX", "Bad_Prefix", "error: INSTANCE_PREFIX (from environment) 'Bad_Prefix' cannot be part"),
    ("OS_API_KEY", "", "error: missing credentials: OS_API_KEY (or OS_PASSWORD)"),
    ("KUBE_MASTER_FLAVOR", "general1-1",
     "error: KUBE_MASTER_FLAVOR=general1-1 (1 GB General Purpose v1) has 1 vCPU, 1024 MiB, 20 GB disk; kubeadm "
     "init's preflight needs at least 2 vCPU, 1700 MiB and 20 GB of disk: the smallest that fits is general1-2 "
     "(2 GB General Purpose v1"),
    # Rackspace's memory flavors boot only from a volume (disk 0).
    ("KUBE_NODE_FLAVOR", "memory1-15",
     "error: KUBE_NODE_FLAVOR=memory1-15 (15 GB Memory v1) has no root disk (disk 0: it boots only from a volume, "
     "which this tool does not create); a server needs a flavor with at least 20 GB of disk: the smallest that "
     "fits is "),
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
