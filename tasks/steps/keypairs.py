"""The cluster's Nova keypair, INSTANCE_PREFIX-SSH_KEY_NAME, registered from
the local key ~/.ssh/SSH_KEY_NAME (generated when missing). The same on
both cloud kinds; `inv keypair` and every stage that boots servers
(steps/boot.prepare) share it, so no stage calls another."""

from ..support import lazy, progress
from ..model import names
from ..support.errors import CloudError

sshkeys = lazy.module("tasks.model.sshkeys")


def decide(name, local, remote):
    """Pure: 'create' when Nova has no keypair `name`, 'reuse' when it holds
    our key; another key is an error: we never boot servers with a key we do
    not hold. `remote` is (name, public_key, fingerprint) or None."""
    if remote is None:
        return "create"
    if remote[2] != local.fingerprint:
        raise CloudError(
            f"Nova keypair {name} holds another key (fingerprint {remote[2]}) than {local.public_path} "
            f"({local.fingerprint}); delete that keypair (nova keypair-delete {name}) if it is stale, "
            "or set SSH_KEY_NAME to the key it was made from")
    return "reuse"


def ensure(s, cloud):
    """The Nova keypair name, registered from the local public key if needed."""

    local = sshkeys.ensure_local(s)
    if local.created:
        progress.info(f"generated {s.SSH_KEY_TYPE} key {local.private_path} ({local.fingerprint})")
    nova = cloud.compute
    name = names.keypair_name(s)
    if decide(name, local, nova.keypair(name)) == "create":
        # A concurrent run may win the race: compare what Nova then holds.
        decide(name, local, nova.create_keypair(name, local.public_key))
        progress.info(f"registered keypair {name} ({local.fingerprint})")
    else:
        progress.info(f"keypair {name} exists with the key of {local.public_path}")
    return name
