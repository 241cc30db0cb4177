"""inv config: the resolved settings and where each came from."""

from invoke import task

from . import settings


@task
def config(c):
    """Show every setting, its value (secrets masked) and its source."""
    s = settings.load()
    width = max(map(len, s))
    for name in s:
        print(f"{name:<{width}}  {s.display(name):<40}  {s.source(name)}")
