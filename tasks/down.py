"""inv down: remove everything `up` made, and nothing else.

Servers are this cluster's by name AND metadata (never another cluster's);
the network, keypair and release are found by the names derived from
INSTANCE_PREFIX. Not-found counts as done, so a second `down` succeeds with
nothing to do.
"""

import sys
import time

from invoke import task

from . import lazy, lock, names, progress
from .errors import CloudError, UserError

# Loaded when a task runs, not by `inv --list` (see tasks/lazy.py).
_cloud = lazy.module("tasks.cloud")
cloudnetworks = lazy.module("tasks.cloudnetworks")
kinds = lazy.module("tasks.kinds")
kubeconfig = lazy.module("tasks.kubeconfig")
servers = lazy.module("tasks.servers")
settings = lazy.module("tasks.settings")

cloudfiles = lazy.module("tasks.cloudfiles")
cloudservers = lazy.module("tasks.cloudservers")
remote = lazy.module("tasks.remote")

# Nova lets go of a deleted server's ports a little after the server is
# gone; until then Neutron answers 409 (NetworkInUse / IP allocated).
NETWORK_RELEASE_TIMEOUT = 300


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


def foreign_ports(ports, our_server_ids, server_exists):
    """Ports of live servers that are not this cluster's: a network labelled
    by NOVA_NETWORK_LABEL may be shared, and down never cuts another's server
    off. Ports of servers already gone are leftovers, not foreign."""
    return [p for p in ports if p.get("device_id") and p["device_id"] not in our_server_ids
            and server_exists(p["device_id"])]


def remove_network(s, api, network, our_server_ids, server_exists, timeout=NETWORK_RELEASE_TIMEOUT):
    """Delete the network's ports, subnets and the network, retrying while
    Neutron says it is still in use. Returns lines of what was removed; a
    network other servers still use is left in place, and said so."""
    removed = []
    deadline = time.monotonic() + timeout
    label = network.get("name") or names.network_label(s)
    with progress.waiting(f"Cloud Network {label} released", timeout) as wait:
        while True:
            try:
                ports = api.ports(network["id"])
                others = foreign_ports(ports, our_server_ids, server_exists)
                if others:
                    devices = sorted({p["device_id"] for p in others})
                    removed.append(f"(kept Cloud Network {label}: still used by server(s) {', '.join(devices)})")
                    return removed
                for port in ports:
                    if api.delete_port(port["id"]):
                        removed.append(f"port {port['id']} on {label}")
                for subnet in api.subnets(network["id"]):
                    if api.delete_subnet(subnet["id"]):
                        removed.append(f"subnet {subnet.get('cidr', subnet['id'])} of {label}")
                if api.delete_network(network["id"]):
                    removed.append(f"Cloud Network {label} ({network['id']})")
                return removed
            except cloudnetworks.InUse as exc:
                if time.monotonic() >= deadline:
                    raise
                wait.update(f"still in use ({exc.reason[:80]})")
                time.sleep(3)


def inventory(s, cloud):
    """What `down` would remove: (servers, network resources as lines,
    keypair or None, release or None)."""
    nova = cloudservers.for_cloud(cloud)
    found = remote.find_cluster(s, cloud)
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


def confirm(question, yes):
    """True to go on: --yes, or no terminal to ask at, or the user said y."""
    if yes or not sys.stdin.isatty():
        return True
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


@task(help={"yes": "do not ask for confirmation"})
@lock.writer
def down(c, yes=False):
    """Delete the cluster: servers, ports, subnet, network, keypair, uploaded release."""
    s = settings.load()
    cloud = _cloud.Cloud(s)
    nova = cloudservers.for_cloud(cloud)
    found, networks, keypair, stored = inventory(s, cloud)
    what = describe(s, found, networks, keypair, stored)
    if what and not confirm(f"delete cluster {s.INSTANCE_PREFIX}: {what}?", yes):
        raise UserError("nothing deleted (answer y, or pass --yes)")

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

    if not removed:
        print(f"no cluster named {s.INSTANCE_PREFIX}: nothing to remove")
        return
    print(f"removed from cluster {s.INSTANCE_PREFIX}:")
    for line in removed:
        print(f"  {line}")
