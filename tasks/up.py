"""inv up: from nothing (or from any half-done state) to a working cluster.

Each stage finds what exists by name and metadata and makes only what is
missing, so `up` can be re-run after any failure or interruption; on a
healthy cluster it creates nothing. `inv build up` builds first: invoke
runs the tasks in the order given.
"""

import time

from invoke import task

from .model import names
from .steps import lock
from .support import lazy, progress
from .support.errors import UserError

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
boot = lazy.module("tasks.steps.boot")
bootdata = lazy.module("tasks.steps.bootdata")
kinds = lazy.module("tasks.kinds")
kubeadmcheck = lazy.module("tasks.steps.kubeadmcheck")
kubeconfigs = lazy.module("tasks.steps.kubeconfig")
master_stage = lazy.module("tasks.steps.master")
nodes = lazy.module("tasks.steps.nodes")
publish = lazy.module("tasks.steps.publish")
release = lazy.module("tasks.model.release")
servers = lazy.module("tasks.model.servers")
settings = lazy.module("tasks.model.settings")

remote = lazy.module("tasks.services.ssh")


def preflight(s, cloud):
    """Everything a setting can get wrong, before the network or keypair is
    touched: the image and the flavors (big enough for their role, see
    servers.FLAVOR_MINIMUMS) of the servers that must be created, and the
    release tarball, and the kubeadm configs of the servers to create
    (kubeadmcheck). Returns True when a tarball is here to upload. Without
    one a complete cluster still re-runs (it needs none), and one that must
    create a server stops now with find_tarball's line (where it looked;
    run `inv build`)."""
    nova = cloud.compute
    listed = nova.list_servers(s.INSTANCE_PREFIX)
    creating = [role for role in ("master", "node") if servers.plan(s, role, listed).create]
    if creating:
        boot.image_id(s, cloud, nova)
    chosen = dict(kinds.of(cloud).flavor_choice(s, cloud)) if creating else {}
    for role in creating:
        nova.flavor_id(role, chosen.get(role) or s[servers.FLAVOR_SETTINGS[role]])
    try:
        release.find_tarball(s)
    except UserError:
        if creating:
            raise
        progress.info("no release tarball found; the cluster's servers all exist, so none is needed")
        return False
    if creating:
        # The release's kubeadm on the configs the new servers get: a
        # refused one stops up here (UserError), before anything exists.
        tarball, configs = kubeadmcheck.up_configs(s, creating)
        progress.info(kubeadmcheck.check(s, configs, tarball))
    return True


def ordered(s, found):
    """Servers as remote.Targets: the master first, then nodes by index."""
    return [remote.target(srv, s.NOVA_NETWORK) for srv in servers.cluster_servers(s, found)]


def summary(s, master):
    address = master.public_ip
    return [
        f"cluster {s.INSTANCE_PREFIX} is up",
        f"  API server:  {kubeconfigs.server_url(address)}",
        f"  kubeconfig:  kubectl --context {names.kube_context(s)} get nodes",
        "  ssh:         inv ssh            (the master; --node N for a node, --command CMD to run one)",
    ]


@task(help={"no_checks": "stop once the servers are ACTIVE: no SSH checks, no kubeconfig",
            "kubeconfig": "merge the cluster's context into this file instead of KUBECONFIG_PATH"})
@lock.writer
def up(c, no_checks=False, kubeconfig=None):
    """Bring the cluster up: network, keypair, upload, master, nodes, checks, kubeconfig."""
    start = time.monotonic()
    s = settings.load()
    cloud = _cloud.Cloud(s)
    tarball = preflight(s, cloud)
    target = boot.prepare(s, cloud)
    # Without a tarball the stages have nothing to create; should a server
    # fail meanwhile, the lazy release stops them with find_tarball's line.
    rel = publish.publish(s, cloud) if tarball else bootdata.lazy_release(s, cloud)
    master = master_stage.ensure(s, cloud, rel, target)
    booting = nodes.ensure(s, cloud, rel, target, master_stage.cluster_ip(s, master))
    ready = nodes.wait_active(s, cloud, [master.name] + booting.names, booting.failures)
    ready = {srv.name: srv for srv in kinds.of(cloud).reach(s, cloud, ready.values())}
    master = ready.get(master.name, master)
    if no_checks:
        for t in ordered(s, ready.values()):
            print(f"{t.name}\tACTIVE\t{t.address}")
        print(f"servers ACTIVE after {time.monotonic() - start:.0f}s; skipped the post-boot checks (--no-checks)")
        return
    # The backend the servers' flannel runs: the kind's default unless set.
    backend = kinds.of(cloud).pod_network(s)[0]
    results = remote.check_all(s, ordered(s, ready.values()), backend=backend)
    remote.report(results)
    state, merged = kubeconfigs.write_for(s, master, kubeconfig)
    progress.info(f"kubeconfig: {state}; context {names.kube_context(s)} merged into {merged}")
    for line in summary(s, master):
        print(line)
    print(f"done in {time.monotonic() - start:.0f}s")
