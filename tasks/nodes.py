"""inv nodes: boot INSTANCE_PREFIX-node-1 .. -node-NUM_NODES at once and wait
until the whole cluster is ACTIVE; the work is steps/nodes.py."""

from invoke import task

from .support import lazy
from .steps import lock

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
boot = lazy.module("tasks.steps.boot")
bootdata = lazy.module("tasks.steps.bootdata")
kinds = lazy.module("tasks.kinds")
settings = lazy.module("tasks.model.settings")
work = lazy.module("tasks.steps.nodes")


@task(help={"num_nodes": "number of nodes (NUM_NODES); raise it and re-run to add nodes",
            "prune": "drain and remove the nodes above NUM_NODES (highest index first)"})
@lock.writer
def nodes(c, num_nodes=None, prune=False):
    """Boot the missing nodes and wait until master and nodes are ACTIVE; --prune removes extra ones."""
    s = settings.load(flags={"NUM_NODES": num_nodes})
    cloud = _cloud.Cloud(s)
    target = boot.prepare(s, cloud)
    master = work.find_master(s, cloud)
    booting = work.ensure(s, cloud, bootdata.lazy_release(s, cloud), target, master.cluster_ip, pruning=prune)
    ready = work.wait_active(s, cloud, [master.name] + booting.names, booting.failures)
    if prune:
        for line in work.prune_surplus(s, cloud, kinds.of(cloud).reach(s, cloud, [ready[master.name]])[0]):
            print(f"removed {line}")
    for srv in kinds.of(cloud).reach(s, cloud, ready.values()):
        print(f"{srv.name}\t{srv.status}\t{srv.public_ip or ''}\t{srv.cluster_ip or ''}")
