"""inv master: boot INSTANCE_PREFIX-master (or reuse it) and wait only for
its cluster address; the work is steps/master.py."""

from invoke import task

from .model import settings
from .services.session import Cloud
from .steps import boot, bootdata, lock
from .steps import master as masters


@task
@lock.writer
def master(c):
    """Boot the master (or reuse it) and print its name and Cloud Network address."""
    s = settings.load()
    cloud = Cloud(s)
    target = boot.prepare(s, cloud)
    srv = masters.ensure(s, cloud, bootdata.lazy_release(s, cloud), target)
    print(f"{srv.name}\t{srv.status}\t{srv.public_ip or ''}\t{masters.cluster_ip(s, srv)}")
