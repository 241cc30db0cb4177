"""inv keypair: the local key ~/.ssh/SSH_KEY_NAME (generated when missing)
registered with Nova as INSTANCE_PREFIX-SSH_KEY_NAME (tasks/steps/keypairs.py)."""

from invoke import task

from .steps import keypairs, lock
from .model import settings
from .services.session import Cloud


@task
@lock.writer
def keypair(c):
    """Generate ~/.ssh/SSH_KEY_NAME if missing; register it with Nova."""
    s = settings.load()
    print(keypairs.ensure(s, Cloud(s)))
