"""
pytest fixture for the OpenStack bed (tests/osbed), loaded by
tests/conftest.py.  A session fixture: the bed starts once, and only when a
test asks for it; conftest starts it in the background as soon as it knows
a test will (start_in_background), so its ~30 s start overlaps other tests.

    os_bed   session: a started OSBed, its public endpoints behind fault
             proxies that pass everything (os_bed.faults(rate, seed) to
             make some requests fail; always switch them off again)
"""
import threading

import pytest

from tests.testcloud import in_loopback_namespace

_KEY = pytest.StashKey()


class _Start:
    """The bed's start on a thread of its own.  The thread is made after
    pytest_configure entered the namespace, so it (and every process it
    starts) is inside it."""

    def __init__(self, config):
        self.bed = self.error = None
        self.workdir = config._tmp_path_factory.mktemp("osbed")
        self.thread = threading.Thread(target=self._run, name="osbed-start", daemon=True)
        self.thread.start()

    def _run(self):
        from tests.osbed import OSBed, available
        from tests.testcloud.faults import FaultProxy
        try:
            why = available()
            if why:
                raise RuntimeError(why)
            self.bed = OSBed.start(self.workdir, front=lambda upstream: FaultProxy(upstream).start())
        except BaseException as e:    # handed to the fixture
            self.error = e

    def result(self):
        self.thread.join()
        if self.error is not None:
            pytest.fail("OpenStack bed: %s" % (self.error,), pytrace=False)
        return self.bed


def start_in_background(config):
    if _KEY not in config.stash:
        config.stash[_KEY] = _Start(config)


def started(config):
    return _KEY in config.stash


def pytest_unconfigure(config):
    start = config.stash.get(_KEY, None)
    if start is not None:
        start.thread.join()
        if start.bed is not None:
            start.bed.stop()


@pytest.fixture(scope="session")
def os_bed(request):
    assert in_loopback_namespace(), (
        "the OpenStack bed only starts inside a loopback-only network "
        "namespace (tests/conftest.py must call enter_loopback_namespace())")
    start_in_background(request.config)
    yield request.config.stash[_KEY].result()
