"""inv plan: what `inv up` would create, reuse or replace, and the user data
each server would boot with, written to the state directory. Reads the
cloud, changes nothing there.
"""

import os

from invoke import task

from .support import lazy
from .model import names

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
bootdata = lazy.module("tasks.steps.bootdata")
kinds = lazy.module("tasks.kinds")
kubeadmcheck = lazy.module("tasks.steps.kubeadmcheck")
release = lazy.module("tasks.model.release")
servers = lazy.module("tasks.model.servers")
settings = lazy.module("tasks.model.settings")

cloudservers = lazy.module("tasks.services.compute")
userdata = lazy.module("tasks.model.userdata")

# A node's user data needs the master's Cloud Network address; before the master
# exists, the plan renders it with an address from RFC 5737's documentation
# range, which no server can have, and says so.
UNKNOWN_MASTER_IP = "192.0.2.1"


def server_actions(s, found, flavors=None):
    """[(name, action, detail)] for the master and every node, from the pure
    plans of servers.plan; `flavors` {role: flavor} overrides the settings."""
    flavors = flavors or {}
    rows = []
    for role in ("master", "node"):
        decided = servers.plan(s, role, found)
        for want, srv in decided.reuse:
            rows.append((want.name, "reuse", f"{srv.status}, id {srv.id}"))
        replaced = {srv.name: srv for srv in decided.delete if srv.status in servers.FAILED}
        for want in decided.create:
            if want.name in replaced:
                rows.append((want.name, "replace", f"in ERROR: {replaced[want.name].fault or 'no fault message'}"))
            else:
                rows.append((want.name, "create", flavors.get(role) or s[servers.FLAVOR_SETTINGS[role]]))
        for srv in decided.delete:
            if srv.name not in replaced:
                rows.append((srv.name, "delete", f"duplicate {srv.id}"))
        for srv in decided.conflicts:
            rows.append((srv.name, "conflict", f"not this cluster's (id {srv.id}): up will stop"))
        for srv in servers.prune_order(decided.surplus):
            rows.append((srv.name, "extra", f"above NUM_NODES={s.NUM_NODES}: left alone; "
                                            "`inv nodes --prune` drains and removes it"))
    return rows


def planned_release(s, cloud):
    """The Release the servers would download: the last upload's record, or
    what `inv upload` would publish (the object's URL before signing)."""
    saved = release.load_saved(s)
    if saved is not None:
        return saved, "last upload"
    path = release.find_tarball(s)
    cache = release.DigestCache(s.KUBE_DOWNLOAD_DIR)
    digests = release.file_digests(path, cache, md5=False)
    url = f"{cloud.endpoint('object-store')}/{names.container(s)}/{names.release_object(s)}"
    version = release.version_of(s, path, cache)
    found = release.Release(url=url, sha256=digests["sha256"], size=digests["size"], expires_at=0,
                           container=names.container(s), object_name=names.release_object(s), version=version)
    return found, f"{path}, not uploaded yet (the URL gets its signature at upload)"


def write_user_data(s, cloud, found, kind_name):
    """Render every server's user data into STATE/plan/; returns the paths."""
    rel, origin = planned_release(s, cloud)
    from .steps.master import cluster_ip

    master = next((srv for srv in found if srv.name == names.master_name(s) and cluster_ip(s, srv)), None)
    master_ip = cluster_ip(s, master) if master else UNKNOWN_MASTER_IP
    boot = bootdata.BootData(s, rel, kind_name)
    token_note = plan_token(s, found, boot)
    out = names.state_dir(s) / "plan"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    written, configs = [], []
    by_name = {srv.name: srv for srv in found}
    for role, index, name in [("master", 0, names.master_name(s))] + [
            ("node", i, names.node_name(s, i)) for i in range(1, s.NUM_NODES + 1)]:
        # A floating IP that exists is what the server's user data names.
        known = by_name.get(name)
        attach = kinds.Attach(nics=(), public_ip=known.public_ip) if known is not None and known.public_ip else None
        facts = boot.facts(role, index, master_ip, attach)
        text = userdata.render(role, s, facts)
        if index <= 1:
            # kubeadm checks the master's config and one node's (nodes'
            # differ only in their name).
            configs.append(kubeadmcheck.config_of(s, name, role, facts))
        path = out / f"{name}.yaml"
        # The user data holds the bootstrap token (and on the master the CA key).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        written.append(path)
    return written, origin, master is None, token_note, configs


def plan_token(s, found, boot):
    """What up would do with the bootstrap token, in words; when it would
    make a new one, the user data is rendered with a stand-in (neither
    recorded nor sent anywhere)."""
    import datetime

    from .model import pki
    from .steps import tokens

    boot.base_facts()   # creates the token when there is none yet, as up would
    now = datetime.datetime.now(datetime.timezone.utc)
    record = pki.read_token(names.state_dir(s))
    master = servers.master_of(servers.cluster_servers(s, found))
    creates = any(servers.plan(s, role, found).create for role in ("master", "node"))
    action = tokens.decide(record, now, tokens.renew_margin(s),
                           master is not None and master.status not in servers.FAILED)
    if action == tokens.KEEP:
        return f"bootstrap token valid until {record.expires_text}"
    boot.use_token(pki.new_token_record(s.BOOTSTRAP_TOKEN_TTL, now))
    if not creates:
        return "bootstrap token expired (or expires soon); up makes a new one when it must create a server"
    where = f"on {master.name} over SSH" if action == tokens.RENEW else "for the new master"
    return f"bootstrap token expired (or expires soon): up makes a new one {where}"


def network_plan_lines(s, rows, actions):
    """Pure: a line per network resource that exists ('reuse'), and one per
    kind `up` would create ({kind: 'create'})."""
    lines = []
    for kind, name, detail in rows:
        if detail == "none":
            continue
        lines.append(f"{kind:<14} {name:<32} reuse ({detail})")
    wanted = {"network": f"{names.network_label(s)}", "subnet": f"{names.subnet_name(s)}",
              "router": names.router_name(s), "security group": names.security_group_name(s)}
    for kind, action in actions.items():
        if action != "reuse":
            detail = s.NOVA_NETWORK if kind in ("network", "subnet") else (
                f"gateway {s.EXTERNAL_NETWORK}" if kind == "router" else
                f"SSH and API from {s.ADMIN_CIDR}" if kind == "security group" else "")
            lines.append(f"{kind:<14} {wanted.get(kind, kind):<32} {action} ({detail})")
    return lines


@task
def plan(c):
    """Show what `inv up` would create, reuse or replace; write the user data to the state dir."""
    s = settings.load()
    cloud = _cloud.Cloud(s)
    kind = kinds.of(cloud)
    nova = cloudservers.CloudServers(cloud)
    rows, actions = kind.network_rows(s, cloud)
    keypair = nova.keypair(names.keypair_name(s))
    found = nova.list_servers(s.INSTANCE_PREFIX)

    print(f"cluster {s.INSTANCE_PREFIX} in {cloud.region or 'the only region'} ({kind.NAME} cloud):")
    for line in network_plan_lines(s, rows, actions):
        print(f"  {line}")
    print(f"  {'keypair':<14} {names.keypair_name(s):<32} {'reuse' if keypair else 'create'}")
    flavors = dict(kind.flavor_choice(s, cloud))
    for name, action, detail in server_actions(s, found, flavors):
        print(f"  {'server':<14} {name:<32} {action} ({detail})")
    for line in kind.exposure(s):
        print(f"open to the world: {line}")
    backend, why = kind.pod_network(s)
    print(f"pod network: flannel {backend} ({why})")
    listed = [srv for srv in found if names.is_cluster_server(s, srv.name, srv.metadata)]
    written, origin, master_unknown, token_note, configs = write_user_data(
        s, cloud, kind.reach(s, cloud, listed), kind.NAME)
    # Stops here (UserError) when kubeadm refuses a config.
    check_line = kubeadmcheck.check(s, configs)
    print(f"user data for {len(written)} servers in {written[0].parent}/ (release: {origin})")
    print(f"  {token_note}")
    if master_unknown:
        print(f"  nodes rendered with master address {UNKNOWN_MASTER_IP}: the real one is known once the master boots")
    print(f"  {check_line}")

