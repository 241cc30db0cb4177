"""inv master: boot INSTANCE_PREFIX-master (or reuse it) and wait only for
its cluster address; the work is steps/master.py."""

from invoke import task

from .support import lazy
from .steps import lock

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
boot = lazy.module("tasks.steps.boot")
bootdata = lazy.module("tasks.steps.bootdata")
masters = lazy.module("tasks.steps.master")
settings = lazy.module("tasks.model.settings")


@task
@lock.writer
def master(c):
    """Boot the master (or reuse it) and print its name and Cloud Network address."""
    s = settings.load()
    cloud = _cloud.Cloud(s)
    target = boot.prepare(s, cloud)
    srv = masters.ensure(s, cloud, bootdata.lazy_release(s, cloud), target)
    print(f"{srv.name}\t{srv.status}\t{srv.public_ip or ''}\t{masters.cluster_ip(s, srv)}")
