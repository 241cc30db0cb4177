"""Test session set-up.

The whole pytest process moves into a network namespace that holds only
loopback before any test (or thread) starts: Mimic hands out public-looking
addresses, and a stray connection to one must fail at once instead of
leaving this machine. Every server the tests start (Mimic, Swift, sshd, the
release mirror) and every `inv` they run inherit the namespace.

pytest.ini runs the tests on pytest-xdist workers (`-n`, `--dist
loadgroup`): most of the suite's time is spent waiting on servers and
`inv` subprocesses, not on CPU. Each worker makes a namespace of its own,
with its own test cloud. The tests that need the OpenStack bed run in two
xdist groups ("osbed", and "osbed-test_openstack" for the tool's long runs
on it), each on one worker with one bed, started in the background as soon
as that worker sees such a test queued.
"""

import glob
import os

import pytest

pytest_plugins = ["tests.fixtures_cloud", "tests.fixtures_osbed"]

OSBED_GROUP = "osbed"
# Modules whose bed tests get a lane and a bed of their own: the tool's
# end-to-end runs on the bed take longer than all the other bed tests
# together, and one lane for all of them was the whole run's critical path.
OWN_BED_LANE = ("test_openstack.py",)


def bed_lane(item):
    name = os.path.basename(str(item.path))
    return OSBED_GROUP + ("-" + name[:-3] if name in OWN_BED_LANE else "")
# pytest.ini's `-n auto` asks pytest_xdist_auto_num_workers below.
WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    """WORKERS for the whole suite; for a run of a few files, one worker a
    file at most, and none (everything in this process, as `-n 0`) for a
    single file: each worker starts its own test cloud (~5 s of CPU)."""
    files = set()
    for arg in config.args or config.getini("testpaths"):
        path = str(arg).split("::")[0]
        if os.path.isdir(path):
            files.update(glob.glob(os.path.join(path, "**", "test_*.py"), recursive=True))
        else:
            files.add(path)
    n = min(WORKERS, len(files))
    return n if n > 1 else 0


def pytest_configure(config):
    from tests.testcloud import netns

    try:
        # An xdist worker starts in its controller's namespace: it needs one
        # of its own (the bed's port 22 and routes, each worker's servers).
        netns.enter_loopback_namespace(new=hasattr(config, "workerinput"))
    except (OSError, RuntimeError) as exc:
        raise pytest.UsageError(
            f"the tests need a loopback-only network namespace and could not make one ({exc}); "
            "run them as root, e.g. `sudo .venv/bin/python -m pytest`") from None


def needs_os_bed(item):
    return "os_bed" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)   # before xdist names the groups in the node IDs
def pytest_collection_modifyitems(session, config, items):
    """Every test that needs the OpenStack bed goes into one xdist group:
    one worker runs them all, beside one bed. Without xdist, they run last
    and the bed starts in the background now, while the other tests run."""
    bed = [item for item in items if needs_os_bed(item)]
    for item in bed:
        item.add_marker(pytest.mark.xdist_group(bed_lane(item)))
    name_the_groups(config, items)
    if bed and not on_xdist(config):
        ids = {id(item) for item in bed}
        items[:] = [item for item in items if id(item) not in ids] + bed


def name_the_groups(config, items):
    """What xdist's worker does for --dist loadgroup (remote.py: the group
    after "@" in the node ID, which its scheduler splits on), for pytest
    9.2, whose Node.nodeid reads `_id` where xdist 3.8 sets `_nodeid`:
    without it every test is a group of its own and each worker that
    gets a bed test starts a bed. Older pytest: xdist does it."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = type(item._id).parse("%s@%s" % (item.nodeid, "_".join(names)))


def on_xdist(config):
    """A worker or the controller of a pytest-xdist run."""
    return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None))


def pytest_collection_finish(session):
    """Without xdist: the bed starts now if a test selected needs it."""
    config = session.config
    if not on_xdist(config) and not (config.option.collectonly or config.option.setupplan
                                     or config.option.setuponly) \
            and any(needs_os_bed(item) for item in session.items):
        from tests.fixtures_osbed import start_in_background
        start_in_background(config)


def pytest_runtest_protocol(item, nextitem):
    """On an xdist worker: start the bed in the background once a test
    that needs it is queued here (the scheduler hands the whole group to
    one worker at once; xdist keeps the queue in its WorkerInteractor)."""
    config = item.config
    if not hasattr(config, "workerinput") or config.option.setupplan or config.option.setuponly:
        return None
    from tests.fixtures_osbed import start_in_background, started
    if started(config):
        return None
    worker = config.pluginmanager.get_plugin("workerinteractor")
    queued = [item] + [item.session.items[i] for i in getattr(worker, "torun", ())]
    if any(needs_os_bed(queued_item) for queued_item in queued):
        start_in_background(config)
    return None


@pytest.fixture(scope="session")
def material():
    """One cluster's PKI (pki.generate) for the tests that render or check
    what is made from it."""
    from tasks.model import pki
    return pki.generate()
