"""The README's commands run as pasted: as root on a machine without sudo,
and as a normal user through sudo (scripts/as-root); CI runs exactly the
README's test command."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AS_ROOT = REPO / "scripts" / "as-root"
NOBODY = 65534


def readme_commands():
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("scripts/bootstrap --tests &&")]


def test_ci_runs_exactly_the_readme_test_command():
    tests = [c for c in readme_commands() if "pytest" in c]
    assert len(tests) == 1
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert tests[0] in ci


def test_readme_commands_never_call_sudo_directly():
    commands = readme_commands()
    assert len(commands) >= 2      # the rehearsal and the tests
    for command in commands:
        assert "sudo" not in command.split(), command
        assert "scripts/as-root" in command


@pytest.fixture
def path_dir():
    # Readable by the unprivileged user the tests below switch to.
    folder = Path(tempfile.mkdtemp(prefix="as-root-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def run_as_nobody(argv, path):
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
                          env={"PATH": path}, capture_output=True, text=True, cwd="/")


@pytest.mark.skipif(os.geteuid() != 0, reason="switches users: needs root")
def test_root_runs_the_command_itself():
    # No sudo on PATH at all: a fresh Debian machine where the user is root.
    result = subprocess.run([str(AS_ROOT), "id", "-u"], env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0"


@pytest.mark.skipif(os.geteuid() != 0, reason="switches users: needs root")
def test_a_normal_user_goes_through_sudo(path_dir):
    # A stand-in for sudo that shows how it was called: the real one would
    # ask for a password.
    sudo = path_dir / "sudo"
    sudo.write_text('#!/bin/sh\necho "sudo $*"\n')
    sudo.chmod(0o755)
    result = run_as_nobody([str(AS_ROOT), ".venv/bin/python", "-m", "pytest", "-q"], f"{path_dir}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sudo -- .venv/bin/python -m pytest -q"


@pytest.mark.skipif(os.geteuid() != 0, reason="switches users: needs root")
@pytest.mark.skipif(shutil.which("sudo", path="/usr/bin:/bin") is not None, reason="sudo is installed here")
def test_a_normal_user_without_sudo_gets_one_line():
    result = run_as_nobody([str(AS_ROOT), "id"], "/usr/bin:/bin")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root" in lines[0] and "install sudo" in lines[0]


# Each rehearsal runs in a network namespace of its own (tests/harness/
# rehearsal.py), so the OpenStack one runs beside the session's own bed.
REHEARSALS = ["tests.testcloud", "tests.osbed"]


@pytest.mark.parametrize("bed", REHEARSALS)
def test_the_rehearsal_runs_as_pasted(bed):
    """Each rehearsal command, after its `scripts/bootstrap --tests &&`
    (CI has bootstrapped already), runs to the end: build, (image,) up with
    the post-boot checks, ssh, down."""
    found = [c for c in readme_commands() if f"-m {bed} --" in c]
    assert len(found) == 1, f"README has no rehearsal command for {bed}"
    command = found[0].split("scripts/bootstrap --tests && ", 1)[1]
    proc = subprocess.run(["sh", "-c", command], cwd=REPO, text=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUBE_"))})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "is up" in proc.stdout and "removed from cluster" in proc.stdout
    node = "node-2" if bed == "tests.osbed" else "node-1"
    assert f"kubernetes-{node}\n" in proc.stdout
