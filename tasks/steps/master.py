"""Boot INSTANCE_PREFIX-master (or reuse it) and wait only for its
cluster address (the one inside NOVA_NETWORK: on the legacy cloud the
Cloud Network's, on OpenStack the cluster network's), which the nodes' user
data needs: the API server advertises it and the nodes join it. On the
legacy cloud Nova reports the address while the server is still in BUILD
(it allocates the port before the server boots); on OpenStack its port,
made before the server, holds it. Either way the nodes boot in parallel
with the master; `inv nodes` (and `inv up`) then wait for the whole cluster
to be ACTIVE."""

import time

from .. import kinds
from ..model import servers
from ..support import progress
from ..support.errors import CloudError
from . import boot, bootdata, tokens


def ensure(s, cloud, release, target):
    """The master Server, with its Cloud Network address. Creates it when
    missing (deleting one in ERROR first); `release` is the upload's Release
    or a function returning it (called only when a server is created)."""

    nova = cloud.compute
    kind = kinds.of(cloud)
    listed = nova.list_servers(s.INSTANCE_PREFIX)
    plan = servers.plan(s, "master", listed)
    boot.check_plan(plan)
    if plan.reuse:
        boot.delete_failed(nova, plan)   # duplicates only
        want, master = plan.reuse[0]
        progress.info(f"{master.name} exists ({master.id}, {master.status}); reusing it")
        master = kind.reach(s, cloud, [master])[0]
        if cluster_ip(s, master):
            return master
    else:
        want = plan.create[0]
        # A token that expired before this master was made is replaced.
        # (Reached as the cloud kind says: on OpenStack through its floating IP.)
        tokens.ensure_fresh(s, kind.reach(s, cloud, listed))
        # Built (port, image, flavor, user data) before an ERROR master is deleted.
        boot.image_id(s, cloud, nova)
        attach = kind.attach(s, cloud, target, want)
        request = boot.create_request(
            s, nova, target, want, bootdata.user_data(s, "master", 0, release, None, attach, kind.NAME), attach)
        replaced = boot.delete_failed(nova, plan)
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
    # Reached as the cloud kind says (its public address, how SSH gets in).
    return kind.reach(s, cloud, [wait_for_address(s, nova, want.name)])[0]


def cluster_ip(s, srv):
    """A server's address for cluster traffic: the cloud kind's when it set
    one (kinds.Reach), else the one Nova lists inside NOVA_NETWORK (the
    Cloud Network on legacy, the cluster's subnet on OpenStack; never by
    the network's label)."""
    if srv.reach is not None and srv.reach.cluster_ip:
        return srv.reach.cluster_ip
    return srv.ipv4_in(s.NOVA_NETWORK)


def wait_for_address(s, nova, name):
    intervals = servers.poll_intervals()
    with progress.waiting(f"{name}'s Cloud Network address", s.BOOT_TIMEOUT) as wait:
        while True:
            listed = boot.list_servers_through_outages(nova, s, wait)
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
