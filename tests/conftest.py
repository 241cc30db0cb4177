"""Test session set-up.

The whole pytest process moves into a network namespace that holds only
loopback before any test (or thread) starts: Mimic hands out public-looking
addresses, and a stray connection to one must fail at once instead of
leaving this machine. Every server the tests start (Mimic, Swift, sshd, the
release mirror) and every `inv` they run inherit the namespace.
"""

import pytest

pytest_plugins = ["tests.fixtures_cloud", "tests.fixtures_osbed"]


def pytest_configure(config):
    from tests.testcloud import netns

    try:
        netns.enter_loopback_namespace()
    except (OSError, RuntimeError) as exc:
        raise pytest.UsageError(
            f"the tests need a loopback-only network namespace and could not make one ({exc}); "
            "run them as root, e.g. `sudo .venv/bin/python -m pytest`") from None
