"""inv nodes: boot INSTANCE_PREFIX-node-1 .. -node-NUM_NODES at once and wait
until the whole cluster (master and nodes) is ACTIVE.

Also the pieces `inv master` and `inv up` share: the resolved boot target
(kinds.Target: networks, keypair), the create request of one server, and
`wait_active`, which polls with ONE list request per poll for the whole
cluster however many servers there are.
"""

import threading
import time
from dataclasses import dataclass, field

from invoke import task

from . import lazy, lock, names, progress
from .errors import CloudError, UserError

# Loaded when a task runs, not by `inv --list` (see tasks/lazy.py).
futures = lazy.module("concurrent.futures")
_cloud = lazy.module("tasks.cloud")
bootdata = lazy.module("tasks.bootdata")
kinds = lazy.module("tasks.kinds")
servers = lazy.module("tasks.servers")
settings = lazy.module("tasks.settings")
tokens = lazy.module("tasks.tokens")


def create_request(s, nova, target, want, user_data, attach):
    """The full create request of one wanted server (pure but for the
    image/flavor look-ups, which the CloudServers object caches); its NICs
    are the cloud kind's (kinds.Attach)."""
    from .cloudservers import CreateRequest

    return CreateRequest(
        name=want.name, image_id=nova.image_id(s.KUBE_IMAGE),
        flavor_id=nova.flavor_id(want.role, target.flavor(s, want.role)), key_name=target.key_name,
        nics=attach.nics, metadata=servers.metadata(s, want), user_data=user_data)


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


def ensure(s, cloud, release, target, master_ip, pruning=False):
    """Create the missing nodes (ERROR ones again), CREATE_CONCURRENCY at a
    time; returns Booting. Does not wait for ACTIVE: see wait_active."""
    from .cloudservers import for_cloud

    nova = for_cloud(cloud)
    listed = nova.list_servers(s.INSTANCE_PREFIX)
    plan = servers.plan(s, "node", listed)
    check_plan(plan)
    if plan.surplus and not pruning:
        progress.info(servers.surplus_message(s, plan.surplus))
    booting = Booting(names=[want.name for want, _ in plan.reuse])
    if plan.reuse:
        progress.info(f"{len(plan.reuse)} node(s) exist; reusing them")
    if not plan.create:
        delete_failed(nova, plan)   # duplicates only: an ERROR server is always replaced
        return booting
    # Everything that can fail on a setting before anything is deleted or
    # created, once, not once per thread: image, flavor, the shared facts.
    nova.image_id(s.KUBE_IMAGE)
    nova.flavor_id("node", target.flavor(s, "node"))
    # The new nodes join with a token the cluster knows for long enough.
    tokens.ensure_fresh(s, kinds.of(cloud).reach(s, cloud, listed))
    boot = bootdata.BootData(s, release, kinds.of(cloud).NAME)
    boot.base_facts()
    replaced = delete_failed(nova, plan)
    lock = threading.Lock()
    progress.info(f"creating {len(plan.create)} node(s), {min(s.CREATE_CONCURRENCY, len(plan.create))} at a time")

    kind = kinds.of(cloud)

    def create(want):
        # Rendered in the worker, so the first creates start at once.
        try:
            attach = kind.attach(s, cloud, target, want)
            request = create_request(s, nova, target, want,
                                     boot.user_data(want.role, want.index, master_ip, attach), attach)
            server_id = nova.create_server(s, request, ignore_ids=replaced)
        except UserError as exc:
            with lock:
                booting.failures.append(exc.reason)
            return
        with lock:
            booting.names.append(request.name)
        progress.info(f"created {request.name} ({server_id})")

    with futures.ThreadPoolExecutor(max_workers=s.CREATE_CONCURRENCY, thread_name_prefix="create") as pool:
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
    """The existing master with its cluster address, for `inv nodes` alone."""
    from .cloudservers import for_cloud

    plan = servers.plan(s, "master", for_cloud(cloud).list_servers(s.INSTANCE_PREFIX))
    check_plan(plan)
    if not plan.reuse:
        raise UserError(f"no master {names.master_name(s)} (or it is in ERROR): run `inv master` first")
    master = kinds.of(cloud).reach(s, cloud, [plan.reuse[0][1]])[0]
    if not master.cluster_ip:
        raise UserError(f"{master.name} has no cluster address in NOVA_NETWORK {s.NOVA_NETWORK} yet ({master.status}): "
                        "run `inv master`, which waits for it")
    return master


def drain_outcome(rc, stderr):
    """Pure: 'ok', 'gone' (the Node no longer exists: an earlier prune got
    that far) or 'failed', from one kubectl command's exit and stderr."""
    if rc == 0:
        return "ok"
    if "(NotFound)" in stderr and "not found" in stderr:
        return "gone"
    return "failed"


def drain(s, conn, name):
    """Cordon, drain and delete the Node `name` through the master. Raises
    one line when the drain fails: the server is then left in place."""
    from . import layout, remote

    for step, argv in layout.drain_commands(name, s.DRAIN_TIMEOUT):
        rc, _, err = remote.run(conn, remote._shell(s, argv), timeout=s.DRAIN_TIMEOUT + 60)
        outcome = drain_outcome(rc, err)
        if outcome == "gone":
            continue    # the delete step runs anyway (--ignore-not-found)
        if outcome == "failed":
            reason = next((line for line in reversed(err.strip().splitlines()) if line.strip()), f"exit {rc}")
            raise CloudError(
                f"draining {name} failed, so its server stays (cordoned): {reason[:300]}; "
                f"let its pods move (or raise DRAIN_TIMEOUT={s.DRAIN_TIMEOUT}) and re-run `inv nodes --prune`")


def prune_surplus(s, cloud, master):
    """Remove our nodes above NUM_NODES, highest index first: each is
    drained through the master, then its server is deleted and the ports
    left on the cluster's network for it. Re-running after an interruption
    finishes the job. Returns lines of what was removed."""
    from . import remote
    from .cloudnetworks import CloudNetworks
    from .cloudservers import for_cloud
    from .down import wait_gone

    nova = for_cloud(cloud)
    plan = servers.plan(s, "node", nova.list_servers(s.INSTANCE_PREFIX))
    doomed = servers.prune_order(plan.surplus)
    if not doomed:
        return []
    progress.info(f"NUM_NODES={s.NUM_NODES}: removing {', '.join(srv.name for srv in doomed)}")
    api = CloudNetworks(cloud)
    removed = []
    with remote.open_connection(s, remote.target(master), s.BOOT_TIMEOUT) as conn:
        for srv in doomed:
            if srv.status == "ACTIVE":
                drain(s, conn, srv.name)
                progress.info(f"drained {srv.name}; deleting its server {srv.id}")
            # A node that never became ACTIVE never joined: nothing to drain.
            nova.delete_server(srv)
            wait_gone(s, nova, [srv])
            for network in api.networks(names.network_label(s)):
                for port in api.ports(network["id"]):
                    if port.get("device_id") == srv.id and api.delete_port(port["id"]):
                        removed.append(f"port {port['id']} of {srv.name}")
            removed.append(f"node {srv.name} ({srv.id})")
    return removed


@task(help={"num_nodes": "number of nodes (NUM_NODES); raise it and re-run to add nodes",
            "prune": "drain and remove the nodes above NUM_NODES (highest index first)"})
@lock.writer
def nodes(c, num_nodes=None, prune=False):
    """Boot the missing nodes and wait until master and nodes are ACTIVE; --prune removes extra ones."""
    s = settings.load(flags={"NUM_NODES": num_nodes})
    cloud = _cloud.Cloud(s)
    target = kinds.prepare(s, cloud)
    master = find_master(s, cloud)
    booting = ensure(s, cloud, bootdata.lazy_release(s, cloud), target, master.cluster_ip, pruning=prune)
    ready = wait_active(s, cloud, [master.name] + booting.names, booting.failures)
    if prune:
        for line in prune_surplus(s, cloud, kinds.of(cloud).reach(s, cloud, [ready[master.name]])[0]):
            print(f"removed {line}")
    for srv in kinds.of(cloud).reach(s, cloud, ready.values()):
        print(f"{srv.name}\t{srv.status}\t{srv.public_ip or ''}\t{srv.cluster_ip or ''}")
