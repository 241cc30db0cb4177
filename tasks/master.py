"""inv master: boot INSTANCE_PREFIX-master (or reuse it) and wait only for its
Cloud Network address (the one inside NOVA_NETWORK), which the nodes' user
data needs: the API server advertises it and the nodes join it. Nova
reports the address while the server is still in BUILD (it allocates the
port before the server boots), so the nodes can boot in parallel with the
master; `inv nodes` (and `inv up`) then wait for the whole cluster to be
ACTIVE. No port is made beforehand: Nova's answer is enough, and a port of
our own would be one more resource for `inv down` and a failed create to
clean up."""

import time

from invoke import task

from . import bootdata, lock, nodes, progress, servers, settings, tokens
from .cloud import Cloud
from .errors import CloudError


def ensure(s, cloud, release, target):
    """The master Server, with its Cloud Network address. Creates it when
    missing (deleting one in ERROR first); `release` is the upload's Release
    or a function returning it (called only when a server is created)."""
    from .cloudservers import for_cloud

    nova = for_cloud(cloud)
    listed = nova.list_servers(s.INSTANCE_PREFIX)
    plan = servers.plan(s, "master", listed)
    nodes.check_plan(plan)
    if plan.reuse:
        nodes.delete_failed(nova, plan)   # duplicates only
        want, master = plan.reuse[0]
        progress.info(f"{master.name} exists ({master.id}, {master.status}); reusing it")
        if cluster_ip(s, master):
            return master
    else:
        want = plan.create[0]
        # A token that expired before this master was made is replaced.
        tokens.ensure_fresh(s, listed)
        # Built (image, flavor, user data) before an ERROR master is deleted.
        request = nodes.create_request(s, nova, target, want, bootdata.user_data(s, "master", 0, release, None))
        replaced = nodes.delete_failed(nova, plan)
        server_id = nova.create_server(s, request, ignore_ids=replaced)
        progress.info(f"created {want.name} ({server_id})")
    return wait_for_address(s, nova, want.name)


def cluster_ip(s, srv):
    """A server's address for cluster traffic: on the Cloud Network, found
    by NOVA_NETWORK's CIDR (never by the network's label)."""
    return srv.ipv4_in(s.NOVA_NETWORK)


def wait_for_address(s, nova, name):
    intervals = servers.poll_intervals()
    with progress.waiting(f"{name}'s Cloud Network address", s.BOOT_TIMEOUT) as wait:
        while True:
            listed = nodes.list_servers_through_outages(nova, s, wait)
            if listed is not None:
                state = servers.wait_state(s, [name], listed)
                master = state.servers.get(name)
                if state.failed:
                    raise CloudError(servers.failed_message(state.failed) + " (the next run deletes and recreates it)")
                if master is not None and cluster_ip(s, master):
                    wait.update(f"{cluster_ip(s, master)} ({master.status})")
                    return master
                wait.update(master.status if master else "not listed yet")
            if wait.expired:
                raise CloudError(f"BOOT_TIMEOUT ({s.BOOT_TIMEOUT}s) ran out before {name} got a Cloud Network "
                                 f"address in NOVA_NETWORK {s.NOVA_NETWORK} ({wait.state}); re-run to wait again, or raise BOOT_TIMEOUT")
            time.sleep(max(0.0, min(next(intervals), s.BOOT_TIMEOUT - wait.elapsed)))


@task
@lock.writer
def master(c):
    """Boot the master (or reuse it) and print its name and Cloud Network address."""
    s = settings.load()
    cloud = Cloud(s)
    target = nodes.prepare(s, cloud)
    srv = ensure(s, cloud, bootdata.lazy_release(s, cloud), target)
    print(f"{srv.name}\t{srv.status}\t{srv.public_ip or ''}\t{cluster_ip(s, srv)}")
