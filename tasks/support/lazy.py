"""Modules imported on first use.

`inv --list`, `inv --help TASK` and shell completion import tasks.py and
every stage module, but run no task. The client libraries the stages use
(keystoneauth1 with requests, novaclient, swiftclient, fabric/paramiko,
cryptography, Jinja2) cost several times invoke's own start-up, so the
modules that pull them in are bound through `module()` and load when a
task first touches them. tests/test_cli_speed.py keeps `import tasks` free
of them.
"""

import importlib


class module:  # noqa: N801 - used like the `import` statement it stands for
    """Stands for the module `name`; imports it at the first attribute
    access. The import itself goes through importlib, whose per-module lock
    makes a first use from several threads safe (importlib.util.LazyLoader
    is not thread-safe on Python 3.11)."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"<lazy module {self._name!r}>"
