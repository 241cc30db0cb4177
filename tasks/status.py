"""inv status: the cluster's servers, its network and its release, read-only.

A cluster that does not exist is an answer ("no cluster named X"), not an
error: status is what you run to find out.
"""

import datetime

from invoke import task

from .model import names
from .support import lazy

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
cluster = lazy.module("tasks.steps.cluster")
kinds = lazy.module("tasks.kinds")
kubeconfig = lazy.module("tasks.steps.kubeconfig")
release = lazy.module("tasks.model.release")
servers = lazy.module("tasks.model.servers")
settings = lazy.module("tasks.model.settings")

cloudfiles = lazy.module("tasks.services.objects")
remote = lazy.module("tasks.services.ssh")

SERVER_HEADER = ["server", "role", "status", "cluster IP", "public", "Cloud Network", "SSH via"]


def server_rows(s, found):
    """One row per server (remote.cluster_servers order): the address
    cluster traffic uses (legacy: the Cloud Network; OpenStack: the
    cluster network), the public one, and the jump host SSH goes through, if any."""
    label = names.network_label(s)
    return [[srv.name, servers.role_of(srv) or "?", srv.status, srv.cluster_ip or "-",
             srv.public_ip or "-", srv.ipv4(label) or "-", srv.ssh_gateway or "-"] for srv in found]


def expiry_text(expires_at, now=None):
    """'2025-01-02 03:04 UTC (in 5h)' or '... (expired)' for a Unix time."""
    if not expires_at:
        return "unknown"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    when = datetime.datetime.fromtimestamp(float(expires_at), datetime.timezone.utc)
    left = (when - now).total_seconds()
    if left <= 0:
        state = "expired: re-run `inv upload` before booting more servers"
    elif left < 3600:
        state = f"in {int(left // 60)}m"
    else:
        state = f"in {int(left // 3600)}h"
    return f"{when:%Y-%m-%d %H:%M} UTC ({state})"


def release_lines(s, stored, record):
    """Lines about the uploaded release: `stored` from
    cloudfiles.describe_release, `record` the upload's local record."""
    if stored is None:
        return [f"release: none uploaded as {names.container(s)}/{names.release_object(s)}"]
    lines = [f"release: {stored['container']}/{stored['object']} ({stored['size']} bytes, "
             f"sha256 {stored.get('sha256') or 'unknown'})"]
    if record is not None:
        version = getattr(record, "version", None)
        if version:
            lines.append(f"release version: {version}")
        lines.append(f"temp URL expires: {expiry_text(getattr(record, 'expires_at', None))}")
    else:
        lines.append("temp URL: no local record (run `inv upload` to make one)")
    return lines


def network_lines(rows):
    """One line per network resource (the kind's network_rows)."""
    return [f"{kind}: {name} ({detail})" if detail != "none" else f"{kind}: no {kind} named {name}"
            for kind, name, detail in rows]


@task
def status(c):
    """Show the cluster's servers, network and uploaded release."""
    s = settings.load()
    cloud = _cloud.Cloud(s)
    found = cluster.find_cluster(s, cloud)
    if found:
        remote.print_table(SERVER_HEADER, server_rows(s, found), title=f"cluster {s.INSTANCE_PREFIX}")
    else:
        print(f"no cluster named {s.INSTANCE_PREFIX}: it has no servers")
    rows, _actions = kinds.of(cloud).network_rows(s, cloud)
    for line in network_lines(rows):
        print(line)
    for line in release_lines(s, cloudfiles.describe_release(s, cloud), release.load_saved(s)):
        print(line)
    if found:
        master = servers.master_of(found)
        if master is not None and master.public_ip:
            print(f"API server: {kubeconfig.server_url(master.public_ip)} (context {names.kube_context(s)})")
