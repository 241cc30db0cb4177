"""Boot INSTANCE_PREFIX-node-1 .. -node-NUM_NODES at once and wait until the
whole cluster (master and nodes) is ACTIVE (`inv nodes`, `inv up`).

`wait_active` polls with ONE list request per poll for the whole cluster
however many servers there are. What the master's step shares with this one
is in steps/boot.py.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import kinds
from ..model import names, servers
from ..support import progress
from ..support.errors import CloudError, UserError
from . import bootdata, tokens
from .boot import check_plan, create_request, delete_failed, image_id, list_servers_through_outages


@dataclass
class Booting:
    """What `ensure` started: names now in Nova, and creates that failed."""
    names: list = field(default_factory=list)
    failures: list = field(default_factory=list)   # one line each


def ensure(s, cloud, release, target, master_ip, pruning=False):
    """Create the missing nodes (ERROR ones again), CREATE_CONCURRENCY at a
    time; returns Booting. Does not wait for ACTIVE: see wait_active."""

    nova = cloud.compute
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
    image_id(s, cloud, nova)
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

    nova = cloud.compute
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


def find_master(s, cloud):
    """The existing master with its cluster address, for `inv nodes` alone."""

    plan = servers.plan(s, "master", cloud.compute.list_servers(s.INSTANCE_PREFIX))
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
    from ..model import layout
    from ..services import ssh as remote

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
    from ..services import ssh as remote
    from .teardown import wait_gone

    nova = cloud.compute
    plan = servers.plan(s, "node", nova.list_servers(s.INSTANCE_PREFIX))
    doomed = servers.prune_order(plan.surplus)
    if not doomed:
        return []
    progress.info(f"NUM_NODES={s.NUM_NODES}: removing {', '.join(srv.name for srv in doomed)}")
    api = cloud.network
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
