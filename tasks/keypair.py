"""inv keypair: the local key ~/.ssh/SSH_KEY_NAME (generated when missing)
registered with Nova as INSTANCE_PREFIX-SSH_KEY_NAME (tasks/keypairs.py)."""

from invoke import task

from . import lazy, lock

# Loaded when a task runs, not by `inv --list` (see tasks/lazy.py).
_cloud = lazy.module("tasks.cloud")
keypairs = lazy.module("tasks.keypairs")
settings = lazy.module("tasks.settings")


@task
@lock.writer
def keypair(c):
    """Generate ~/.ssh/SSH_KEY_NAME if missing; register it with Nova."""
    s = settings.load()
    print(keypairs.ensure(s, _cloud.Cloud(s)))
