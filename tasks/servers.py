"""Pure decisions about the cluster's servers.

Given the settings and the servers a list request returned, decide which
servers to create, which to reuse, which to delete and create again, and
summarise a wait. No API calls here: cloudservers.py talks to Nova, the
stage modules act on these plans.
"""

from dataclasses import dataclass, field

from . import names

# The smallest server each role boots on: (vCPUs, MiB of RAM).
# master: kubeadm init's preflight refuses fewer than 2 CPUs (NumCPUCheck)
# and less than 1700 MB of memory (MemCheck); both are fatal errors.
# node: kubeadm join checks neither. 1 vCPU and 1 GiB still hold the node's
# own daemons (kubelet, containerd, kube-proxy, flannel: some 300 MB) with
# room for a few pods; below that the kubelet evicts pods at once.
FLAVOR_MINIMUMS = {"master": (2, 1700), "node": (1, 1024)}
FLAVOR_SETTINGS = {"master": "KUBE_MASTER_FLAVOR", "node": "KUBE_NODE_FLAVOR"}

# Nova statuses after which a server will not become ACTIVE by itself.
FAILED = frozenset({"ERROR"})
GONE = frozenset({"DELETED", "SOFT_DELETED"})


@dataclass(frozen=True)
class Server:
    """What we need of a Nova server (from GET /servers/detail)."""
    id: str
    name: str
    status: str
    metadata: dict = field(default_factory=dict)
    addresses: dict = field(default_factory=dict)
    fault: str = ""
    created: str = ""

    @classmethod
    def from_api(cls, d):
        fault = d.get("fault") or {}
        return cls(id=d["id"], name=d["name"], status=(d.get("status") or "").upper(),
                   metadata=dict(d.get("metadata") or {}), addresses=dict(d.get("addresses") or {}),
                   fault=(fault.get("message") or "") if isinstance(fault, dict) else str(fault),
                   created=d.get("created") or "")

    def ipv4(self, label):
        for address in self.addresses.get(label) or []:
            if address.get("version") == 4 and address.get("addr"):
                return address["addr"]
        return None

    @property
    def servicenet_ip(self):
        """ServiceNet (eth1): cluster traffic."""
        return self.ipv4("private")

    @property
    def public_ip(self):
        """PublicNet (eth0): SSH and kubectl."""
        return self.ipv4("public")


@dataclass(frozen=True)
class Wanted:
    """A server the settings call for."""
    name: str
    role: str        # "master" or "node"
    index: int       # 0 for the master, 1..NUM_NODES for nodes


def wanted(s, role):
    if role == "master":
        return [Wanted(names.master_name(s), "master", 0)]
    return [Wanted(names.node_name(s, i), "node", i) for i in range(1, s.NUM_NODES + 1)]


def metadata(s, want):
    return names.server_metadata(s, want.role, want.index)


@dataclass
class Plan:
    create: list = field(default_factory=list)     # [Wanted]
    reuse: list = field(default_factory=list)      # [(Wanted, Server)]
    delete: list = field(default_factory=list)     # [Server]: ERROR ones and duplicates
    conflicts: list = field(default_factory=list)  # [Server] named like ours, not ours
    surplus: list = field(default_factory=list)    # [Server] ours, index above NUM_NODES


_RANK = {"ACTIVE": 0}


def _marks(server, want):
    # Role and index in the metadata must agree with the name too.
    return (server.metadata.get(names.META_ROLE) == want.role
            and server.metadata.get(names.META_INDEX) == str(want.index))


def best_first(server):
    # ACTIVE before anything still building, ERROR last; then the oldest.
    rank = 2 if server.status in FAILED else _RANK.get(server.status, 1)
    return (rank, server.created, server.id)


def plan(s, role, existing):
    """Decide per wanted server of `role` ('master' or 'node'):

    - none of ours with its name: create it;
    - ours (name and metadata) and not in ERROR: reuse it (the best if there
      are several, the others are deleted: a duplicate is never kept);
    - ours in ERROR only: delete it and create it again;
    - same name, not our metadata: a conflict (never touched).

    Servers of other clusters are ignored; our nodes above NUM_NODES are
    reported as surplus and left alone."""
    result = Plan()
    live = [srv for srv in existing if srv.status not in GONE]
    ours = [srv for srv in live if names.is_cluster_server(s, srv.name, srv.metadata)]
    for want in wanted(s, role):
        same_name = [srv for srv in live if srv.name == want.name]
        mine = sorted((srv for srv in same_name if srv in ours and _marks(srv, want)), key=best_first)
        conflicts = [srv for srv in same_name if srv not in mine]
        if conflicts:
            result.conflicts.extend(conflicts)
            continue
        if mine and mine[0].status not in FAILED:
            result.reuse.append((want, mine[0]))
            result.delete.extend(mine[1:])
        else:
            result.delete.extend(mine)
            result.create.append(want)
    if role == "node":
        names_wanted = {w.name for w in wanted(s, role)}
        result.surplus = sorted(
            (srv for srv in ours if srv.metadata.get(names.META_ROLE) == "node" and srv.name not in names_wanted),
            key=lambda srv: srv.name)
    return result


def _size(flavor):
    return f"{flavor.get('vcpus')} vCPU, {flavor.get('ram')} MiB"


def _fits(flavor, minimum):
    cpus, ram = minimum
    try:
        return int(flavor.get("vcpus") or 0) >= cpus and int(flavor.get("ram") or 0) >= ram
    except (TypeError, ValueError):
        return False


def flavor_problem(role, flavor, flavors):
    """None when `flavor` (a Nova flavor dict with vcpus and ram) is big
    enough for a server of `role`, else one line naming the setting, the
    flavor, its size, the minimum and the smallest listed flavor that fits."""
    cpus, ram = minimum = FLAVOR_MINIMUMS[role]
    if _fits(flavor, minimum):
        return None
    family = str(flavor.get("id", "")).split("-")[0]
    fitting = sorted((f for f in flavors if _fits(f, minimum)),
                     key=lambda f: (int(f["ram"]), int(f["vcpus"]), str(f.get("id", "")).split("-")[0] != family,
                                    str(f.get("id", ""))))
    hint = f"the smallest that fits is {fitting[0]['id']} ({fitting[0].get('name')}, {_size(fitting[0])})" \
        if fitting else "no listed flavor is that large"
    why = "kubeadm init's preflight needs" if role == "master" else "a node needs"
    return (f"{FLAVOR_SETTINGS[role]}={flavor.get('id')} ({flavor.get('name')}) has {_size(flavor)}; "
            f"{why} at least {cpus} vCPU and {ram} MiB: {hint}")


def conflict_message(conflicts):
    listed = ", ".join(f"{srv.name} (id {srv.id})" for srv in conflicts)
    return (f"server name taken by a server this cluster did not create: {listed}; "
            "rename or delete it, or pick another INSTANCE_PREFIX")


@dataclass(frozen=True)
class WaitState:
    active: list     # names ACTIVE
    failed: list     # [(name, status, fault)]
    pending: list    # [(name, status)]: status "missing" when not listed
    servers: dict = field(default_factory=dict)   # name -> Server, those listed

    @property
    def done(self):
        return not self.pending

    def line(self):
        """Short progress line: counts and the first few still waiting."""
        total = len(self.active) + len(self.failed) + len(self.pending)
        text = f"{len(self.active)}/{total} ACTIVE"
        if self.failed:
            text += f", {len(self.failed)} ERROR"
        if self.pending:
            shown = ", ".join(f"{n} {st}" for n, st in self.pending[:3])
            more = f" +{len(self.pending) - 3}" if len(self.pending) > 3 else ""
            text += f"; waiting: {shown}{more}"
        return text


def wait_state(s, names_wanted, listed):
    """Where a wait for `names_wanted` to be ACTIVE stands, from one list
    response. Only our servers count; an ERROR server ends its own wait."""
    by_name = {}
    for srv in sorted(listed, key=best_first):
        if srv.status in GONE or not names.is_cluster_server(s, srv.name, srv.metadata):
            continue
        by_name.setdefault(srv.name, srv)
    active, failed, pending = [], [], []
    for name in names_wanted:
        srv = by_name.get(name)
        if srv is None:
            pending.append((name, "missing"))
        elif srv.status == "ACTIVE":
            active.append(name)
        elif srv.status in FAILED:
            failed.append((name, srv.status, srv.fault))
        else:
            pending.append((name, srv.status))
    return WaitState(active, failed, pending, {n: by_name[n] for n in names_wanted if n in by_name})


def failed_message(failed):
    return "; ".join(f"{name} went to {status}: {fault or 'Nova gave no fault message'}"
                     for name, status, fault in failed)


def timeout_message(timeout, pending):
    listed = ", ".join(f"{name} ({status})" for name, status in pending)
    return (f"BOOT_TIMEOUT ({timeout}s) ran out; not ACTIVE: {listed}. "
            "Re-run to wait again, or raise BOOT_TIMEOUT")


def poll_intervals(first=1.0, longest=3.0):
    """Seconds between polls: short at first (Nova often finishes quickly),
    then a few seconds, one list request per poll whatever the cluster size."""
    interval = first
    while True:
        yield interval
        interval = min(longest, interval + 0.5)
