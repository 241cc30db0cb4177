"""inv network: find or create the cluster's network as the cloud kind
makes it (the kind's prepare_network, see kinds.py), the very one `inv up` makes. Legacy:
the Cloud Network that pod traffic crosses (eth2 on every server),
labelled INSTANCE_PREFIX-pool-net unless NOVA_NETWORK_LABEL says otherwise,
with one subnet of NOVA_NETWORK. OpenStack: that network and subnet,
tagged as this cluster's, with the router to EXTERNAL_NETWORK and the
security group."""

from invoke import task

from .support import lazy
from .steps import lock

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
kinds = lazy.module("tasks.kinds")
settings = lazy.module("tasks.model.settings")


@task
@lock.writer
def network(c):
    """Find or create the cluster's network (on OpenStack with its router and security group)."""
    s = settings.load()
    cloud = _cloud.Cloud(s)
    print(kinds.of(cloud).prepare_network(s, cloud).network_id)
