"""inv upload: publish the server tarball on Cloud Files behind a temp URL
(steps/publish.py)."""

import time

from invoke import task

from .support import lazy
from .steps import lock

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
publish = lazy.module("tasks.steps.publish")
settings = lazy.module("tasks.model.settings")


@task
@lock.writer
def upload(c):
    """Upload the server tarball to Cloud Files and make its temp URL."""
    s = settings.load()
    rel = publish.publish(s)
    expires = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(rel.expires_at))
    print(f"{rel.container}/{rel.object_name}  {rel.size} bytes  sha256 {rel.sha256}")
    print(f"temp URL (valid until {expires}): {rel.redacted}")
