"""inv keypair: the local key ~/.ssh/SSH_KEY_NAME (generated when missing)
registered with Nova as INSTANCE_PREFIX-SSH_KEY_NAME (tasks/steps/keypairs.py)."""

from invoke import task

from .support import lazy
from .steps import lock

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
keypairs = lazy.module("tasks.steps.keypairs")
settings = lazy.module("tasks.model.settings")


@task
@lock.writer
def keypair(c):
    """Generate ~/.ssh/SSH_KEY_NAME if missing; register it with Nova."""
    s = settings.load()
    print(keypairs.ensure(s, _cloud.Cloud(s)))
