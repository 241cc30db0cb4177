"""
pytest fixture for the OpenStack bed (tests/osbed), loaded by
tests/conftest.py.  A session fixture: the bed starts once, and only when a
test asks for it.

    os_bed   session: a started OSBed
"""
import pytest

from tests.testcloud import in_loopback_namespace


@pytest.fixture(scope="session")
def os_bed(tmp_path_factory):
    from tests.osbed import OSBed, available
    assert in_loopback_namespace(), (
        "the OpenStack bed only starts inside a loopback-only network "
        "namespace (tests/conftest.py must call enter_loopback_namespace())")
    why = available()
    if why:
        pytest.fail("OpenStack bed: " + why, pytrace=False)
    bed = OSBed.start(tmp_path_factory.mktemp("osbed"))
    try:
        yield bed
    finally:
        bed.stop()
