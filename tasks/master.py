"""inv master: boot INSTANCE_PREFIX-master (or reuse it) and wait only for its
cluster address, which the nodes' user data needs (config drives fill
no $private_ipv4). On the legacy cloud Nova reports the ServiceNet address
while the server is still in BUILD; on OpenStack its port, made before
the server, holds it. Either way the nodes boot in parallel with the master; `inv nodes` (and
`inv up`) then wait for the whole cluster to be ACTIVE."""

import time

from invoke import task

from . import bootdata, kinds, nodes, progress, servers, settings
from .cloud import Cloud
from .errors import CloudError


def ensure(s, cloud, release, target):
    """The master Server, with its ServiceNet address. Creates it when
    missing (deleting one in ERROR first); `release` is the upload's Release
    or a function returning it (called only when a server is created)."""
    from .cloudservers import for_cloud

    nova = for_cloud(cloud)
    kind = kinds.of(cloud)
    plan = servers.plan(s, "master", nova.list_servers(s.INSTANCE_PREFIX))
    nodes.check_plan(plan)
    if plan.reuse:
        nodes.delete_failed(nova, plan)   # duplicates only
        want, master = plan.reuse[0]
        progress.info(f"{master.name} exists ({master.id}, {master.status}); reusing it")
        master = kind.reach(s, cloud, [master])[0]
        if master.cluster_ip:
            return master
    else:
        want = plan.create[0]
        # Built (port, image, flavor, user data) before an ERROR master is deleted.
        attach = kind.attach(s, cloud, target, want)
        request = nodes.create_request(
            s, nova, target, want, bootdata.user_data(s, "master", 0, release, None, attach, kind.NAME), attach)
        replaced = nodes.delete_failed(nova, plan)
        server_id = nova.create_server(s, request, ignore_ids=replaced)
        progress.info(f"created {want.name} ({server_id})"
                      + (f", {attach.cluster_ip}" if attach.cluster_ip else "")
                      + (f", floating IP {attach.public_ip}" if attach.public_ip else ""))
        if attach.cluster_ip:
            # Its port made the address known: the nodes need not wait for Nova.
            return servers.Server(id=server_id, name=want.name, status="BUILD",
                                  metadata=servers.metadata(s, want),
                                  reach=kinds.Reach(address=attach.public_ip or "", cluster_ip=attach.cluster_ip,
                                                    public_ip=attach.public_ip or ""))
    return wait_for_address(s, nova, want.name)


def wait_for_address(s, nova, name):
    intervals = servers.poll_intervals()
    with progress.waiting(f"{name}'s ServiceNet address", s.BOOT_TIMEOUT) as wait:
        while True:
            listed = nodes.list_servers_through_outages(nova, s, wait)
            if listed is not None:
                state = servers.wait_state(s, [name], listed)
                master = state.servers.get(name)
                if state.failed:
                    raise CloudError(servers.failed_message(state.failed) + " (the next run deletes and recreates it)")
                if master is not None and master.cluster_ip:
                    wait.update(f"{master.cluster_ip} ({master.status})")
                    return master
                wait.update(master.status if master else "not listed yet")
            if wait.expired:
                raise CloudError(f"BOOT_TIMEOUT ({s.BOOT_TIMEOUT}s) ran out before {name} got a ServiceNet "
                                 f"address ({wait.state}); re-run to wait again, or raise BOOT_TIMEOUT")
            time.sleep(max(0.0, min(next(intervals), s.BOOT_TIMEOUT - wait.elapsed)))


@task
def master(c):
    """Boot the master (or reuse it) and print its name and ServiceNet address."""
    s = settings.load()
    cloud = Cloud(s)
    target = nodes.prepare(s, cloud)
    srv = ensure(s, cloud, bootdata.lazy_release(s, cloud), target)
    print(f"{srv.name}\t{srv.status}\t{srv.public_ip or ''}\t{srv.cluster_ip}")
