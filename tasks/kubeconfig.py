"""inv kubeconfig: the cluster's admin kubeconfig, in the state dir and
merged into yours (steps/kubeconfig.py)."""

from invoke import task

from .model import names, servers, settings
from .services.session import Cloud
from .steps import cluster, lock
from .steps import kubeconfig as kubeconfigs
from .support.errors import UserError


@task(help={"path": "merge into this file instead of KUBECONFIG_PATH"})
@lock.writer
def kubeconfig(c, path=None):
    """Write the cluster's kubeconfig and merge it into yours (context rackspace_INSTANCE_PREFIX)."""
    s = settings.load()
    master = servers.master_of(cluster.find_cluster(s, Cloud(s)))
    if master is None:
        raise UserError(f"no cluster named {s.INSTANCE_PREFIX} (no master); run `inv up`")
    state, target = kubeconfigs.write_for(s, master, path)
    print(f"wrote {state}; merged context {names.kube_context(s)} into {target}")
