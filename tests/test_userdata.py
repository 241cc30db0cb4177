"""tasks/model/userdata.py and cloud-config/: what the servers run.

Every rendered config must parse as YAML and pass the schema of the
coreos-cloudinit keys (tests/cloudinit_schema.yaml); every embedded shell
script must pass shellcheck; every unit must pass `systemd-analyze verify`
with the binaries it starts stubbed in a temporary root; the encoded user
data must fit Nova's limit; nodes must not receive secrets they do not need.

Golden files (tests/golden/) pin what one fixed configuration renders to:
regenerate them with `UPDATE_GOLDEN=1 pytest tests/test_userdata.py`.
"""

import base64
import dataclasses
import ipaddress
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml

from tasks.model import layout, names, userdata
from tasks.support.errors import UserError
from tests.harness.rendering import (BACKENDS, MASTER_FLOATING_IP, OPENSTACK_VARIANTS,
                                     SENTINEL_API_KEY, SENTINEL_PASSWORD, VARIANTS, golden_renders,
                                     load_settings, make_facts, node_facts, render_both, render_openstack)

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
SCHEMA = yaml.safe_load((HERE / "cloudinit_schema.yaml").read_text())


def files_of(config):
    return {f["path"]: f for f in config.get("write_files", [])}


def units_of(config):
    return {u["name"]: u for u in config["coreos"]["units"]}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request, material):
    s = load_settings(**VARIANTS[request.param])
    facts = make_facts(material)
    if request.param in OPENSTACK_VARIANTS:
        return s, facts, render_openstack(s, facts)
    return s, facts, render_both(s, facts)


@pytest.fixture
def variant_backend(rendered, request):
    return BACKENDS.get(request.node.callspec.params["rendered"], "host-gw")


def test_openstack_servers_use_the_floating_ip_and_the_cluster_network(material):
    s = load_settings(CLOUD_KIND="openstack", POD_NETWORK_BACKEND="vxlan")
    texts = render_openstack(s, make_facts(material))
    master = texts["master"]
    assert f"public={MASTER_FLOATING_IP}" in master
    assert "kr_wait_for kr_cloud_network_address 300" in master
    assert "kr_servicenet_address 300" not in master + texts["node"]
    assert '"Type": "vxlan"' in master
    # A node without a floating IP has no public address: no waiting for
    # PublicNet, which OpenStack servers are not on.
    assert "public=$(kr_wait_for kr_cloud_network_address 300)" in texts["node"]
    assert "kr_public_address 300" not in master + texts["node"]
    # Security groups close the servers; the host firewall is legacy's (PublicNet).
    assert layout.UNIT_FIREWALL not in master + texts["node"]
    legacy = render_both(load_settings(), make_facts(material))["master"]
    assert "kr_wait_for kr_servicenet_address 300" in legacy and '"Type": "host-gw"' in legacy


# --- structure ----------------------------------------------------------------

def test_every_config_is_cloud_config_that_passes_the_schema(rendered):
    _, _, texts = rendered
    for role, text in texts.items():
        assert text.startswith("#cloud-config\n"), role
        # As written: coreos-cloudinit maps no '-' to '_' (schema's header).
        jsonschema.validate(yaml.safe_load(text), SCHEMA)


def test_schema_rejects_what_coreos_cloudinit_does_not_document(rendered):
    _, _, texts = rendered
    config = yaml.safe_load(texts["node"])
    for bad in (
        {**config, "runcmd": ["echo hi"]},
        {**config, "write_files": [{**config["write_files"][0], "permissions": 384}]},
        {**config, "write_files": [{"path": "/usr/bin/x", "content": ""}]},
        {**config, "coreos": {**config["coreos"], "update": {"reboot_strategy": False}}},
        {**config, "coreos": {**config["coreos"], "update": {"reboot_strategy": "best-effort"}}},
        {**config, "coreos": {**config["coreos"], "units": [{"name": "x.service", "command": "enable"}]}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_schema_refuses_hyphenated_keys_that_coreos_cloudinit_ignores(rendered):
    """yaml.v3 reads only the struct tags: `drop-ins` and friends are dropped
    without a word on the server, so the schema refuses them."""
    _, _, texts = rendered
    config = yaml.safe_load(texts["master"])
    jsonschema.validate(config, SCHEMA)
    units = config["coreos"]["units"]
    with_dropins = next(i for i, u in enumerate(units) if "drop_ins" in u)
    hyphenated = [
        {**config, "coreos": {**config["coreos"], "update": {"reboot-strategy": "off"}}},
        {**config, "users": [{"name": "core", "ssh-authorized-keys": ["ssh-ed25519 AAAA"]}]},
        {**config, "ssh-authorized-keys": ["ssh-ed25519 AAAA"]},
        {**config, "write-files": config["write_files"]},
        {**config, "coreos": {**config["coreos"], "units": [
            *units[:with_dropins],
            {("drop-ins" if k == "drop_ins" else k): v for k, v in units[with_dropins].items()},
            *units[with_dropins + 1:]]}},
    ]
    for bad in hyphenated:
        with pytest.raises(jsonschema.ValidationError, match="-"):
            jsonschema.validate(bad, SCHEMA)


def test_hostnames_are_the_server_names(rendered):
    s, facts, texts = rendered
    assert yaml.safe_load(texts["master"])["hostname"] == f"{s.INSTANCE_PREFIX}-master"
    node3 = userdata.render("node", s, node_facts(facts, 3))
    assert yaml.safe_load(node3)["hostname"] == f"{s.INSTANCE_PREFIX}-node-3"


def test_updates_never_reboot_the_servers(rendered):
    _, _, texts = rendered
    for text in texts.values():
        update = yaml.safe_load(text)["coreos"]["update"]
        assert update["reboot_strategy"] == "off"


def test_the_cluster_key_is_authorized_for_core(rendered):
    _, facts, texts = rendered
    for text in texts.values():
        users = yaml.safe_load(text)["users"]
        assert users == [{"name": "core", "ssh_authorized_keys": [facts.ssh_public_key]}]


# --- shellcheck -----------------------------------------------------------------

def _tool(name, package):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is needed for this test: apt-get install -y {package}")
    return path


def embedded_scripts(text):
    for f in yaml.safe_load(text)["write_files"]:
        content = f["content"]
        if content.startswith("#!/bin/bash") or content.startswith("# shellcheck shell="):
            yield f["path"], content


def test_embedded_scripts_pass_shellcheck(rendered, tmp_path):
    shellcheck = _tool("shellcheck", "shellcheck")
    s, _, texts = rendered
    checked = 0
    for role, text in texts.items():
        for path, content in embedded_scripts(text):
            script = tmp_path / f"{role}-{Path(path).name}"
            script.write_text(content)
            result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(script)],
                                    capture_output=True, text=True)
            assert result.returncode == 0, f"{role} {path}:\n{result.stdout}{result.stderr}"
            checked += 1
    # addresses.sh, fetch-release.sh, firewall.sh, containerd-sandbox.sh and bootstrap.sh on each role
    # (no firewall.sh on OpenStack: security groups close the servers there).
    assert checked == (8 if s.CLOUD_KIND == "openstack" else 10)


def test_shellcheck_catches_a_broken_script(tmp_path):
    """The shellcheck test above can fail: a classic mistake is reported."""
    shellcheck = _tool("shellcheck", "shellcheck")
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/bash\nrm -rf $dir/*\n")
    assert subprocess.run([shellcheck, str(script)], capture_output=True).returncode != 0


# --- systemd units ---------------------------------------------------------------

HOST_UNITS = Path("/usr/lib/systemd/system") if Path("/usr/lib/systemd/system").is_dir() else Path("/lib/systemd/system")


def _exec_binaries(unit_text):
    for line in unit_text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().startswith("Exec") and value.strip():
            binary = value.strip().split()[0].lstrip("-@:+!")
            if binary.startswith("/"):
                yield binary


def verify_units(tmp_path, config):
    """systemd-analyze verify the config's units in a temporary root where
    every binary they start is a stub, as are the units Flatcar provides."""
    analyze = _tool("systemd-analyze", "systemd")
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    stub_unit = "[Unit]\nDescription=stub of Flatcar's {0}\n[Service]\nExecStart=/usr/bin/{0}\n"
    (etc / layout.UNIT_CONTAINERD).write_text(stub_unit.format("containerd"))
    binaries = {"/usr/bin/containerd"}
    names = []
    for unit in config["coreos"]["units"]:
        if "content" not in unit:
            continue   # a command (or mask) on one of Flatcar's units
        (etc / unit["name"]).write_text(unit["content"])
        binaries.update(_exec_binaries(unit["content"]))
        for dropin in unit.get("drop_ins", []):
            (etc / f"{unit['name']}.d").mkdir(exist_ok=True)
            (etc / f"{unit['name']}.d" / dropin["name"]).write_text(dropin["content"])
            binaries.update(_exec_binaries(dropin["content"]))
        names.append(unit["name"])
    for binary in binaries:
        stub = root / binary.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return subprocess.run([analyze, "verify", "--man=no", f"--root={root}", *names],
                          capture_output=True, text=True)


def test_units_pass_systemd_analyze_verify(rendered, tmp_path):
    _, _, texts = rendered
    for role, text in texts.items():
        result = verify_units(tmp_path / role, yaml.safe_load(text))
        assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), \
            f"{role}:\n{result.stdout}{result.stderr}"


def test_systemd_analyze_verify_catches_a_bad_unit(rendered, tmp_path):
    _, _, texts = rendered
    config = yaml.safe_load(texts["node"])
    unit = units_of(config)[layout.UNIT_RELEASE]
    unit["content"] = unit["content"].replace("Type=oneshot", "Type=oneshoot")
    result = verify_units(tmp_path, config)
    assert "oneshoot" in result.stderr


# --- what runs where --------------------------------------------------------------

def test_the_units_and_files_the_checks_rely_on_are_defined(rendered):
    _, _, texts = rendered
    for role, text in texts.items():
        config = yaml.safe_load(text)
        units = units_of(config)
        for check in layout.checks(role, cluster_ip="192.0.2.10"):
            assert check.unit in units, (role, check.name)
            assert units[check.unit].get("content"), check.unit
        files = files_of(config)
        for path in (layout.FETCH_SCRIPT, layout.BOOTSTRAP_SCRIPT, layout.ADDRESSES_SCRIPT,
                     layout.RELEASE_CURLRC, layout.RELEASE_ENV, layout.KUBEADM_CONFIG):
            assert path in files, (role, path)
        for name in layout.LONG_UNITS:
            assert units[name]["enable"] is True, (role, name)
        # A failed kubeadm init is retried on this boot, not only the next.
        assert re.search(r"^Restart=on-failure$", units[layout.UNIT_BOOTSTRAP]["content"], re.M)
        assert f"ExecStart={layout.FETCH_SCRIPT}" in units[layout.UNIT_RELEASE]["content"]
        assert f"ExecStart={layout.BOOTSTRAP_SCRIPT}" in units[layout.UNIT_BOOTSTRAP]["content"]
        for later in (layout.UNIT_BOOTSTRAP, layout.UNIT_KUBELET):
            assert re.search(rf"^Requires=.*\b{re.escape(layout.UNIT_RELEASE)}", units[later]["content"], re.M)
            assert re.search(rf"^After=.*\b{re.escape(layout.UNIT_RELEASE)}", units[later]["content"], re.M)


def test_the_pod_checks_select_what_the_master_runs(rendered):
    """The post-boot checks find flannel's and CoreDNS's pods by namespace
    and label: the rendered manifests must put them there."""
    s, _, texts = rendered
    files = files_of(yaml.safe_load(texts["master"]))
    flannel = {d["kind"]: d for d in yaml.safe_load_all(files[layout.FLANNEL_MANIFEST]["content"]) if d}
    daemonset = flannel["DaemonSet"]
    key, value = layout.FLANNEL_SELECTOR.split("=")
    assert daemonset["metadata"]["namespace"] == layout.FLANNEL_NAMESPACE
    assert daemonset["spec"]["template"]["metadata"]["labels"][key] == value
    if layout.KUBE_DNS_SERVICE in files:
        # Written when kube-dns must move to DNS_SERVER_IP; it selects
        # kubeadm's CoreDNS pods by kubeadm's label, as the checks do.
        service = yaml.safe_load(files[layout.KUBE_DNS_SERVICE]["content"])
        key, value = layout.COREDNS_SELECTOR.split("=")
        assert service["metadata"]["namespace"] == layout.COREDNS_NAMESPACE
        assert service["spec"]["selector"] == {key: value}
        assert service["spec"]["clusterIP"] == str(s.DNS_SERVER_IP)


_DEPENDENCY = re.compile(r"^(Requires|Wants|BindsTo|Requisite|After)=(.*)$", re.M)


def test_no_unit_start_waits_for_a_long_unit(rendered):
    """coreos-cloudinit waits for each `command: start`: killed after 10
    minutes as user-configdrive.service (legacy images), holding up
    multi-user.target as oem-cloudinit.service (OpenStack image). Nothing it
    starts may wait for the download or kubeadm; the long units start from
    one --no-block call."""
    _, _, texts = rendered
    long_units = set(layout.LONG_UNITS)
    for role, text in texts.items():
        config = yaml.safe_load(text)
        units = units_of(config)
        started = [u for u in config["coreos"]["units"] if u.get("command") in ("start", "restart")]
        assert [u["name"] for u in started] == [layout.UNIT_START], role
        for unit in started:
            waits_for = {name for _, value in _DEPENDENCY.findall(unit.get("content", "")) for name in value.split()}
            assert not waits_for & long_units, (role, unit["name"], waits_for)
        exec_start = re.findall(r"^ExecStart=(.*)$", units[layout.UNIT_START]["content"], re.M)
        assert exec_start == [f"/usr/bin/systemctl start --no-block {layout.UNIT_BOOTSTRAP}"], role
        assert "Type=oneshot" in units[layout.UNIT_START]["content"]
        # What the --no-block start pulls in covers the release download.
        bootstrap = units[layout.UNIT_BOOTSTRAP]["content"]
        assert re.search(rf"^Requires=.*\b{re.escape(layout.UNIT_RELEASE)}", bootstrap, re.M)


def test_locksmithd_is_stopped_and_masked_before_anything_else(rendered):
    """locksmithd read its strategy (default: reboot) before cloud-config ran,
    and coreos-cloudinit stops it for reboot_strategy "off" only after our
    own unit commands, with a mask in /run: our first unit entry must stop
    it and mask it in /etc (system/update.go, initialize/config.go)."""
    _, _, texts = rendered
    for role, text in texts.items():
        first = yaml.safe_load(text)["coreos"]["units"][0]
        assert first == {"name": layout.UNIT_LOCKSMITHD, "command": "stop", "mask": True}, role


def test_checks_per_role():
    node = layout.checks("node")
    assert [c.unit for c in node] == [layout.UNIT_RELEASE, layout.UNIT_BOOTSTRAP, layout.UNIT_KUBELET]
    master = layout.checks("master", cluster_ip="192.0.2.10")
    commands = [c.command() for c in master]
    assert f"curl --silent --show-error --fail --max-time 10 --cacert {layout.CA_CERT} " \
           f"https://192.0.2.10:{layout.API_PORT}/readyz" in commands
    nodes_check = next(c for c in master if c.expect == "nodes")
    assert nodes_check.command(sudo=True) == \
        f"sudo -n {layout.BIN_DIR}/kubectl --kubeconfig {layout.ADMIN_CONF} get nodes -o json"
    # Past Ready: flannel on every node (checked from the master with the
    # admin kubeconfig), and with cluster DNS, CoreDNS and a query from
    # every server to the DNS Service IP, through kube-proxy and flannel.
    assert [c.expect for c in master[-2:]] == ["nodes", "flannel"]
    kubectl = f"{layout.BIN_DIR}/kubectl --kubeconfig {layout.ADMIN_CONF} get pods"
    assert master[-1].command() == f"{kubectl} --namespace kube-flannel --selector app=flannel -o json"
    dns = layout.ClusterDNS("10.0.0.10", "cluster.example", "vxlan")
    with_dns = layout.checks("master", cluster_ip="192.0.2.10", dns=dns)
    assert [c.expect for c in with_dns[len(master):]] == ["coredns", "dns"]
    assert with_dns[-2].command() == f"{kubectl} --namespace kube-system --selector k8s-app=kube-dns -o json"
    node_dns = layout.checks("node", dns=dns)[-1]
    assert layout.checks("node", dns=dns)[:-1] == node
    assert node_dns.command() == "dig +short +time=2 +tries=2 @10.0.0.10 kubernetes.default.svc.cluster.example. A"
    assert node_dns.hint.replace("{server}", "demo-node-1") == \
        "pods on demo-node-1 cannot reach pods on other nodes: POD_NETWORK_BACKEND=vxlan; see README"
    assert node_dns.diagnose_command(sudo=True) == "sudo -n ip route show"
    with pytest.raises(ValueError):
        layout.checks("master")
    with pytest.raises(ValueError):
        layout.checks("minion")


def kubeadm_docs(text):
    content = files_of(yaml.safe_load(text))[layout.KUBEADM_CONFIG]["content"]
    return {doc["kind"]: doc for doc in yaml.safe_load_all(content)}


def test_master_kubeadm_config_follows_the_settings(rendered):
    s, facts, texts = rendered
    docs = kubeadm_docs(texts["master"])
    init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
    assert init["apiVersion"] == cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    token = init["bootstrapTokens"][0]
    assert token["token"] == facts.bootstrap_token
    # A ttl filled in at boot from the laptop's record (bootstrap-master.sh),
    # never `expires`: kubeadm defaults ttl to 24h and refuses the pair.
    assert token["ttl"] == "@TOKEN_TTL@"
    assert "expires" not in token
    # Cluster traffic on the Cloud Network, never ServiceNet.
    assert init["localAPIEndpoint"] == {"advertiseAddress": "@CLOUD_NETWORK_IP@", "bindPort": layout.API_PORT}
    assert {"name": "node-ip", "value": "@CLOUD_NETWORK_IP@"} in init["nodeRegistration"]["kubeletExtraArgs"]
    assert init["nodeRegistration"]["name"] == f"{s.INSTANCE_PREFIX}-master"
    assert cluster["kubernetesVersion"] == facts.kube_version
    assert cluster["networking"] == {"podSubnet": str(s.KUBE_NETWORK),
                                     "serviceSubnet": str(s.SERVICE_CLUSTER_IP_RANGE),
                                     "dnsDomain": s.DNS_DOMAIN}
    sans = cluster["apiServer"]["certSANs"]
    # kubectl from the laptop uses the public address, the nodes the Cloud Network's.
    assert {"@CLOUD_NETWORK_IP@", "@PUBLIC_IP@", str(s.SERVICE_CLUSTER_IP_RANGE.network_address + 1)} <= set(sans)
    assert "@SERVICENET_IP@" not in texts["master"]
    assert kubelet["clusterDNS"] == [str(s.DNS_SERVER_IP)]
    assert kubelet["clusterDomain"] == s.DNS_DOMAIN
    assert kubelet["cgroupDriver"] == "systemd"
    if s.ENABLE_CLUSTER_DNS:
        assert "skipPhases" not in init
    else:
        assert init["skipPhases"] == ["addon/coredns"]


def test_node_joins_by_token_and_ca_hash_only(rendered):
    s, facts, texts = rendered
    join = kubeadm_docs(texts["node"])["JoinConfiguration"]
    assert join["discovery"] == {"bootstrapToken": {
        "apiServerEndpoint": f"192.0.2.10:{layout.API_PORT}",
        "token": facts.bootstrap_token,
        "caCertHashes": [facts.discovery_hash]}}
    assert {"name": "node-ip", "value": "@CLOUD_NETWORK_IP@"} in join["nodeRegistration"]["kubeletExtraArgs"]
    assert "@SERVICENET_IP@" not in texts["node"]
    assert join["nodeRegistration"]["name"] == f"{s.INSTANCE_PREFIX}-node-1"


def test_kube_dns_is_moved_only_when_dns_server_ip_is_not_kubeadms(rendered):
    s, _, texts = rendered
    files = files_of(yaml.safe_load(texts["master"]))
    script = files[layout.BOOTSTRAP_SCRIPT]["content"]
    moves = s.ENABLE_CLUSTER_DNS and s.DNS_SERVER_IP != s.SERVICE_CLUSTER_IP_RANGE.network_address + 10
    assert (layout.KUBE_DNS_SERVICE in files) == moves
    assert (layout.KUBE_DNS_SERVICE in script) == moves
    if moves:
        service = yaml.safe_load(files[layout.KUBE_DNS_SERVICE]["content"])
        assert service["spec"]["clusterIP"] == str(s.DNS_SERVER_IP)
        assert service["metadata"]["name"] == "kube-dns"


def test_flannel_uses_its_backend_on_kube_network_over_the_cloud_network(rendered, variant_backend):
    s, _, texts = rendered
    docs = list(yaml.safe_load_all(files_of(yaml.safe_load(texts["master"]))[layout.FLANNEL_MANIFEST]["content"]))
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    net_conf = json.loads(config["data"]["net-conf.json"])
    assert net_conf["Network"] == str(s.KUBE_NETWORK)
    # Only the type: no VNI, Port or MTU of ours. flannel's vxlan device
    # takes the interface's MTU less 50 (flannel-io/flannel v0.26.7
    # pkg/backend/vxlan/vxlan.go, device.go).
    assert net_conf["Backend"] == {"Type": variant_backend}
    assert set(net_conf) == {"Network", "EnableNFTables", "Backend"}
    json.loads(config["data"]["cni-conf.json"])
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
    args = daemonset["spec"]["template"]["spec"]["containers"][0]["args"]
    regex = next(a.split("=", 1)[1] for a in args if a.startswith("--iface-regex="))
    assert regex == userdata.ip_regex(s.NOVA_NETWORK)
    assert not any("eth2" in a for a in args)


@pytest.mark.parametrize("cidr", ["192.168.0.0/24", "172.16.16.0/20", "10.0.0.0/8", "10.1.2.3/32",
                                  "192.168.4.0/22", "10.128.0.0/9", "192.168.7.64/26"])
def test_ip_regex_matches_exactly_the_network(cidr):
    network = ipaddress.IPv4Network(cidr)
    pattern = re.compile(userdata.ip_regex(network))
    rng = random.Random(cidr)
    inside = [network.network_address, network.broadcast_address] + [
        network.network_address + rng.randrange(network.num_addresses) for _ in range(200)]
    outside = [network.network_address - 1, network.broadcast_address + 1] + [
        ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(500)]
    for address in inside:
        assert pattern.match(str(address)), address
    for address in outside:
        assert bool(pattern.match(str(address))) == (address in network), address
    assert not pattern.match("eth2")


# --- secrets -----------------------------------------------------------------------

def _pem_body(pem):
    return "".join(pem.strip().splitlines()[1:-1])


def test_node_user_data_holds_no_secret_a_node_must_not_have(material):
    s = load_settings()
    facts = make_facts(material)
    text = userdata.render("node", s, node_facts(facts))
    for blob in (text, userdata.decode(userdata.encode(text, "node"))):
        flat = "".join(blob.split())
        assert _pem_body(material.ca_key_pem) not in flat
        assert _pem_body(material.admin_key_pem) not in flat
        assert _pem_body(material.admin_cert_pem) not in flat
        assert "PRIVATE KEY" not in blob
        for secret in (SENTINEL_API_KEY, SENTINEL_PASSWORD):
            assert secret not in blob


def test_master_gets_the_ca_but_never_admin_or_cloud_credentials(material):
    s = load_settings()
    text = userdata.render("master", s, make_facts(material))
    files = files_of(yaml.safe_load(text))
    assert files[f"{layout.CA_SOURCE_DIR}/ca.key"]["content"] == material.ca_key_pem
    assert files[f"{layout.CA_SOURCE_DIR}/ca.key"]["permissions"] == "0600"
    assert files[f"{layout.CA_SOURCE_DIR}/ca.crt"]["content"] == material.ca_cert_pem
    flat = "".join(text.split())
    assert _pem_body(material.admin_key_pem) not in flat
    for secret in (SENTINEL_API_KEY, SENTINEL_PASSWORD):
        assert secret not in text


def test_temp_url_and_token_sit_only_in_root_only_files(rendered):
    _, facts, texts = rendered
    for role, text in texts.items():
        config = yaml.safe_load(text)
        for path, f in files_of(config).items():
            if "temp_url_sig" in f["content"]:
                assert path == layout.RELEASE_CURLRC and f["permissions"] == "0600", (role, path)
            if facts.bootstrap_token in f["content"]:
                assert path == layout.KUBEADM_CONFIG and f["permissions"] == "0600", (role, path)
        for unit in config["coreos"]["units"]:
            assert "temp_url_sig" not in unit.get("content", "")
        curlrc = files_of(config)[layout.RELEASE_CURLRC]["content"]
        assert f'url = "{facts.release_url}"' in curlrc
        env = files_of(config)[layout.RELEASE_ENV]["content"]
        assert f"KUBE_RELEASE_SHA256={facts.release_sha256}" in env


def test_release_url_quoting_survives_curl_config_syntax(material):
    s = load_settings()
    facts = make_facts(material, release_url='https://x.invalid/a"b\\c?temp_url_sig=1')
    config = yaml.safe_load(userdata.render("node", s, node_facts(facts)))
    assert 'url = "https://x.invalid/a\\"b\\\\c?temp_url_sig=1"' in files_of(config)[layout.RELEASE_CURLRC]["content"]


# --- size and encoding -------------------------------------------------------------

def test_encoded_user_data_fits_novas_limit(rendered):
    _, _, texts = rendered
    for role, text in texts.items():
        data = userdata.encode(text, role)
        assert len(base64.b64encode(data)) < 64 * 1024, role
        assert userdata.decode(data) == text


def test_large_user_data_is_gzipped_small_is_not():
    small = "#cloud-config\nhostname: a\n"
    assert userdata.encode(small) == small.encode()
    large = "#cloud-config\n" + "# padding line\n" * 2000
    data = userdata.encode(large)
    assert data[:2] == b"\x1f\x8b"
    assert userdata.decode(data) == large
    assert userdata.encode(large) == data  # deterministic


def test_oversized_user_data_names_the_role():
    noise = random.Random(1).randbytes(80 * 1024).hex()
    with pytest.raises(UserError, match="the node user data is .* over Nova's limit"):
        userdata.encode("#cloud-config\n# " + noise + "\n", "node")


# --- inputs ------------------------------------------------------------------------

def test_too_old_or_unresolved_versions_are_refused(material):
    s = load_settings()
    for version, message in (("v1.30.9", "KUBE_VERSION v1.30.9 is too old"), ("stable", "not a release")):
        with pytest.raises(UserError, match=message):
            userdata.render("master", s, make_facts(material, kube_version=version))


def test_a_node_needs_the_masters_address(material):
    s = load_settings()
    with pytest.raises(ValueError):
        userdata.render("node", s, make_facts(material))
    with pytest.raises(ValueError):
        userdata.render("minion", s, make_facts(material))


def test_no_cloud_kind_is_assumed(material):
    """User data without the cloud kind's template facts is refused, never
    rendered as the legacy cloud's."""
    with pytest.raises(ValueError, match="cloud kind's template facts"):
        userdata.render("master", load_settings(), make_facts(material, net=None))


def test_templates_fail_on_undefined_values(material):
    env = userdata._environment()
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ nothing }}").render()


def test_facts_repr_hides_secrets(material):
    text = repr(make_facts(material))
    assert "temp_url_sig" not in text
    assert material.bootstrap_token not in text
    assert _pem_body(material.ca_key_pem)[:40] not in text


# --- golden files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["master.yaml", "node-1.yaml"])
def test_golden(name):
    text = golden_renders()[name]
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run UPDATE_GOLDEN=1 pytest tests/test_userdata.py"
    assert text == path.read_text(), \
        f"what the servers run changed; review the diff and run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"


# --- the scripts, run for real -------------------------------------------------------

def rooted_layout(root):
    """layout with every absolute path moved under `root`, so the rendered
    scripts can run here without touching this machine's /etc, /opt or /run."""
    return SimpleNamespace(**{name: f"{root}{value}" if isinstance(value, str) and value.startswith("/") else value
                              for name, value in layout.template_values().items()})


def render_rooted(template, role, s, facts, root):
    values = userdata.context(role, s, facts)
    values["layout"] = rooted_layout(root)
    return userdata._environment().get_template(template).render(**values)


PUBLICNET, SERVICENET = names.PUBLICNET, names.SERVICENET
CLOUD_NET_ID = "7b5a3b4e-33cf-4f3a-9d59-0b2a6c0c2b11"


def _link(name, mac):
    # As nova.virt.netutils._get_eth_link writes a link (Xen VIFs on Rackspace).
    return {"id": name, "vif_id": f"vif-{name}", "type": "vif", "mtu": 1500, "ethernet_mac_address": mac}


def _static(num, link, network_id, address, netmask="255.255.255.0", gateway=None):
    # As nova.virt.netutils._get_nets writes a network with a fixed address.
    return {"id": f"network{num}", "type": "ipv4", "link": link, "ip_address": address, "netmask": netmask,
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": gateway}] if gateway else [],
            "network_id": network_id}


def _dhcp(num, link, network_id, version=4):
    # ...and one whose subnet hands out addresses by DHCP: no ip_address.
    return {"id": f"network{num}", "type": f"ipv{version}_dhcp", "link": link, "network_id": network_id}


# Each case: network_data.json (or None: no config drive), the NICs as the
# kernel names them (name, MAC, address/prefix or None) and what the
# script must find: (PublicNet, ServiceNet, Cloud Network). The NICs are
# listed in another order than the networks, and none is called eth*.
NETWORK_CASES = {
    "three-static-nics-xen-names": (
        {"links": [_link("tapa1", "BC:76:4E:20:00:01"), _link("tapb2", "bc:76:4e:20:00:02"),
                   _link("tapc3", "bc:76:4e:20:00:03")],
         "networks": [_static(0, "tapa1", PUBLICNET, "198.51.100.7", gateway="198.51.100.1"),
                      _static(1, "tapb2", SERVICENET, "10.176.4.9", netmask="255.255.224.0"),
                      _static(2, "tapc3", CLOUD_NET_ID, "192.168.0.4")],
         "services": [{"type": "dns", "address": "72.3.128.241"}]},
        [("enX2", "bc:76:4e:20:00:03", "192.168.0.4/24"), ("enX0", "bc:76:4e:20:00:02", "10.176.4.9/19"),
         ("enX1", "bc:76:4e:20:00:01", "198.51.100.7/24")],
        ("198.51.100.7", "10.176.4.9", "192.168.0.4")),
    "dhcp-entry-first": (
        # PublicNet twice: a DHCP port whose NIC has no address yet comes
        # before the fixed one, and must not hide it.
        {"links": [_link("tap-sn", "fa:16:3e:aa:00:02"), _link("tap-pub2", "fa:16:3e:aa:00:04"),
                   _link("tap-pub", "fa:16:3e:aa:00:01"), _link("tap-cn", "fa:16:3e:aa:00:03")],
         "networks": [_dhcp(0, "tap-sn", SERVICENET), _dhcp(1, "tap-sn", SERVICENET, version=6),
                      _dhcp(2, "tap-pub2", PUBLICNET),
                      _static(3, "tap-pub", PUBLICNET, "203.0.113.20", gateway="203.0.113.1"),
                      _static(4, "tap-cn", CLOUD_NET_ID, "192.168.0.9")],
         "services": []},
        [("ens3", "fa:16:3e:aa:00:01", "203.0.113.20/24"), ("ens4", "fa:16:3e:aa:00:02", "10.180.2.33/19"),
         ("enp0s5", "fa:16:3e:aa:00:03", "192.168.0.9/24"), ("ens6", "fa:16:3e:aa:00:04", None)],
        ("203.0.113.20", "10.180.2.33", "192.168.0.9")),
    "every-network-by-dhcp": (
        {"links": [_link("tap1", "fa:16:3e:bb:00:01"), _link("tap2", "fa:16:3e:bb:00:02"),
                   _link("tap3", "fa:16:3e:bb:00:03")],
         "networks": [_dhcp(0, "tap1", PUBLICNET), _dhcp(1, "tap2", SERVICENET), _dhcp(2, "tap3", CLOUD_NET_ID)],
         "services": []},
        [("ens5", "fa:16:3e:bb:00:03", "192.168.0.77/24"), ("ens4", "fa:16:3e:bb:00:02", "10.176.9.1/19"),
         ("ens3", "fa:16:3e:bb:00:01", "198.51.100.99/24")],
        ("198.51.100.99", "10.176.9.1", "192.168.0.77")),
    "no-config-drive": (
        None,
        [("enX0", "bc:76:4e:20:00:11", "198.51.100.8/24"), ("enX1", "bc:76:4e:20:00:12", "10.176.4.10/19"),
         ("enX2", "bc:76:4e:20:00:13", "192.168.0.5/24")],
        ("", "", "192.168.0.5")),
}


def run_in_fake_network(root, nics, script):
    """Run bash `script` in a fresh network namespace holding TAP devices
    named and addressed as `nics`, with that namespace's sysfs mounted at
    <root>/sys (so layout.SYS_CLASS_NET, re-rooted, lists exactly them)."""
    _tool("unshare", "util-linux")
    setup = [f"mkdir -p {root}/sys", f"mount -t sysfs sysfs {root}/sys"]
    for i, (name, mac, address) in enumerate(nics):
        setup += [f"ip tuntap add dev kr-tap{i} mode tap", f"ip link set kr-tap{i} address {mac} name {name}",
                  f"ip link set {name} up"]
        if address:
            setup.append(f"ip addr add {address} dev {name}")
    return subprocess.run(["unshare", "--net", "--mount", "bash", "-c", "set -euo pipefail\n" + "\n".join(setup)
                           + "\n" + script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(NETWORK_CASES))
def test_addresses_are_found_by_mac_and_cidr_never_by_interface_name(case, material, tmp_path):
    _tool("jq", "jq")   # Flatcar ships it; the script reads network_data.json with it
    network_data, nics, expected = NETWORK_CASES[case]
    s = load_settings()
    root = tmp_path / "root"
    rooted = rooted_layout(root)
    script = Path(rooted.ADDRESSES_SCRIPT)
    script.parent.mkdir(parents=True)
    script.write_text(render_rooted("files/addresses.sh.j2", "master", s, make_facts(material), root))
    if network_data is not None:
        data = Path(rooted.CONFIG_DRIVE_MOUNT) / layout.NETWORK_DATA
        data.parent.mkdir(parents=True)
        data.write_text(json.dumps(network_data))
    result = run_in_fake_network(root, nics, f"""
source {script}
echo "$(kr_public_address)|$(kr_servicenet_address)|$(kr_cloud_network_address)"
""")
    assert result.returncode == 0, result.stderr
    assert tuple(result.stdout.strip().split("|")) == expected, result.stderr


STUBS = HERE / "testcloud" / "stubs.py"


def stub_bin(directory, commands, noop=()):
    """Executables in `directory`: each of `commands` runs the test cloud's
    stub of that name, each of `noop` does nothing (modprobe, sysctl: never
    the real ones on this machine)."""
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    for name in commands:
        (directory / name).write_text(f'#!/bin/sh\nexec {sys.executable} {STUBS} {name} "$@"\n')
    for name in noop:
        (directory / name).write_text("#!/bin/sh\nexit 0\n")
    for path in directory.iterdir():
        path.chmod(0o755)


def write_files(config):
    """What coreos-cloudinit does with write_files, at every boot."""
    for f in config["write_files"]:
        path = Path(f["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f["content"])
        path.chmod(int(f["permissions"], 8))


def server_root(tmp_path, material, role="master"):
    """The server's files as cloud-config writes them, under tmp_path/root,
    plus the config drive's network_data.json; and its config."""
    s = load_settings()
    facts = make_facts(material) if role == "master" else node_facts(make_facts(material))
    root = tmp_path / "root"
    config = yaml.safe_load(render_rooted(f"{role}.yaml.j2", role, s, facts, root))
    write_files(config)
    rooted = rooted_layout(root)
    data = Path(rooted.CONFIG_DRIVE_MOUNT) / layout.NETWORK_DATA
    data.parent.mkdir(parents=True)
    data.write_text(json.dumps(NETWORK_CASES["three-static-nics-xen-names"][0]))
    return root, rooted, config


def master_root(tmp_path, material):
    root, rooted, _ = server_root(tmp_path, material)
    return root, rooted


@pytest.mark.parametrize("fail_after", ["kubeconfig", "wait-control-plane"])
def test_a_kubeadm_init_that_failed_after_admin_conf_is_reset_and_run_again(material, tmp_path, fail_after):
    _tool("jq", "jq")
    root, rooted = master_root(tmp_path, material)
    stub_bin(Path(rooted.BIN_DIR), ["kubeadm", "kubectl"])
    stub_bin(tmp_path / "sbin", [], noop=["modprobe", "sysctl", "systemctl"])
    health = tmp_path / "health"
    health.mkdir()
    (health / "kubernetes-master.json").write_text(
        json.dumps({"kubeadm": {"init_fail_after": fail_after, "init_failures": 1}}))
    env = {"PATH": f"{tmp_path / 'sbin'}:/usr/sbin:/usr/bin:/sbin:/bin", "TESTCLOUD_SERVER_ROOT": str(root),
           "TESTCLOUD_HEALTH_DIR": str(health), "TESTCLOUD_SERVER_NAME": "kubernetes-master"}
    cluster = root / "var/lib/etcd/stub-cluster.json"
    log = root / "var/log/kubeadm-stub.log"

    def bootstrap():
        return subprocess.run(["bash", rooted.BOOTSTRAP_SCRIPT], env=env, capture_output=True, text=True, timeout=60)

    first = bootstrap()
    assert first.returncode != 0 and f"error execution phase {fail_after}" in first.stderr
    assert Path(rooted.ADMIN_CONF).exists() and not Path(rooted.DONE_MARKER).exists()

    second = bootstrap()
    assert second.returncode == 0, second.stderr
    assert "an earlier kubeadm init did not finish" in second.stderr
    calls = [line.split()[1] for line in log.read_text().splitlines()]
    assert calls == ["init", "reset", "init"]
    # The cluster has what a finished init makes, with the CA made on the laptop.
    assert {"bootstrap-token", "addon", "upload-config"} <= set(json.loads(cluster.read_text())["phases"])
    assert Path(rooted.CA_CERT).read_text() == material.ca_cert_pem
    assert Path(rooted.CA_KEY).read_text() == material.ca_key_pem
    assert Path(rooted.DONE_MARKER).exists() and Path(rooted.INIT_DONE_MARKER).exists()

    third = bootstrap()
    assert third.returncode == 0, third.stderr
    assert [line.split()[1] for line in log.read_text().splitlines()] == calls   # never again once done


@pytest.mark.parametrize("role", ["master", "node"])
def test_a_second_cloud_config_run_at_reboot_changes_nothing(material, tmp_path, role):
    """coreos-cloudinit runs the user data at every boot: it writes the files
    again and kube-start starts the bootstrap again. kubeadm init or join
    must not run again, and the cluster's PKI must stay as it is."""
    _tool("jq", "jq")
    root, rooted, config = server_root(tmp_path, material, role)
    stub_bin(Path(rooted.BIN_DIR), ["kubeadm", "kubectl"])
    stub_bin(tmp_path / "sbin", [], noop=["modprobe", "sysctl", "systemctl"])
    health = tmp_path / "health"
    health.mkdir()
    env = {"PATH": f"{tmp_path / 'sbin'}:/usr/sbin:/usr/bin:/sbin:/bin", "TESTCLOUD_SERVER_ROOT": str(root),
           "TESTCLOUD_HEALTH_DIR": str(health), "TESTCLOUD_SERVER_NAME": f"kubernetes-{role}",
           "HOME": str(tmp_path)}
    log = root / "var/log/kubeadm-stub.log"

    def bootstrap():
        return subprocess.run(["bash", rooted.BOOTSTRAP_SCRIPT], env=env, capture_output=True, text=True, timeout=60)

    first = bootstrap()
    assert first.returncode == 0, first.stderr
    calls = [line.split()[1] for line in log.read_text().splitlines()]
    assert calls == (["init"] if role == "master" else ["join"])
    pki = {p: p.read_bytes() for p in (root / "etc/kubernetes").rglob("*") if p.is_file()}

    write_files(config)   # the next boot's cloud-config run
    second = bootstrap()
    assert second.returncode == 0, second.stderr
    assert [line.split()[1] for line in log.read_text().splitlines()] == calls
    assert {p: p.read_bytes() for p in (root / "etc/kubernetes").rglob("*") if p.is_file()} == pki
    assert Path(rooted.DONE_MARKER).exists()


def test_containerd_gets_the_pause_image_kubeadm_lists_before_the_kubelet_starts(material, tmp_path):
    import tomllib

    root, rooted = master_root(tmp_path, material)
    flatcar = Path(rooted.FLATCAR_CONTAINERD_CONFIG)
    flatcar.parent.mkdir(parents=True)
    shutil.copy(HERE / "data" / "flatcar-containerd-config.toml", flatcar)
    stub_bin(Path(rooted.BIN_DIR), ["kubeadm"])
    sbin = tmp_path / "sbin"
    stub_bin(sbin, [])
    (sbin / "systemctl").write_text(f'#!/bin/sh\necho "$*" >>{tmp_path}/systemctl.log\n')
    (sbin / "systemctl").chmod(0o755)
    env = {"PATH": f"{sbin}:/usr/bin:/bin", "TESTCLOUD_SERVER_ROOT": str(root)}

    def run():
        return subprocess.run(["bash", rooted.SANDBOX_SCRIPT], env=env, capture_output=True, text=True, timeout=60)

    result = run()
    assert result.returncode == 0, result.stderr
    # What the installed kubeadm names for this release (the stub answers as kubeadm 1.34 does).
    assert "config images list --kubernetes-version v1.31.4" in (root / "var/log/kubeadm-stub.log").read_text()
    config = tomllib.loads(Path(rooted.CONTAINERD_CONFIG).read_text())
    original = tomllib.loads(flatcar.read_text())
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri.pop("sandbox_image") == "registry.k8s.io/pause:3.10.1"
    assert config == original   # Flatcar's settings (SystemdCgroup...) all kept
    # containerd's own reading of it (Debian's 1.6; Flatcar's 2.x migrates version 2 configs).
    dump = subprocess.run([_tool("containerd", "containerd"), "--config", rooted.CONTAINERD_CONFIG, "config", "dump"],
                          capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert re.search(r'^\s*sandbox_image = "registry\.k8s\.io/pause:3\.10\.1"$', dump.stdout, re.M)
    assert re.search(r"^\s*SystemdCgroup = true$", dump.stdout, re.M)
    dropin = Path(rooted.CONTAINERD_DROPIN).read_text()
    assert re.search(rf"^\[Service\]\nEnvironment=CONTAINERD_CONFIG={re.escape(rooted.CONTAINERD_CONFIG)}$", dropin, re.M)
    assert (tmp_path / "systemctl.log").read_text() == f"daemon-reload\nrestart {layout.UNIT_CONTAINERD}\n"
    # Unchanged on the next run: no second restart.
    assert run().returncode == 0
    assert (tmp_path / "systemctl.log").read_text() == f"daemon-reload\nrestart {layout.UNIT_CONTAINERD}\n"


def test_sandbox_image_is_set_after_kubeadm_is_installed_and_before_images_and_kubelet(rendered):
    _, _, texts = rendered
    for role, text in texts.items():
        config = yaml.safe_load(text)
        fetch = files_of(config)[layout.FETCH_SCRIPT]["content"]
        install = fetch.index('"$bin_dir/$binary"')
        sandbox = fetch.index(f"\n{layout.SANDBOX_SCRIPT}\n")
        imports = fetch.index("images import")
        assert install < sandbox < imports, role
        units = units_of(config)
        assert re.search(rf"^After=.*\b{re.escape(layout.UNIT_RELEASE)}\b", units[layout.UNIT_KUBELET]["content"], re.M)
        # A restart of containerd must not restart (kill) the unit running it.
        for name, unit in units.items():
            for key in ("Requires", "BindsTo", "PartOf"):
                assert not re.search(rf"^{key}=.*\b{re.escape(layout.UNIT_CONTAINERD)}", unit.get("content", ""),
                                     re.M), (role, name)


# --- the kubeadm configs, as kubeadm reads them ------------------------------------

def test_no_kubeadm_config_sets_expires_beside_the_ttl_kubeadm_defaults(rendered):
    """kubeadm defaults an unset ttl to 24h (SetDefaults_BootstrapToken) and
    refuses ttl with expires: the master's config used to set expires."""
    from tests.testcloud import kubeadm_config

    _, _, texts = rendered
    for role, text in texts.items():
        content = files_of(yaml.safe_load(text))[layout.KUBEADM_CONFIG]["content"]
        for doc in yaml.safe_load_all(content):
            for token in doc.get("bootstrapTokens") or []:
                defaulted = kubeadm_config.default_token(token)
                assert not ("ttl" in defaulted and "expires" in defaulted), (role, token)


def test_the_kubeadm_config_checked_is_the_one_the_user_data_writes(rendered):
    s, facts, texts = rendered
    for role, text in texts.items():
        role_facts = node_facts(facts) if role == "node" else facts
        if role not in layout.ROLES:
            continue
        written = files_of(yaml.safe_load(text))[layout.KUBEADM_CONFIG]["content"]
        assert userdata.kubeadm_config(role, s, dataclasses.replace(role_facts, net=None)) == written, role


def test_the_bootstrap_scripts_fill_every_placeholder_the_check_fills(rendered):
    """The check fills what the servers fill at boot, and nothing is left."""
    from tasks.steps import kubeadmcheck

    _, _, texts = rendered
    for role, text in texts.items():
        files = files_of(yaml.safe_load(text))
        config = files[layout.KUBEADM_CONFIG]["content"]
        script = files[layout.BOOTSTRAP_SCRIPT]["content"]
        used = set(re.findall(r"@[A-Z_]+@", config))
        assert used <= set(kubeadmcheck.PLACEHOLDERS), role
        for placeholder in used:
            assert f"s/{placeholder}/" in script, (role, placeholder)


def test_rendered_kubeadm_configs_pass_kubeadm_validation_once_filled(rendered):
    """Through the test release's kubeadm checks (tests/testcloud/kubeadm_config.py),
    with the placeholders filled as at boot; unfilled, the master's is refused
    (advertiseAddress must be an address)."""
    import datetime

    from tasks.steps import kubeadmcheck
    from tests.testcloud import kubeadm_config

    s, facts, texts = rendered
    now = kubeadmcheck.parse_expiry(facts.bootstrap_token_expires) - datetime.timedelta(hours=5)
    for role, text in texts.items():
        config = files_of(yaml.safe_load(text))[layout.KUBEADM_CONFIG]["content"]
        filled = kubeadmcheck.fill(config, kubeadmcheck.sample_values(s.NOVA_NETWORK, facts.bootstrap_token_expires, now))
        assert kubeadm_config.validate(filled) is None, role
        if role == "master":
            assert "@CLOUD_NETWORK_IP@" in kubeadm_config.validate(config)
            token = next(yaml.safe_load_all(filled))["bootstrapTokens"][0]
            assert token["ttl"] == f"{5 * 3600}s"


def _bootstrap_env(tmp_path, root, rooted):
    stub_bin(Path(rooted.BIN_DIR), ["kubeadm", "kubectl"])
    stub_bin(tmp_path / "sbin", [], noop=["modprobe", "sysctl", "systemctl"])
    health = tmp_path / "health"
    health.mkdir(exist_ok=True)
    return {"PATH": f"{tmp_path / 'sbin'}:/usr/sbin:/usr/bin:/sbin:/bin", "TESTCLOUD_SERVER_ROOT": str(root),
            "TESTCLOUD_HEALTH_DIR": str(health), "TESTCLOUD_SERVER_NAME": "kubernetes-master"}


@pytest.mark.parametrize("left", [3 * 3600, -3600])
def test_the_master_registers_the_token_with_the_recorded_expiry_never_forever(material, tmp_path, left):
    """bash on the rendered files, with the test cloud's kubeadm (which
    validates --config as kubeadm does and records the tokens its
    bootstrap-token phase creates): the token expires when the laptop's
    record says; one already past it is registered expired, never as ttl 0
    (which kubeadm takes as "never expires")."""
    import datetime

    _tool("jq", "jq")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    expires = now + datetime.timedelta(seconds=left)
    material = dataclasses.replace(material, bootstrap_token_expires=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    root, rooted = master_root(tmp_path, material)
    env = _bootstrap_env(tmp_path, root, rooted)
    result = subprocess.run(["bash", rooted.BOOTSTRAP_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (token,) = json.loads((root / "var/lib/etcd/stub-cluster.json").read_text())["bootstrap_tokens"]
    assert token["token-id"] == material.bootstrap_token.split(".")[0]
    expiration = datetime.datetime.strptime(token["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    if left > 0:
        assert abs((expiration - expires).total_seconds()) <= 5
    else:
        assert "the bootstrap token expired at" in result.stderr
        assert now <= expiration <= now + datetime.timedelta(seconds=10)
    # The config with the token in it is gone from /run.
    assert not list(Path(rooted.RUN_DIR).glob("kubeadm*.yaml"))


def test_nothing_overrides_the_interface_mtu(rendered):
    """The interface's MTU is the network's (Neutron's `mtu`, handed out by
    DHCP: Flatcar's zz-default.network has UseMTU=true, flatcar/init
    systemd/network/zz-default.network), and vxlan's is derived from it:
    no unit, networkd file or flannel setting of ours may set one."""
    _, _, texts = rendered
    for role, text in texts.items():
        # (A bare "mtu" may turn up inside the random PEM blocks.)
        assert not re.search(r'(?i)mtubytes|"mtu"|\bmtu\s*[=:]|\bmtu\s+\d', text), role
        config = yaml.safe_load(text)
        assert not [p for p in files_of(config) if p.startswith(("/etc/systemd/network", "/run/systemd/network"))]
        assert not [u for u in config["coreos"]["units"] if u["name"].endswith((".network", ".link", ".netdev"))]
