"""The bootstrap token nodes join with: it expires (BOOTSTRAP_TOKEN_TTL), and
a fresh one is made whenever servers must be created and the recorded one
has expired or will before they can join.

`decide` is pure. `ensure_fresh` acts on it: before the master exists the
new token only needs recording (the master's `kubeadm init` registers it
from its user data); once the master exists the cluster must learn it
first, as a bootstrap-token Secret in kube-system
(https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/).

The Secret goes to the cluster over SSH, the way the post-boot checks reach
it: `kubectl create -f -` on the master with the admin kubeconfig kubeadm
wrote there, the manifest on stdin (never on a command line). That needs
nothing from the laptop but the SSH access the tool already has (bastions
and ProxyJump in SSH_CONFIG included, host key pinned), and no API server
port reachable from the laptop.
"""

import datetime

from ..model import layout, names, servers
from ..support import progress
from ..support.errors import CloudError

# pki (cryptography), paramiko and yaml are imported where they are used:
# `inv --list` must not pay for them.

# The group kubeadm's join flow expects the token in (kubeadm's own default).
TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
DESCRIPTION = "kube-rackspace: nodes join with this token"

KEEP, RECORD, RENEW = "keep", "record", "renew"


def renew_margin(s):
    """Seconds a token must still be valid for nodes created now: they join
    while `up` waits for them (BOOT_TIMEOUT to become ACTIVE, BOOT_TIMEOUT
    for the checks)."""
    return 2 * s.BOOT_TIMEOUT


def decide(record, now, margin, cluster_exists):
    """KEEP the recorded token, RECORD a new one (no cluster yet: the master
    registers it at init), or RENEW it on the running cluster."""
    if record is not None and not record.stale(now, margin):
        return KEEP
    return RENEW if cluster_exists else RECORD


def secret_manifest(record):
    """The bootstrap-token Secret of `record`, as the Kubernetes docs define
    it (the same fields `kubeadm token create` writes)."""
    token_id, token_secret = record.token.split(".", 1)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "description": DESCRIPTION,
            "token-id": token_id,
            "token-secret": token_secret,
            "expiration": record.expires_text,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": TOKEN_GROUP,
        },
    }


def create_command(s):
    """The command run on the master; the manifest comes on stdin."""
    from ..services import ssh as remote

    return remote._shell(s, (f"{layout.BIN_DIR}/kubectl", "--kubeconfig", layout.ADMIN_CONF,
                             "create", "-f", "-"))


def put_on_cluster(s, master, record, timeout=None):
    """Create the token's Secret through kubectl on `master` (a Server)."""
    import io

    import paramiko
    import yaml
    from invoke.exceptions import CommandTimedOut, ThreadException

    from ..services import ssh as remote

    target = remote.target(master, s.NOVA_NETWORK)
    timeout = timeout or s.BOOT_TIMEOUT
    try:
        conn = remote.open_connection(s, target, timeout)
    except TimeoutError as exc:
        raise CloudError(f"cannot renew the bootstrap token: {exc}") from None
    manifest = yaml.safe_dump(secret_manifest(record), sort_keys=False)
    try:
        result = conn.run(create_command(s), hide=True, warn=True, timeout=remote.COMMAND_TIMEOUT,
                          in_stream=io.StringIO(manifest))
    except (OSError, EOFError, paramiko.SSHException, ThreadException, CommandTimedOut) as exc:
        raise CloudError(f"cannot renew the bootstrap token on {master.name}: the SSH session failed "
                         f"({type(exc).__name__}); re-run") from None
    finally:
        conn.close()
    if result.exited != 0:
        why = (result.stderr.strip() or result.stdout.strip() or f"exit status {result.exited}").splitlines()[-1]
        raise CloudError(f"cannot renew the bootstrap token on {master.name}: kubectl create said: {why}; "
                         "check the master (inv ssh) and re-run")


def ensure_fresh(s, listed, now=None):
    """Before servers are created: make sure the recorded token outlives
    their boot. `listed` are the cluster's servers as Nova lists them; the
    master among them, once ACTIVE, gets the new token first. Returns the
    decision taken (KEEP, RECORD or RENEW)."""
    from ..model import pki

    state_dir = names.state_dir(s)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    record = pki.read_token(state_dir)
    master = servers.master_of(servers.cluster_servers(s, listed))
    # A master in ERROR is about to be replaced: a new cluster.
    cluster_exists = master is not None and master.status not in servers.FAILED
    action = decide(record, now, renew_margin(s), cluster_exists)
    if action == KEEP:
        return action
    fresh = pki.new_token_record(s.BOOTSTRAP_TOKEN_TTL, now)
    if action == RENEW:
        why = "expired" if record is None or record.expires is None or record.expires <= now else "expires soon"
        progress.info(f"bootstrap token {why}: creating a new one on {master.name} "
                      f"(valid until {fresh.expires_text})")
        put_on_cluster(s, master, fresh)
    pki.write_token(state_dir, fresh)
    return action
