"""
pytest fixtures for the test cloud (loaded by tests/conftest.py through
``pytest_plugins = ["tests.fixtures_cloud"]``; conftest enters the loopback
namespace in pytest_configure).

    test_cloud   session: a started TestCloud
    release_cache  session: a KUBE_DOWNLOAD_DIR for fixtures that run
                 `inv build --release` only to prepare a test: the release
                 is downloaded once per worker (a re-run finds it verified;
                 a mirror serving other bytes is downloaded again, see
                 tasks/build.py). Opt-in: a test that needs an empty
                 download dir (no tarball yet) keeps HOME's own.
    cloud_env    function: os.environ + cloud env + HOME, INSTANCE_PREFIX,
                 KUBE_ENV_FILE

run_inv lives in tests.harness (import it from there); the name stays here
for tests written before.
"""
import os
import secrets

import pytest

from tests.harness import run_inv  # noqa: F401  (see above)
from tests.testcloud import TestCloud, in_loopback_namespace


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


@pytest.fixture(scope="session")
def release_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("release-cache"))


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
