"""The servers' host firewall (cloud-config/files/firewall.nft.j2, loaded by
firewall.sh from kube-firewall.service).

The rendered rules go through the real nft: `nft -c -f` checks them, and
they are loaded into a throw-away network namespace and listed back as
JSON, so what is judged is what the kernel holds. A small evaluator walks
that JSON for every TCP and UDP port on every kind of interface and the
test compares the accepted set with what README promises, per role:
PublicNet SSH (and the API server on the master, NodePorts when
PUBLIC_NODEPORTS=true), ServiceNet nothing, the Cloud Network and this
server's pods everything. An expression the evaluator does not know fails
the test, so a new kind of rule cannot slip past it.
"""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tasks.kinds import legacy as kind_legacy
from tasks.model import layout, pki, settings, userdata

PUBLIC_IF, SERVICENET_IF, CLOUD_IF = "eth0", "eth1", "eth2"


def _nft():
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not shutil.which(nft):
        pytest.fail("nft not found: install the Debian package nftables (scripts/bootstrap --tests)")
    return nft


def render(material, role, **flags):
    s = settings.load(environ={}, flags=flags)
    facts = userdata.ClusterFacts.from_pki(
        material, kube_version="v1.31.4", release_url="https://storage.example.invalid/r.tgz",
        release_sha256="ab" * 32, ssh_public_key="ssh-ed25519 AAAAC3NzaTestOnly test",
        net=kind_legacy.template_facts(s, role))
    if role == "node":
        facts = facts.__class__(**{**facts.__dict__, "master_ip": "192.168.0.5", "node_index": 1})
    config = yaml.safe_load(userdata.render(role, s, facts))
    files = {f["path"]: f["content"] for f in config["write_files"]}
    units = {u["name"]: u for u in config["coreos"]["units"]}
    return files, units


def boot_transaction(files, public_if=PUBLIC_IF, cloud_if=CLOUD_IF):
    """What firewall.sh pipes into `nft -f -`: the rules file, then its
    printf lines with this server's interfaces (taken from the script)."""
    script = files[layout.FIREWALL_SCRIPT]
    lines = re.findall(r"^\s*printf '(add element [^']*)\\n' \"\$(\w+)\"", script, re.M)
    assert [var for _, var in lines] == ["public_if", "cloud_if"], lines
    values = {"public_if": public_if, "cloud_if": cloud_if}
    return files[layout.FIREWALL_RULES] + "".join(fmt.replace("%s", values[var]) + "\n" for fmt, var in lines)


def loaded(text, tmp_path):
    """The ruleset as the kernel holds it (nft -j), loaded in a new network
    namespace so this process's own (loopback-only) namespace is untouched."""
    path = tmp_path / "boot.nft"
    path.write_text(text)
    nft = _nft()
    result = subprocess.run(["unshare", "--net", "sh", "-c",
                             f'"{nft}" -f "{path}" && "{nft}" -j list table inet {layout.FIREWALL_TABLE}'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["nftables"]


# --- an evaluator for the expressions the rules use ---------------------------------

class Unmodelled(AssertionError):
    pass


def _value(packet, left):
    if "meta" in left:
        key = left["meta"]["key"]
        return {"iif": packet["iif"], "iifname": packet["iif"], "l4proto": packet["proto"]}[key]
    if "ct" in left and left["ct"]["key"] == "state":
        return packet["ct"]
    if "payload" in left:
        protocol, field = left["payload"]["protocol"], left["payload"]["field"]
        if protocol == "th":
            if packet["proto"] not in ("tcp", "udp"):
                return None
        elif packet["proto"] != protocol:
            return None
        return packet.get({"type": "type"}.get(field, field))
    raise Unmodelled(f"expression {left}")


def _matches(packet, match, sets):
    value = _value(packet, match["left"])
    if value is None:           # e.g. a tcp field on a udp packet
        return False
    right, op = match["right"], match["op"]
    if isinstance(right, str) and right.startswith("@"):
        candidates = sets[right[1:]]
    elif isinstance(right, dict) and "set" in right:
        candidates = right["set"]
    elif isinstance(right, dict) and "range" in right:
        low, high = right["range"]
        return low <= value <= high
    elif isinstance(right, list):
        candidates = right
    else:
        candidates = [right]
    if op not in ("==", "in"):
        raise Unmodelled(f"operator {op}")
    return value in candidates


def compile_ruleset(ruleset):
    """(sets, base chain, rules' expressions) of the listed table."""
    sets = {x["set"]["name"]: x["set"].get("elem", []) for x in ruleset if "set" in x}
    chains = [x["chain"] for x in ruleset if "chain" in x and "hook" in x["chain"]]
    assert len(chains) == 1 and chains[0]["hook"] == "prerouting", chains
    # Before kube-proxy's DNAT (dstnat, -100): NodePorts keep their port here.
    assert chains[0]["prio"] < -100
    rules = []
    for rule in (x["rule"] for x in ruleset if "rule" in x):
        *matches, final = rule["expr"]
        if any("match" not in m for m in matches):
            raise Unmodelled(f"statement in {rule['expr']}")
        (action,) = final.keys()
        if action not in ("accept", "drop"):
            raise Unmodelled(f"verdict {final}")
        rules.append(([m["match"] for m in matches], action))
    return sets, chains[0]["policy"], rules


def verdict(ruleset, packet):
    sets, policy, rules = ruleset if isinstance(ruleset, tuple) else compile_ruleset(ruleset)
    for matches, action in rules:
        if all(_matches(packet, m, sets) for m in matches):
            return action
    return policy


def _port_numbers(value):
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _port_numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _port_numbers(v)]
    return []


def accepted_ports(ruleset, iif, proto):
    """Every port of `proto` a new connection on `iif` is accepted on. Ports
    are only compared with numbers and ranges from the rules, so the verdict
    is the same between consecutive boundaries: one port per stretch stands
    for all of it (exact, and far faster than trying all 65536)."""
    sets, policy, rules = compiled = compile_ruleset(ruleset)
    edges = {0, 65536}
    for matches, _ in rules:
        for number in _port_numbers([m["right"] for m in matches]):
            if 0 <= number <= 65535:
                edges.update((number, number + 1))
    edges = sorted(edges)
    found = set()
    for start, end in zip(edges, edges[1:]):
        packet = {"iif": iif, "proto": proto, "ct": "new", "sport": 40000, "dport": start}
        if verdict(compiled, packet) == "accept":
            found.update(range(start, end))
    return found


ALL_PORTS = set(range(65536))
NODEPORTS = set(range(layout.NODEPORTS[0], layout.NODEPORTS[1] + 1))


@pytest.mark.parametrize("role, nodeports", [("master", False), ("node", False), ("master", True), ("node", True)])
def test_rules_allow_exactly_what_the_readme_lists(material, tmp_path, role, nodeports):
    files, _ = render(material, role, PUBLIC_NODEPORTS=str(nodeports).lower())
    ruleset = loaded(boot_transaction(files), tmp_path)
    public_tcp = {layout.SSH_PORT} | ({layout.API_PORT} if role == "master" else set()) | \
        (NODEPORTS if nodeports else set())
    public_udp = NODEPORTS if nodeports else set()
    assert accepted_ports(ruleset, PUBLIC_IF, "tcp") == public_tcp
    assert accepted_ports(ruleset, PUBLIC_IF, "udp") == public_udp
    # ServiceNet is shared with every customer in the data centre: nothing.
    assert accepted_ports(ruleset, SERVICENET_IF, "tcp") == set()
    assert accepted_ports(ruleset, SERVICENET_IF, "udp") == set()
    # The Cloud Network, this server's pods and loopback: everything.
    for trusted in (CLOUD_IF, layout.POD_BRIDGE, "lo"):
        assert accepted_ports(ruleset, trusted, "tcp") == ALL_PORTS, trusted
        assert accepted_ports(ruleset, trusted, "udp") == ALL_PORTS, trusted
    # Answers to what the server asked for come back on every interface.
    for iif in (PUBLIC_IF, SERVICENET_IF):
        for state in ("established", "related"):
            assert verdict(ruleset, {"iif": iif, "proto": "tcp", "ct": state, "sport": 443, "dport": 51000}) == "accept"
        # DHCP answers; ping and ICMP errors; IPv6 neighbour discovery.
        assert verdict(ruleset, {"iif": iif, "proto": "udp", "ct": "new", "sport": 67, "dport": 68}) == "accept"
        assert verdict(ruleset, {"iif": iif, "proto": "icmp", "ct": "new", "type": "echo-request"}) == "accept"
        assert verdict(ruleset, {"iif": iif, "proto": "icmp", "ct": "new", "type": "redirect"}) == "drop"
        assert verdict(ruleset, {"iif": iif, "proto": "icmpv6", "ct": "new", "type": "nd-neighbor-solicit"}) == "accept"
        assert verdict(ruleset, {"iif": iif, "proto": "icmpv6", "ct": "new", "type": "nd-redirect"}) == "drop"


@pytest.mark.parametrize("backend", ["", "host-gw", "vxlan"])
def test_flannels_vxlan_device_is_trusted_only_with_vxlan(material, tmp_path, backend):
    """Legacy with POD_NETWORK_BACKEND=vxlan: other servers' pod packets come
    out of flannel.1 (their UDP came in on the Cloud Network); without
    vxlan no such device is trusted, and PublicNet stays as it was."""
    files, _ = render(material, "node", POD_NETWORK_BACKEND=backend)
    ruleset = loaded(boot_transaction(files), tmp_path)
    expected = ALL_PORTS if backend == "vxlan" else set()
    assert accepted_ports(ruleset, layout.FLANNEL_VXLAN_DEVICE, "tcp") == expected
    assert accepted_ports(ruleset, layout.FLANNEL_VXLAN_DEVICE, "udp") == expected
    assert accepted_ports(ruleset, PUBLIC_IF, "udp") == set()


def test_the_evaluator_sees_a_rule_that_opens_a_port(material, tmp_path):
    """The test above can fail: one more open port on PublicNet is found."""
    files, _ = render(material, "node")
    opened = files[layout.FIREWALL_RULES].replace(
        f"tcp dport {layout.SSH_PORT} accept", f"tcp dport {{ {layout.SSH_PORT}, 10250 }} accept")
    ruleset = loaded(boot_transaction({**files, layout.FIREWALL_RULES: opened}), tmp_path)
    assert accepted_ports(ruleset, PUBLIC_IF, "tcp") == {layout.SSH_PORT, 10250}
    # ... and an interface the script did not add is not trusted.
    ruleset = loaded(boot_transaction(files, cloud_if="eth9"), tmp_path)
    assert accepted_ports(ruleset, CLOUD_IF, "tcp") == set()


@pytest.mark.parametrize("role", ["master", "node"])
def test_rule_file_passes_nft_check(material, tmp_path, role):
    files, _ = render(material, role, PUBLIC_NODEPORTS="true")
    for name, text in (("rules.nft", files[layout.FIREWALL_RULES]), ("boot.nft", boot_transaction(files))):
        path = tmp_path / name
        path.write_text(text)
        result = subprocess.run([_nft(), "-c", "-f", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}:\n{result.stderr}"


def test_nft_check_catches_a_broken_rule(material, tmp_path):
    files, _ = render(material, "node")
    path = tmp_path / "broken.nft"
    path.write_text(files[layout.FIREWALL_RULES].replace("tcp dport", "tcp dprot"))
    assert subprocess.run([_nft(), "-c", "-f", str(path)], capture_output=True).returncode != 0


@pytest.mark.parametrize("role", ["master", "node"])
def test_firewall_is_up_before_kubernetes_and_at_every_boot(material, role):
    files, units = render(material, role)
    unit = units[layout.UNIT_FIREWALL]["content"]
    assert units[layout.UNIT_FIREWALL]["enable"] is True
    # No cloud-config start: unit dependencies order it, at first boot and after.
    assert "command" not in units[layout.UNIT_FIREWALL]
    lines = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line)
    assert set(lines["Before"].split()) >= {layout.UNIT_KUBELET, layout.UNIT_BOOTSTRAP}
    assert set(lines["RequiredBy"].split()) >= {layout.UNIT_KUBELET, layout.UNIT_BOOTSTRAP}
    assert "multi-user.target" in lines["WantedBy"].split()
    assert lines["ExecStart"] == layout.FIREWALL_SCRIPT
    script = files[layout.FIREWALL_SCRIPT]
    assert f"cat {layout.FIREWALL_RULES}" in script and "| nft -f -" in script
    # Interfaces are found by address (the Cloud Network's by NOVA_NETWORK's CIDR), never by name.
    assert not re.search(r"\beth\d\b", script + files[layout.FIREWALL_RULES])


def test_loading_the_firewall_again_leaves_one_ruleset(material, tmp_path):
    """kube-firewall.service runs at every boot, and cloud-config (which runs
    again at every boot) may find it loaded: a second load in the same
    namespace replaces the table, it does not add to it."""
    files, _ = render(material, "master")
    text = boot_transaction(files)
    once = loaded(text, tmp_path)
    path = tmp_path / "boot.nft"
    nft = _nft()
    result = subprocess.run(["unshare", "--net", "sh", "-c",
                             f'"{nft}" -f "{path}" && "{nft}" -f "{path}" && '
                             f'"{nft}" -j list table inet {layout.FIREWALL_TABLE}'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    def without_handles(value):   # the kernel numbers a new table's objects anew
        if isinstance(value, dict):
            return {k: without_handles(v) for k, v in value.items() if k != "handle"}
        if isinstance(value, list):
            return [without_handles(v) for v in value]
        return value

    assert without_handles(json.loads(result.stdout)["nftables"]) == without_handles(once)
