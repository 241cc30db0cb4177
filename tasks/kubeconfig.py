"""inv kubeconfig: the cluster's admin kubeconfig, in the state dir and
merged into yours (steps/kubeconfig.py)."""

from invoke import task

from .support import lazy
from .model import names
from .steps import lock
from .support.errors import UserError

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
cluster = lazy.module("tasks.steps.cluster")
kubeconfigs = lazy.module("tasks.steps.kubeconfig")
servers = lazy.module("tasks.model.servers")
settings = lazy.module("tasks.model.settings")


@task(help={"path": "merge into this file instead of KUBECONFIG_PATH"})
@lock.writer
def kubeconfig(c, path=None):
    """Write the cluster's kubeconfig and merge it into yours (context rackspace_INSTANCE_PREFIX)."""
    s = settings.load()
    master = servers.master_of(cluster.find_cluster(s, _cloud.Cloud(s)))
    if master is None:
        raise UserError(f"no cluster named {s.INSTANCE_PREFIX} (no master); run `inv up`")
    state, target = kubeconfigs.write_for(s, master, path)
    print(f"wrote {state}; merged context {names.kube_context(s)} into {target}")
