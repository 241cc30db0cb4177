"""`inv --list`, `--help` and completion stay fast: importing the task
collection must not import the client libraries (they load when a task
first uses them; see tasks/support/lazy.py, and benchmarks/bench_cli.py for the
figures)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.support import lazy

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("keystoneauth1", "requests", "novaclient", "swiftclient", "fabric", "paramiko",
         "cryptography", "jinja2", "rackspaceauth", "openstack", "urllib3")


def imported_after(code):
    """The HEAVY top-level packages in sys.modules after running `code` in
    a fresh interpreter (this test process has imported them all)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return sorted(set(json.loads(out.splitlines()[-1])) & set(HEAVY))


def test_import_tasks_loads_no_client_library():
    assert imported_after("import tasks") == []


# What `import tasks` may load besides invoke's own modules: the task
# modules and the few small ones their decorators need. Everything else
# (settings, cloud, release, servers... and the stdlib modules they pull in,
# tarfile, hashlib, ipaddress, tempfile) loads when a task runs.
TASK_IMPORTS = {"tasks", "tasks.build", "tasks.config", "tasks.down", "tasks.image", "tasks.keypair",
                "tasks.kubeconfig", "tasks.master", "tasks.network", "tasks.nodes", "tasks.plan", "tasks.ssh",
                "tasks.status", "tasks.up", "tasks.upload", "tasks.support", "tasks.support.errors",
                "tasks.support.lazy", "tasks.support.progress", "tasks.steps", "tasks.steps.lock", "tasks.model",
                "tasks.model.names"}


def modules_after(code):
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_tasks_loads_only_the_task_modules_beyond_invoke():
    invoke_alone = modules_after("import invoke.program")
    extra = modules_after("import invoke.program, tasks") - invoke_alone
    assert sorted(extra - TASK_IMPORTS) == []


def test_the_lists_of_tasks_and_their_help_load_no_client_library():
    code = ("import sys\nfrom invoke import Program, Collection\nimport tasks\n"
            "sys.argv = ['inv', '--list']\n"
            "try:\n    Program(namespace=Collection.from_module(tasks)).run(['inv', '--help', 'up'], exit=False)\n"
            "except SystemExit:\n    pass\n")
    assert imported_after(code) == []


def test_a_task_that_needs_a_client_still_gets_it():
    # The probe must see a heavy module once a lazy binding is used, or the
    # assertions above would pass for a probe that sees nothing.
    assert "keystoneauth1" in imported_after("import tasks.services.session as c\nc.ks_session.Session")


def test_lazy_module_imports_on_first_attribute_and_names_missing_attributes():
    json_ = lazy.module("json")
    assert json_.dumps([1]) == "[1]"
    with pytest.raises(AttributeError):
        json_.no_such_function
    with pytest.raises(ModuleNotFoundError):
        lazy.module("tasks.no_such_module").anything
