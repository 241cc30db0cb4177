"""inv config: the resolved settings and where each came from, then the
credentials as the cloud will see them (clouds.yaml, secure.yaml or
settings) and where each of those came from."""

from invoke import task

from .support import lazy

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
credentials = lazy.module("tasks.services.credentials")
settings = lazy.module("tasks.model.settings")



@task
def config(c):
    """Show every setting and credential, its value (secrets masked) and its source."""
    s = settings.load()
    width = max(map(len, s))
    for name in s:
        print(f"{name:<{width}}  {s.display(name):<40}  {s.source(name)}")
    creds = credentials.load(s)
    print(f"credentials ({creds.kind} cloud):")
    rows = creds.rows()
    width = max(len(r[0]) for r in rows)
    for name, value, source in rows:
        print(f"  {name:<{width}}  {str(value):<40}  {source}")
