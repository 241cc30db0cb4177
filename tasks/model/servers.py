"""Pure decisions about the cluster's servers.

Given the settings and the servers a list request returned, decide which
servers to create, which to reuse, which to delete and create again, and
summarise a wait. No API calls here: services/compute.py talks to Nova, the
stage modules act on these plans.
"""

import ipaddress
from dataclasses import dataclass, field

from . import names

# The root disk every server needs, in GB as Nova counts a flavor's `disk`
# (GiB: nova/compute/api.py multiplies root_gb by units.Gi). Flatcar's
# OpenStack image (layout "vm", flatcar/scripts build_library/disk_layout.json
# and disk_util, as in stable 4593.2.5) is 12.3 GiB: 6.1 GiB of fixed
# partitions (EFI 1 GiB, USR-A and USR-B 2 GiB each, OEM 1 GiB, OEM-CONFIG
# 64 MiB) and a ROOT that grows to the rest of the disk at first boot.
# Kubernetes on ROOT at its peak, during the first boot: the release
# tarball (~0.4 GiB) and its unpacked server/bin (~1.2 GiB) until
# fetch-release.sh removes them, plus the images in containerd (compressed
# and unpacked: control plane, etcd, CoreDNS, flannel; ~1.5 GiB): ~3.1 GiB.
# The kubelet starts deleting images at 85 % use (imageGCHighThresholdPercent)
# and evicts pods under 10 % free: 3.1 / 0.85 = 3.7 GiB of ROOT just for
# the cluster itself, and room for the first workloads' images and logs
# (~5 GiB) brings ROOT to ~9 GiB: 6.1 + 9 = 15 GiB; 20, the usual flavor
# size at or above it (Flex's gp.0.1.* have 10 GB, gp.0.2.* 40 GB; the
# legacy general1-1 20 GB).
ROOT_DISK_GB = 20
# The smallest server each role boots on: (vCPUs, MiB of RAM, GB of disk).
# master: kubeadm init's preflight refuses fewer than 2 CPUs (NumCPUCheck)
# and less than 1700 MB of memory (MemCheck); both are fatal errors.
# node: kubeadm join checks neither. 1 vCPU and 1 GiB still hold the node's
# own daemons (kubelet, containerd, kube-proxy, flannel: some 300 MB) with
# room for a few pods; below that the kubelet evicts pods at once.
FLAVOR_MINIMUMS = {"master": (2, 1700, ROOT_DISK_GB), "node": (1, 1024, ROOT_DISK_GB)}
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
    # kinds.Reach, set by the cloud kind where Nova's addresses are not the
    # whole story (OpenStack: ports and floating IPs live in Neutron).
    reach: object = field(default=None, compare=False, repr=False)

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

    def ipv4_in(self, network):
        """The first IPv4 address inside `network` (an ipaddress network or
        CIDR text) on any network Nova lists: the Cloud Network's address is
        found by its CIDR (NOVA_NETWORK), whatever its label."""
        network = ipaddress.ip_network(network)
        for listed in self.addresses.values():
            for address in listed or []:
                try:
                    if address.get("version") == 4 and ipaddress.ip_address(address.get("addr")) in network:
                        return address["addr"]
                except ValueError:
                    continue
        return None

    @property
    def servicenet_ip(self):
        """ServiceNet (eth1): the release download (outbound only)."""
        return self.ipv4("private")

    @property
    def public_ip(self):
        """The public address: SSH and kubectl (legacy: PublicNet, eth0;
        OpenStack: the floating IP, if it has one)."""
        if self.reach is not None:
            return self.reach.public_ip or None
        return self.ipv4("public")

    @property
    def cluster_ip(self):
        """Where cluster traffic runs: the API server's advertised address,
        the kubelet's node IP (legacy: the Cloud Network; OpenStack: the
        port on the cluster's network). The cloud kind's reach() sets it:
        Nova's addresses alone do not say which network is the cluster's
        (that takes NOVA_NETWORK, see ipv4_in)."""
        if self.reach is not None:
            return self.reach.cluster_ip or None
        return None

    @property
    def ssh_address(self):
        """What SSH connects to (with ssh_gateway as jump host when set)."""
        if self.reach is not None:
            return self.reach.address or None
        return self.public_ip

    @property
    def ssh_gateway(self):
        return self.reach.gateway if self.reach is not None else ""


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


def node_index(srv):
    try:
        return int(srv.metadata.get(names.META_INDEX, "0"))
    except ValueError:
        return 0


def prune_order(surplus):
    """The extra nodes in the order `inv nodes --prune` removes them: the
    highest index first, so an interrupted prune leaves nodes 1..k."""
    return sorted(surplus, key=lambda srv: (-node_index(srv), srv.name))


def surplus_message(s, surplus):
    listed = ", ".join(srv.name for srv in prune_order(surplus))
    return (f"NUM_NODES={s.NUM_NODES}, but {len(surplus)} more node(s) exist: {listed}; left as they are "
            "(`inv nodes --prune` drains and removes them)")


def _number(flavor, key):
    try:
        return int(flavor.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _size(flavor):
    return f"{flavor.get('vcpus')} vCPU, {flavor.get('ram')} MiB, {_number(flavor, 'disk')} GB disk"


def minimum(role, image_min=(0, 0)):
    """(vCPUs, MiB, GB) a flavor needs for `role` booting an image whose
    (min_disk GB, min_ram MiB) are `image_min` (Nova's minDisk, minRam)."""
    cpus, ram, disk = FLAVOR_MINIMUMS[role]
    image_disk, image_ram = image_min
    return cpus, max(ram, int(image_ram or 0)), max(disk, int(image_disk or 0))


def _fits(flavor, need):
    """A disk of 0 never fits: such a flavor boots only from a volume,
    which this tool does not make (see flavor_problem)."""
    cpus, ram, disk = need
    return _number(flavor, "vcpus") >= cpus and _number(flavor, "ram") >= ram and _number(flavor, "disk") >= disk


def _offered(flavor, need):
    return _fits(flavor, need) and not flavor.get("OS-FLV-DISABLED:disabled")


def _smallest_key(flavor):
    return (_number(flavor, "ram"), _number(flavor, "vcpus"), _number(flavor, "disk"), str(flavor.get("name")),
            str(flavor.get("id")))


def flavor_problem(role, flavor, flavors, image_min=(0, 0)):
    """None when `flavor` (a Nova flavor dict with vcpus, ram and disk) is
    big enough for a server of `role` on an image with `image_min`, else
    one line naming the setting, the flavor, its size, the minimum and the
    smallest listed flavor that fits."""
    need = cpus, ram, disk = minimum(role, image_min)
    if _fits(flavor, need):
        return None
    family = str(flavor.get("id", "")).split("-")[0]
    fitting = sorted((f for f in flavors if _offered(f, need)),
                     key=lambda f: _smallest_key(f)[:2] + (str(f.get("id", "")).split("-")[0] != family,
                                                            _number(f, "disk"), str(f.get("id", ""))))
    hint = f"the smallest that fits is {fitting[0]['id']} ({fitting[0].get('name')}, {_size(fitting[0])})" \
        if fitting else "no listed flavor is that large"
    setting = f"{FLAVOR_SETTINGS[role]}={flavor.get('id')} ({flavor.get('name')})"
    if _number(flavor, "disk") == 0 and _number(flavor, "vcpus") >= cpus and _number(flavor, "ram") >= ram:
        # Nova boots a disk-0 flavor only from a volume (it refuses an
        # image-backed one: BootFromVolumeRequiredForZeroDiskFlavor).
        return (f"{setting} has no root disk (disk 0: it boots only from a volume, which this tool does not "
                f"create); a server needs a flavor with at least {disk} GB of disk: {hint}")
    why = "kubeadm init's preflight needs" if role == "master" else "a node needs"
    disk_why = f"{disk} GB of disk" + (" (the image's min_disk)" if disk > FLAVOR_MINIMUMS[role][2] else "")
    return f"{setting} has {_size(flavor)}; {why} at least {cpus} vCPU, {ram} MiB and {disk_why}: {hint}"


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


def smallest_flavor(role, flavors, image_min=(0, 0)):
    """Pure: the smallest flavor (least RAM, then vCPUs, then disk) in
    `flavors` (Nova's /flavors/detail) that meets the role's minimum on an
    image with `image_min` (see minimum), or None. Flavor names differ per
    region (Flex: gp.5.2.4 in one, gp.8.2.4 in another), sizes do not."""
    need = minimum(role, image_min)
    fitting = [f for f in flavors if _offered(f, need)]
    return min(fitting, key=_smallest_key) if fitting else None


# --- which servers ----------------------------------------------------------

def cluster_servers(s, listed):
    """Our live servers from a list response, one per name (the best if
    Nova has duplicates), the master first, then nodes by index."""
    best = {}
    # The one `up` would reuse comes first.
    for srv in sorted(listed, key=best_first):
        if srv.status in GONE or not names.is_cluster_server(s, srv.name, srv.metadata):
            continue
        best.setdefault(srv.name, srv)
    return sorted(best.values(), key=_order)


def master_of(found):
    """The master among `found` (cluster_servers), or None."""
    return next((srv for srv in found if role_of(srv) == "master"), None)


def role_of(srv):
    return srv.metadata.get(names.META_ROLE, "")


def _order(srv):
    return (0 if role_of(srv) == "master" else 1, node_index(srv), srv.name)
