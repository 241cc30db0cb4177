"""inv down: remove everything `up` made, and nothing else.

Servers are this cluster's by name AND metadata (never another cluster's);
the network, keypair and release are found by the names derived from
INSTANCE_PREFIX. Not-found counts as done, so a second `down` succeeds with
nothing to do. The work is steps/teardown.py.
"""

import sys

from invoke import task

from .support import lazy
from .steps import lock
from .support.errors import UserError

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
settings = lazy.module("tasks.model.settings")
teardown = lazy.module("tasks.steps.teardown")


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
    found, networks, keypair, stored = teardown.inventory(s, cloud)
    what = teardown.describe(s, found, networks, keypair, stored)
    if what and not confirm(f"delete cluster {s.INSTANCE_PREFIX}: {what}?", yes):
        raise UserError("nothing deleted (answer y, or pass --yes)")

    removed = teardown.remove(s, cloud, found, networks, keypair)
    if not removed:
        print(f"no cluster named {s.INSTANCE_PREFIX}: nothing to remove")
        return
    print(f"removed from cluster {s.INSTANCE_PREFIX}:")
    for line in removed:
        print(f"  {line}")
