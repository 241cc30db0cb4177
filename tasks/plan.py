"""inv plan: what `inv up` would create, reuse or replace, and the user data
each server would boot with, written to the state directory. Reads the
cloud, changes nothing there.
"""

import os

from invoke import task

from . import bootdata, lazy, names, network, release, servers, settings, upload
from .cloud import Cloud
from .cloudnetworks import CloudNetworks

cloudservers = lazy.module("tasks.cloudservers")
userdata = lazy.module("tasks.userdata")

# A node's user data needs the master's Cloud Network address; before the master
# exists, the plan renders it with an address from RFC 5737's documentation
# range, which no server can have, and says so.
UNKNOWN_MASTER_IP = "192.0.2.1"


def server_actions(s, found):
    """[(name, action, detail)] for the master and every node, from the pure
    plans of servers.plan."""
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
                rows.append((want.name, "create", s.KUBE_MASTER_FLAVOR if role == "master" else s.KUBE_NODE_FLAVOR))
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
    saved = upload.load_saved(s)
    if saved is not None:
        return saved, "last upload"
    path = release.find_tarball(s)
    cache = release.DigestCache(s.KUBE_DOWNLOAD_DIR)
    digests = release.file_digests(path, cache, md5=False)
    url = f"{cloud.endpoint('object-store')}/{names.container(s)}/{names.release_object(s)}"
    version = upload.version_of(s, path, cache)
    found = upload.Release(url=url, sha256=digests["sha256"], size=digests["size"], expires_at=0,
                           container=names.container(s), object_name=names.release_object(s), version=version)
    return found, f"{path}, not uploaded yet (the URL gets its signature at upload)"


def write_user_data(s, cloud, found):
    """Render every server's user data into STATE/plan/; returns the paths."""
    rel, origin = planned_release(s, cloud)
    master = next((srv for srv in found if srv.name == names.master_name(s) and srv.ipv4_in(s.NOVA_NETWORK)),
                  None)
    master_ip = master.ipv4_in(s.NOVA_NETWORK) if master else UNKNOWN_MASTER_IP
    boot = bootdata.BootData(s, rel)
    token_note = plan_token(s, found, boot)
    out = names.state_dir(s) / "plan"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    written = []
    for role, index, name in [("master", 0, names.master_name(s))] + [
            ("node", i, names.node_name(s, i)) for i in range(1, s.NUM_NODES + 1)]:
        facts = boot.facts(role, index, master_ip)
        text = userdata.render(role, s, facts)
        path = out / f"{name}.yaml"
        # The user data holds the bootstrap token (and on the master the CA key).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        written.append(path)
    return written, origin, master is None, token_note


def plan_token(s, found, boot):
    """What up would do with the bootstrap token, in words; when it would
    make a new one, the user data is rendered with a stand-in (neither
    recorded nor sent anywhere)."""
    import datetime

    from . import pki, remote, tokens

    boot.base_facts()   # creates the token when there is none yet, as up would
    now = datetime.datetime.now(datetime.timezone.utc)
    record = pki.read_token(names.state_dir(s))
    master = remote.master_of(remote.cluster_servers(s, found))
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


@task
def plan(c):
    """Show what `inv up` would create, reuse or replace; write the user data to the state dir."""
    s = settings.load()
    cloud = Cloud(s)
    nova, nets = cloudservers.CloudServers(cloud), CloudNetworks(cloud)
    label = names.network_label(s)
    decision = network.plan(label, s.NOVA_NETWORK, nets.networks(label), nets.subnets)
    keypair = nova.keypair(names.keypair_name(s))
    found = nova.list_servers(s.INSTANCE_PREFIX)

    print(f"cluster {s.INSTANCE_PREFIX} in {s.OS_REGION_NAME}:")
    print(f"  {'network':<10} {label:<32} {decision.action} ({s.NOVA_NETWORK})")
    print(f"  {'keypair':<10} {names.keypair_name(s):<32} {'reuse' if keypair else 'create'}")
    for name, action, detail in server_actions(s, found):
        print(f"  {'server':<10} {name:<32} {action} ({detail})")
    written, origin, master_unknown, token_note = write_user_data(s, cloud, found)
    print(f"user data for {len(written)} servers in {written[0].parent}/ (release: {origin})")
    print(f"  {token_note}")
    if master_unknown:
        print(f"  nodes rendered with master address {UNKNOWN_MASTER_IP}: the real one is known once the master boots")

