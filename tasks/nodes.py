"""inv nodes: boot INSTANCE_PREFIX-node-1 .. -node-NUM_NODES at once and wait
until the whole cluster (master and nodes) is ACTIVE.

Also the pieces `inv master` and `inv up` share: the resolved boot target
(image, flavors, networks, keypair), the create request of one server, and
`wait_active`, which polls with ONE list request per poll for the whole
cluster however many servers there are.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from invoke import task

from . import bootdata, names, progress, servers, settings
from .cloud import Cloud
from .errors import CloudError, UserError


@dataclass(frozen=True)
class Target:
    """Where and how servers boot; resolved once per run."""
    network_id: str       # the Cloud Network (eth2)
    key_name: str

    def network_ids(self):
        from .cloudservers import PUBLICNET, SERVICENET

        # NIC order is interface order: eth0 PublicNet, eth1 ServiceNet, eth2 ours.
        return (PUBLICNET, SERVICENET, self.network_id)


def create_request(s, nova, target, want, user_data):
    """The full create request of one wanted server (pure but for the
    image/flavor look-ups, which the CloudServers object caches)."""
    from .cloudservers import CreateRequest

    return CreateRequest(
        name=want.name, image_id=nova.image_id(s.KUBE_IMAGE),
        flavor_id=nova.flavor_id(want.role, s[servers.FLAVOR_SETTINGS[want.role]]), key_name=target.key_name,
        network_ids=target.network_ids(), metadata=servers.metadata(s, want), user_data=user_data)


def delete_failed(nova, plan):
    """ERROR servers (and duplicates) go before their replacements are made."""
    for srv in plan.delete:
        why = f"in {srv.status}" + (f" ({srv.fault})" if srv.fault else "") if srv.status in servers.FAILED \
            else "a duplicate"
        progress.info(f"deleting {srv.name} ({srv.id}): {why}")
        nova.delete_server(srv)
    return {srv.id for srv in plan.delete}


def check_plan(plan):
    if plan.conflicts:
        raise CloudError(servers.conflict_message(plan.conflicts))


@dataclass
class Booting:
    """What `ensure` started: names now in Nova, and creates that failed."""
    names: list = field(default_factory=list)
    failures: list = field(default_factory=list)   # one line each


def ensure(s, cloud, release, target, master_ip):
    """Create the missing nodes (ERROR ones again), CREATE_CONCURRENCY at a
    time; returns Booting. Does not wait for ACTIVE: see wait_active."""
    from .cloudservers import for_cloud

    nova = for_cloud(cloud)
    plan = servers.plan(s, "node", nova.list_servers(s.INSTANCE_PREFIX))
    check_plan(plan)
    if plan.surplus:
        progress.info(f"NUM_NODES={s.NUM_NODES}: leaving {', '.join(srv.name for srv in plan.surplus)} "
                      "as they are (inv down removes the whole cluster)")
    booting = Booting(names=[want.name for want, _ in plan.reuse])
    if plan.reuse:
        progress.info(f"{len(plan.reuse)} node(s) exist; reusing them")
    if not plan.create:
        delete_failed(nova, plan)   # duplicates only: an ERROR server is always replaced
        return booting
    # Everything that can fail on a setting before anything is deleted or
    # created, once, not once per thread: image, flavor, the shared facts.
    nova.image_id(s.KUBE_IMAGE)
    nova.flavor_id("node", s.KUBE_NODE_FLAVOR)
    boot = bootdata.BootData(s, release)
    boot.base_facts()
    replaced = delete_failed(nova, plan)
    lock = threading.Lock()
    progress.info(f"creating {len(plan.create)} node(s), {min(s.CREATE_CONCURRENCY, len(plan.create))} at a time")

    def create(want):
        # Rendered in the worker, so the first creates start at once.
        request = create_request(s, nova, target, want, boot.user_data(want.role, want.index, master_ip))
        try:
            server_id = nova.create_server(s, request, ignore_ids=replaced)
        except UserError as exc:
            with lock:
                booting.failures.append(exc.reason)
            return
        with lock:
            booting.names.append(request.name)
        progress.info(f"created {request.name} ({server_id})")

    with ThreadPoolExecutor(max_workers=s.CREATE_CONCURRENCY, thread_name_prefix="create") as pool:
        list(pool.map(create, plan.create))
    order = {want.name: want.index for want in servers.wanted(s, "node")}
    booting.names.sort(key=order.get)
    return booting


def wait_active(s, cloud, wanted_names, failures=()):
    """Wait until every server in `wanted_names` is ACTIVE; one list request
    per poll for all of them. Returns {name: Server}. Raises one line with
    every problem: `failures` from earlier steps, servers in ERROR (with
    Nova's fault message) and, after BOOT_TIMEOUT, every server not ACTIVE."""
    from .cloudservers import for_cloud

    nova = for_cloud(cloud)
    intervals = servers.poll_intervals()
    wanted_names = list(wanted_names)
    state = None
    if wanted_names:
        with progress.waiting(f"{len(wanted_names)} server(s) ACTIVE", s.BOOT_TIMEOUT) as wait:
            while True:
                listed = list_servers_through_outages(nova, s, wait)
                if listed is not None:
                    state = servers.wait_state(s, wanted_names, listed)
                    wait.update(state.line())
                    if state.done:
                        break
                if wait.expired:
                    break
                time.sleep(max(0.0, min(next(intervals), s.BOOT_TIMEOUT - wait.elapsed)))
    problems = list(failures)
    if state is None and wanted_names:
        problems.append(f"BOOT_TIMEOUT ({s.BOOT_TIMEOUT}s) ran out while Cloud Servers was failing: {wait.state}")
    if state is not None and state.failed:
        problems.append(servers.failed_message(state.failed) + " (the next run deletes and recreates it)")
    if state is not None and not state.done:
        problems.append(servers.timeout_message(s.BOOT_TIMEOUT, state.pending))
    if problems:
        raise CloudError("; ".join(problems))
    return state.servers if state else {}


def list_servers_through_outages(nova, s, wait):
    """One list request; when Nova keeps failing after its retries, show it
    in the wait and return None, so the wait polls on until its timeout."""
    from .cloudservers import Unavailable

    try:
        return nova.list_servers(s.INSTANCE_PREFIX)
    except Unavailable as exc:
        wait.update(f"Cloud Servers failing: {exc.reason}")
        return None


def find_master(s, cloud):
    """The existing master with its ServiceNet address, for `inv nodes` alone."""
    from .cloudservers import for_cloud

    plan = servers.plan(s, "master", for_cloud(cloud).list_servers(s.INSTANCE_PREFIX))
    check_plan(plan)
    if not plan.reuse:
        raise UserError(f"no master {names.master_name(s)} (or it is in ERROR): run `inv master` first")
    master = plan.reuse[0][1]
    if not master.servicenet_ip:
        raise UserError(f"{master.name} has no ServiceNet address yet ({master.status}): "
                        "run `inv master`, which waits for it")
    return master


def prepare(s, cloud):
    """Network and keypair, as `inv master` and `inv nodes` need them alone."""
    from . import keypair, network

    return Target(network_id=network.ensure(s, cloud), key_name=keypair.ensure(s, cloud))


@task(help={"num_nodes": "number of nodes (NUM_NODES); raise it and re-run to add nodes"})
def nodes(c, num_nodes=None):
    """Boot the missing nodes and wait until master and nodes are ACTIVE."""
    s = settings.load(flags={"NUM_NODES": num_nodes})
    cloud = Cloud(s)
    target = prepare(s, cloud)
    master = find_master(s, cloud)
    booting = ensure(s, cloud, bootdata.lazy_release(s, cloud), target, master.servicenet_ip)
    ready = wait_active(s, cloud, [master.name] + booting.names, booting.failures)
    for name, srv in ready.items():
        print(f"{name}\t{srv.status}\t{srv.public_ip or ''}\t{srv.servicenet_ip or ''}")
