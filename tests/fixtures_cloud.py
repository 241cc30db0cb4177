"""
pytest fixtures for the test cloud (loaded by tests/conftest.py through
``pytest_plugins = ["tests.fixtures_cloud"]``; conftest enters the loopback
namespace in pytest_configure).

    test_cloud   session: a started TestCloud
    cloud_env    function: os.environ + cloud env + HOME, INSTANCE_PREFIX,
                 KUBE_ENV_FILE
    run_inv(args, env, check=True) -> CompletedProcess (text, stdout+stderr)
"""
import os
import secrets
import subprocess
import sys

import pytest

from tests.testcloud import TestCloud, in_loopback_namespace
from tests.testcloud.util import REPO_ROOT


@pytest.fixture(scope="session")
def test_cloud(tmp_path_factory):
    assert in_loopback_namespace(), (
        "the test cloud only starts inside a loopback-only network namespace "
        "(tests/conftest.py must call enter_loopback_namespace())")
    cloud = TestCloud.start(tmp_path_factory.mktemp("testcloud"))
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture
def cloud_env(test_cloud, tmp_path):
    assert in_loopback_namespace()
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ)
    env.update(test_cloud.env())
    env.update(HOME=str(home), INSTANCE_PREFIX="t" + secrets.token_hex(3),
               KUBE_ENV_FILE=test_cloud.env_file)
    return env


def run_inv(args, env, check=True, timeout=600):
    """Run the real `inv` command line from the repo root, with no stdin
    (a question such as down's confirmation must never wait on the
    terminal that runs pytest -s)."""
    proc = subprocess.run([sys.executable, "-m", "invoke", *args],
                          cwd=REPO_ROOT, env=env, text=True,
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("inv %s exited %d:\n%s"
                             % (" ".join(args), proc.returncode, proc.stdout))
    return proc
