"""SSH to the cluster's servers: connections, host keys, post-boot checks.

Every connection honours SSH_CONFIG (ProxyCommand, ProxyJump: Fabric reads
them), logs in as SSH_USER with the cluster key, and checks host keys
against the cluster's own known_hosts (names.state_dir/known_hosts): a key
is recorded at first contact and a changed key is refused, naming the
server and the file to edit. Entries are keyed by the server's public
address, as the user knows it, so `ssh` and `inv ssh` agree with us.
"""

import ipaddress
import json
import shlex
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import fabric
import paramiko
from invoke.exceptions import CommandTimedOut
from paramiko.ssh_exception import BadHostKeyException

from ..model import layout, names, servers
from ..support import progress
from ..support.errors import UserError

# One connection attempt; a server that is still booting refuses or drops
# us, so attempts repeat until the per-server timeout.
CONNECT_TIMEOUT = 10
RETRY_DELAY = 3.0
# A single check command; checks that do not pass yet are retried.
COMMAND_TIMEOUT = 60
JOURNAL_LINES = 20
# The shell's "cannot execute" / "not found": the checks run in boot order,
# so a command missing once the units before it passed will not appear.
NOT_RUNNABLE = (126, 127)
NO_LIST = "kubectl printed no node list"
NO_PODS = "kubectl printed no pod list"

_file_lock = threading.Lock()


class HostKeyChanged(UserError):
    """The server presented a key other than the one recorded for it."""


@dataclass(frozen=True)
class Target:
    """A server to reach: its name, role ('master'/'node'), the IPv4 we
    connect to, and its cluster address (what the API serves on: the
    address inside NOVA_NETWORK)."""
    name: str
    role: str
    address: str
    cluster_ip: str = ""
    gateway: str = ""         # jump host (the master's public address), when `address` is private


def known_hosts_path(s):
    return names.state_dir(s) / "known_hosts"


def ensure_state_dir(s):
    path = names.state_dir(s)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


class RecordNewHostKey(paramiko.MissingHostKeyPolicy):
    """Trust on first use, into the cluster's own known_hosts. Only called
    for a host with no recorded key: paramiko itself raises
    BadHostKeyException when a recorded key differs, before asking us."""

    def __init__(self, path):
        self.path = Path(path)

    def missing_host_key(self, client, hostname, key):
        with _file_lock:
            # Another thread (or run) may have recorded this host meanwhile.
            current = paramiko.HostKeys()
            if self.path.exists():
                current.load(str(self.path))
            known = current.lookup(hostname)
            if known is not None and key.get_name() in known:
                if known[key.get_name()] != key:
                    raise BadHostKeyException(hostname, key, known[key.get_name()])
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = self.path.open("a")
                try:
                    self.path.chmod(0o600)
                    fd.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
                finally:
                    fd.close()
        client.get_host_keys().add(hostname, key.get_name(), key)


def fabric_config(s):
    """Fabric config: SSH_CONFIG when set (only it, like `ssh -F`), else the
    usual ~/.ssh/config and /etc/ssh/ssh_config; the cluster key for every
    hop (a bastion in ProxyJump may still use the user's own keys)."""
    overrides = {
        "user": s.SSH_USER,
        # The key object itself, not key_filename: paramiko then reports a
        # refused login as such, not as a parse error of another key type.
        "connect_kwargs": {"pkey": load_key(s)},
        "timeouts": {"connect": CONNECT_TIMEOUT},
        "load_ssh_configs": True,
    }
    if s.SSH_CONFIG:
        if not Path(s.SSH_CONFIG).is_file():
            raise UserError(f"SSH_CONFIG={s.SSH_CONFIG}: no such file; fix the path or unset SSH_CONFIG")
        return fabric.Config(overrides=overrides, runtime_ssh_path=str(s.SSH_CONFIG))
    return fabric.Config(overrides=overrides)


def load_key(s):
    path = names.private_key_path(s)
    if not path.is_file():
        raise UserError(f"no cluster key {path}; run `inv keypair` (SSH_KEY_NAME={s.SSH_KEY_NAME})")
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise UserError(f"{path} is protected by a passphrase, which kube-rackspace does not ask for; "
                        "use a key without one (SSH_KEY_NAME)") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise UserError(f"cannot read the cluster key {path}: {exc}") from None


def connection(s, address, config=None, gateway=""):
    """An unopened Fabric connection to `address` that checks host keys
    against the cluster's known_hosts (Fabric's default would auto-add).
    With `gateway`, through that host as a jump host (SSH_CONFIG applies
    to the first hop, as `ssh -J` would have it)."""
    config = config or fabric_config(s)
    via = connection(s, gateway, config) if gateway else None
    conn = fabric.Connection(address, config=config, gateway=via)
    path = known_hosts_path(s)
    ensure_state_dir(s)
    if path.exists():
        conn.client.load_host_keys(str(path))
    conn.client.set_missing_host_key_policy(RecordNewHostKey(path))
    return conn


def close(conn):
    """Close a connection and its jump host's (Fabric leaves that open)."""
    conn.close()
    if isinstance(conn.gateway, fabric.Connection):
        conn.gateway.close()


def host_key_refusal(s, target_name, address):
    return HostKeyChanged(
        f"{target_name} ({address}) presented a host key other than the one recorded in "
        f"{known_hosts_path(s)}; if the server was rebuilt, delete its line from that file and re-run")


def open_connection(s, target, timeout, config=None, on_attempt=None):
    """Connect and log in, retrying until `timeout` seconds have passed:
    a booting server refuses connections, resets them, or does not yet
    know the key. A changed host key is final at once."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    config = config or fabric_config(s)
    while True:
        conn = connection(s, target.address, config, target.gateway)
        try:
            conn.open()
            return conn
        except BadHostKeyException as exc:
            close(conn)
            # Either hop may be the one whose key changed.
            hop = target.gateway if target.gateway and _key_host(exc) == target.gateway else target.address
            name = f"the jump host of {target.name}" if hop != target.address else target.name
            raise host_key_refusal(s, name, hop) from None
        except (paramiko.AuthenticationException,) as exc:
            last = f"login as {s.SSH_USER} with {names.private_key_path(s)} refused ({exc})"
        except (OSError, EOFError, paramiko.SSHException) as exc:
            last = _one_line(exc) or type(exc).__name__
        close(conn)
        if on_attempt:
            on_attempt(last)
        if time.monotonic() + RETRY_DELAY >= deadline:
            raise TimeoutError(f"no SSH login to {target.name} ({target.address}) within {timeout}s: {last}")
        time.sleep(RETRY_DELAY)


def _key_host(exc):
    return getattr(exc, "hostname", "") or ""


def _one_line(exc):
    text = str(exc).strip()
    return text.splitlines()[-1] if text else ""


# --- post-boot checks -------------------------------------------------------

@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    hint: str = ""       # layout.Check.hint of a failed check, for this server


@dataclass
class ServerResult:
    target: Target
    checks: list = field(default_factory=list)   # CheckResult, in order
    error: str = ""                              # could not even log in
    journal: tuple = ()                          # (what was run, its output) for the first failure
    planned: tuple = ()                          # names of every check it was to run

    @property
    def ok(self):
        return not self.error and all(c.ok for c in self.checks)

    def failures(self):
        if self.error:
            return [self.error]
        return [f"{c.name}: {c.detail}" if c.detail else c.name for c in self.checks if not c.ok]


def run(conn, command, timeout=COMMAND_TIMEOUT):
    """(exit status, stdout, stderr) of `command`, output captured."""
    try:
        result = conn.run(command, hide=True, warn=True, timeout=timeout, in_stream=False)
    except CommandTimedOut:
        return 124, "", f"timed out after {timeout}s"
    return result.exited, result.stdout, result.stderr


def sudo(s):
    # Flatcar's `core` needs sudo for root-only files and units; root does not.
    return s.SSH_USER != "root"


def _shell(s, argv):
    return shlex.join(("sudo", "-n", *argv) if sudo(s) else argv)


def nodes_ready(output, expected):
    """'' when every `expected` node is registered and Ready in `kubectl get
    nodes -o json` output, else one line saying which are not."""
    try:
        items = json.loads(output).get("items", [])
    except (ValueError, AttributeError):
        return NO_LIST
    ready = {}
    for item in items:
        name = (item.get("metadata") or {}).get("name", "")
        conditions = (item.get("status") or {}).get("conditions") or []
        ready[name] = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    missing = [n for n in expected if n not in ready]
    not_ready = [n for n in expected if n in ready and not ready[n]]
    parts = []
    if missing:
        parts.append(f"not registered: {', '.join(missing)}")
    if not_ready:
        parts.append(f"not Ready: {', '.join(not_ready)}")
    return "; ".join(parts)


def _pods(output):
    """The pods of `kubectl get pods -o json` output, or None."""
    try:
        items = json.loads(output).get("items")
    except (ValueError, AttributeError):
        return None
    return items if isinstance(items, list) else None


def pod_state(pod):
    """'' for a pod that is Running and Ready, else a word for what it is:
    its container's waiting or terminated reason (CrashLoopBackOff,
    ContainerCreating, Error...), Terminating, or its phase."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    phase = status.get("phase") or "Unknown"
    if phase == "Running" and ready:
        return ""
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = container.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason and reason != "Completed":
                return reason
    return phase if phase != "Running" else "not Ready"


def flannel_running(output, expected):
    """'' when flannel's pod is Running and Ready on every `expected` node in
    `kubectl get pods -o json` output, else one line naming the nodes where
    it is not, each with its pod's state (or "no pod")."""
    pods = _pods(output)
    if pods is None:
        return NO_PODS
    states = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        # A node is fine when one of its flannel pods is (a replaced one may linger).
        if node and states.get(node) != "":
            states[node] = pod_state(pod)
    bad = [f"{n} ({states[n]})" if n in states else f"{n} (no pod)" for n in expected if states.get(n) != ""]
    return f"flannel is not running on {', '.join(bad)}" if bad else ""


def coredns_ready(output):
    """'' when CoreDNS has pods and every one is Running and Ready in
    `kubectl get pods -o json` output, else one line naming the others and
    where they are."""
    pods = _pods(output)
    if pods is None:
        return NO_PODS
    if not pods:
        return "no CoreDNS pod"
    bad = []
    for pod in pods:
        state = pod_state(pod)
        if state:
            name = (pod.get("metadata") or {}).get("name", "?")
            node = (pod.get("spec") or {}).get("nodeName") or "no node"
            bad.append(f"{name} on {node} ({state})")
    return f"CoreDNS not ready: {', '.join(bad)}" if bad else ""


def dns_answered(output):
    """'' when `dig +short` printed an IPv4 address (the answer), else why
    not: dig's first ";;" line ("communications error to IP#53: timed
    out": nothing came back), or, when it printed nothing, that the answer
    had no address (NXDOMAIN or an empty record: CoreDNS answered, but not
    for the API server's name)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        try:
            ipaddress.IPv4Address(line)
            return ""
        except ValueError:
            continue
    errors = [line.lstrip("; ") for line in lines if line.startswith(";")]
    return errors[0] if errors else "the answer holds no address"


def outcome(check, status, out, err, expected):
    """'' when a check passed, else one line saying why not: for a command
    that failed, its last line of stderr (else stdout), except dig's first
    ";;" line (dig prints its errors on stdout, the first one names the
    server and what happened); for one that exited 0, read_output's."""
    if status != 0:
        fallback = _one_line(err) or _one_line(out) or f"exit status {status}"
        if check.expect == "dns":
            return dns_answered(out) if ";;" in out else fallback
        return fallback
    return read_output(check, out, expected)


def read_output(check, output, expected):
    """'' when a check whose command exited 0 printed what layout.Check
    .expect says it must, else one line saying what is wrong."""
    if check.expect == "nodes":
        return nodes_ready(output, expected)
    if check.expect == "flannel":
        return flannel_running(output, expected)
    if check.expect == "coredns":
        return coredns_ready(output)
    if check.expect == "dns":
        return dns_answered(output)
    if check.expect:
        raise ValueError(f"no reader for expect={check.expect!r}; layout.EXPECT is {layout.EXPECT}")
    return ""


def _unit_failed(s, conn, unit):
    # `systemctl is-active` prints "failed" for a unit that gave up: waiting
    # will not make it active, so report it at once instead of at the timeout.
    status, out, _err = run(conn, _shell(s, ("systemctl", "is-active", unit)))
    return out.strip() == "failed"


def check_server(s, target, checks, timeout, wait, expected_nodes=()):
    """Log in to one server and run its checks in order, retrying a check
    that does not pass yet until `timeout` (the server may still be
    booting). Never raises for the server's own faults: they go into the
    result."""
    result = ServerResult(target, planned=tuple(c.name for c in checks))
    deadline = time.monotonic() + timeout
    wait(target.name, "connecting")
    try:
        conn = open_connection(s, target, timeout,
                               on_attempt=lambda why: wait(target.name, f"connecting ({_short(why, 60)})"))
    except (HostKeyChanged, TimeoutError) as exc:
        result.error = str(exc)
        return result
    try:
        for check in checks:
            wait(target.name, check.name)
            while True:
                status, out, err = run(conn, check.command(sudo=sudo(s)))
                problem = outcome(check, status, out, err, expected_nodes)
                # kubectl that exits 0 always prints the list: no list now
                # means none later either.
                garbled = status == 0 and problem in (NO_LIST, NO_PODS)
                if not problem:
                    result.checks.append(CheckResult(check.name, True))
                    break
                wait(target.name, f"{check.name}: {_short(problem, 60)}")
                if (time.monotonic() + RETRY_DELAY >= deadline or status in NOT_RUNNABLE or garbled
                        or _unit_failed(s, conn, check.unit)):
                    result.checks.append(CheckResult(check.name, False, problem,
                                                     check.hint.replace("{server}", target.name)))
                    if not result.journal:
                        result.journal = diagnostics(s, conn, check)
                    return result
                time.sleep(RETRY_DELAY)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        result.error = f"lost the SSH connection: {_one_line(exc) or type(exc).__name__}"
    finally:
        close(conn)
    return result


def journal(s, conn, unit, lines=JOURNAL_LINES):
    status, out, err = run(conn, _shell(s, ("journalctl", "-u", unit, "-n", str(lines), "--no-pager")))
    return out.rstrip() if status == 0 else f"(journalctl failed: {_one_line(err) or status})"


def diagnostics(s, conn, check):
    """(heading, text) shown under a failed check: the output of its
    `diagnose` command when it has one, else its unit's journal."""
    if not check.diagnose:
        return f"last {JOURNAL_LINES} lines of journalctl -u {check.unit}", journal(s, conn, check.unit)
    command = check.diagnose_command(sudo=sudo(s))
    status, out, err = run(conn, command)
    text = (out.rstrip() + ("\n" + err.rstrip() if err.strip() else "")).strip()
    return shlex.join(check.diagnose), text if status == 0 else f"({text or 'no output'}; exit status {status})"


def cluster_dns(s, backend):
    """layout.ClusterDNS of these settings (None without cluster DNS);
    `backend` is the flannel backend the cloud kind put in the user data."""
    if not s.ENABLE_CLUSTER_DNS:
        return None
    return layout.ClusterDNS(str(s.DNS_SERVER_IP), s.DNS_DOMAIN, backend)


def check_all(s, targets, timeout=None, backend=None):
    """Check every server at once, one thread each, with layout's checks for
    its role; the master's node check waits for every server to be Ready,
    and its flannel check for flannel on every one. `backend`: the flannel
    backend in effect (default POD_NETWORK_BACKEND), named when pods cannot
    reach each other. Returns the ServerResults in `targets` order."""
    timeout = timeout or s.BOOT_TIMEOUT
    dns = cluster_dns(s, backend or s.POD_NETWORK_BACKEND)
    expected = [t.name for t in targets]
    states = {t.name: "waiting" for t in targets}
    lock = threading.Lock()
    with progress.waiting(f"post-boot checks of {len(targets)} servers", timeout) as w:
        def wait(name, state):
            # One short line: how many are done, and the first still waiting
            # (plain logs get a line per change, so keep the changes few).
            with lock:
                states[name] = state.split(":")[0]
                pending = [f"{n} ({st})" for n, st in states.items() if st not in ("ok", "failed")]
                done = len(states) - len(pending)
                more = f" +{len(pending) - 2}" if len(pending) > 2 else ""
                w.update(f"{done}/{len(states)} done" + (f"; {', '.join(pending[:2])}{more}" if pending else ""))

        def one(target):
            checks = layout.checks(target.role, target.cluster_ip, dns)
            result = check_server(s, target, checks, timeout, wait, expected)
            wait(target.name, "ok" if result.ok else "failed")
            return result

        with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
            results = list(pool.map(one, targets))
        w.update(f"{sum(r.ok for r in results)}/{len(results)} servers passed")
    return results


# --- the report -------------------------------------------------------------

def table_rows(results):
    """(header, rows): one row per server, one column per check name in the
    order first seen (planned or run: a check that a failure before it kept
    from running still has its column); cells 'ok', 'FAIL' or '-' (not run)."""
    columns = []
    for r in results:
        for name in [*r.planned, *(c.name for c in r.checks)]:
            if name not in columns:
                columns.append(name)
    header = ["server", "role", "address", "ssh"] + columns
    rows = []
    for r in results:
        by_name = {c.name: c for c in r.checks}
        cells = [r.target.name, r.target.role, r.target.address, "FAIL" if r.error else "ok"]
        for col in columns:
            c = by_name.get(col)
            cells.append("-" if c is None else ("ok" if c.ok else "FAIL"))
        rows.append(cells)
    return header, rows


def plain_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    return "\n".join(lines)


def print_table(header, rows, title=None):
    """Rich at a terminal, plain aligned text otherwise (logs stay greppable)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for h in header:
            table.add_column(h)
        for row in rows:
            table.add_row(*[_styled(c) for c in row])
        Console().print(table)
    else:
        if title:
            print(title)
        print(plain_table(header, rows))


def _styled(cell):
    return {"ok": "[green]ok[/green]", "FAIL": "[bold red]FAIL[/bold red]"}.get(cell, str(cell))


def report(results):
    """Print the table, then every failure with its journal lines; raise
    UserError naming every failing server (not just the first)."""
    header, rows = table_rows(results)
    print_table(header, rows, title="post-boot checks")
    failing = [r for r in results if not r.ok]
    for r in failing:
        for failure in r.failures():
            print(f"{r.target.name}: {failure}")
        for c in r.checks:
            if not c.ok and c.hint:
                print(c.hint)
        if r.journal:
            heading, text = r.journal
            print(f"--- {r.target.name}: {heading} ---")
            print(text)
    if failing:
        summary = "; ".join(f"{r.target.name} ({', '.join(_short(f) for f in r.failures())})" for r in failing)
        raise UserError(f"post-boot checks failed on {len(failing)} of {len(results)} servers: {summary}; "
                        "see above, then fix and re-run `inv up`")


def _short(text, limit=120):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."



def target(srv, cloud_network=None):
    """A Target. Its cluster_ip is the cloud kind's (kinds.Reach) when set,
    else the address inside `cloud_network` (NOVA_NETWORK), needed for the
    master's checks."""
    if srv.reach is not None:
        cluster_ip = srv.reach.cluster_ip
    else:
        cluster_ip = srv.ipv4_in(cloud_network) if cloud_network else None
    return Target(srv.name, servers.role_of(srv), srv.ssh_address or "", cluster_ip or "", srv.ssh_gateway or "")
