"""`inv down`'s work: find everything `up` made, and remove it, and
nothing else (servers by name AND metadata, never another cluster's)."""

import time

from .. import kinds
from ..model import names, servers
from ..support import lazy, progress
from ..support.errors import CloudError
from . import cluster
from . import kubeconfig

cloudfiles = lazy.module("tasks.services.objects")
remote = lazy.module("tasks.services.ssh")


def wait_gone(s, nova, doomed):
    """Poll until no server in `doomed` is listed any more."""
    ids = {srv.id for srv in doomed}
    with progress.waiting(f"{len(ids)} server(s) deleted", s.BOOT_TIMEOUT) as wait:
        while True:
            left = [srv for srv in nova.list_servers(s.INSTANCE_PREFIX)
                    if srv.id in ids and srv.status not in servers.GONE]
            wait.update(f"{len(ids) - len(left)}/{len(ids)} gone" +
                        (f"; waiting: {', '.join(srv.name for srv in left[:3])}" if left else ""))
            if not left:
                return
            if wait.expired:
                raise CloudError(f"BOOT_TIMEOUT ({s.BOOT_TIMEOUT}s) ran out while deleting: "
                                 f"{', '.join(f'{srv.name} ({srv.status})' for srv in left)}; re-run `inv down`")
            time.sleep(2)


def inventory(s, cloud):
    """What `down` would remove: (servers, network resources as lines,
    keypair or None, release or None)."""
    nova = cloud.compute
    found = cluster.find_cluster(s, cloud)
    networks = kinds.of(cloud).inventory(s, cloud)
    keypair = nova.keypair(names.keypair_name(s))
    stored = cloudfiles.describe_release(s, cloud)
    return found, networks, keypair, stored


def describe(s, found, networks, keypair, stored):
    parts = []
    if found:
        parts.append(f"{len(found)} server(s) ({', '.join(srv.name for srv in found)})")
    parts += networks
    if keypair:
        parts.append(f"keypair {names.keypair_name(s)}")
    if stored:
        parts.append(f"release {stored['container']}/{stored['object']}")
    return ", ".join(parts)


def remove(s, cloud, found, networks, keypair):
    """Delete what inventory() found: the servers (and wait until they are
    gone), the network resources, the keypair, the release, the host keys
    and the kubeconfig context. Returns lines of what was removed."""
    nova = cloud.compute
    removed = []
    if found:
        for srv in found:
            nova.delete_server(srv)
        wait_gone(s, nova, found)
        removed += [f"server {srv.name} ({srv.id})" for srv in found]
    if networks:
        removed += kinds.of(cloud).remove_network(s, cloud, {srv.id for srv in found}, nova.server_exists)
    if keypair and nova.delete_keypair(names.keypair_name(s)):
        removed.append(f"keypair {names.keypair_name(s)}")
    removed += cloudfiles.delete_release(s, cloud)

    # The servers are gone: their host keys must not refuse the next
    # cluster's servers if Rackspace hands out the same addresses again.
    known = remote.known_hosts_path(s)
    if known.exists():
        known.unlink()
        removed.append(f"known hosts {known}")
    if kubeconfig.uninstall(s):
        removed.append(f"context {names.kube_context(s)} in {s.KUBECONFIG_PATH}")
    return removed
