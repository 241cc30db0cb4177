"""Rate limits and paging: the POST pacer (pure), the parse of /limits, and
`inv master nodes` against a test cloud that pages at 5 and answers 413
beyond its POST limit."""

import json
import urllib.error
import urllib.request

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.services import session as cloud
from tasks.services.compute import post_limits
from tests.harness import run_inv
from tests.testcloud.mimic_ext import MODELS, Limits

RACKSPACE_LIMITS = {"limits": {"absolute": {"maxTotalInstances": 200}, "rate": [
    {"uri": "*", "regex": ".*", "limit": [
        {"verb": "POST", "value": 100, "remaining": 97, "unit": "MINUTE", "next-available": "x"},
        {"verb": "GET", "value": 1000, "remaining": 1000, "unit": "MINUTE", "next-available": "x"}]},
    {"uri": "/servers", "regex": "^/servers", "limit": [
        {"verb": "POST", "value": 1000, "remaining": 1000, "unit": "DAY", "next-available": "x"}]},
    {"uri": "*/images", "regex": "^/images", "limit": [
        {"verb": "POST", "value": 10, "remaining": 10, "unit": "MINUTE", "next-available": "x"}]},
]}}


def test_post_limits_that_apply_to_creates_are_read_from_the_rate_section():
    assert post_limits(RACKSPACE_LIMITS) == [(100, 60, 3, "/limits: *"), (1000, 86400, 0, "/limits: /servers")]
    assert post_limits({"limits": {"absolute": {}}}) == []      # Mimic's canned answer: use the setting
    assert post_limits({}) == []


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def wait(self, cond, timeout):
        assert timeout is not None, "a single thread never waits for one in flight"
        self.now += timeout


def simulate(budget, window, durations, workers, admit_at):
    """Requests of the given durations sent by `workers` threads through
    next_send, in simulated time. Returns (send times, admission times):
    the service counts a request at a moment between its sending and its
    answer, `admit_at` (0..1) of the way."""
    now, pending, in_flight, done, sends, admits = 0.0, list(durations), [], [], [], []
    while pending or in_flight:
        for end in [end for end in in_flight if end <= now]:
            in_flight.remove(end)
            done.append(end)
        at = None
        if pending and len(in_flight) < workers:
            at = cloud.next_send(now, len(in_flight), done, budget, window)
            if at is not None and at <= now:
                duration = pending.pop(0)
                sends.append(now)
                admits.append(now + admit_at[len(admits) % len(admit_at)] * duration)
                in_flight.append(now + duration)
                continue
        events = ([at] if at is not None else []) + in_flight
        if events:
            now = min(events)
    return sends, admits


def most_in_any_window(times, window):
    """The most of `times` in any window (a - window, a] (a sliding log's;
    a request sent exactly `window` after another's answer may be admitted
    that exactly, so sums that differ in the last bit count as equal)."""
    times = sorted(times)
    return max((sum(1 for t in times if a - window + 1e-9 < t <= a) for a in times), default=0)


@settings(max_examples=300, deadline=None)
@given(budget=st.integers(1, 12), window=st.sampled_from([1.0, 60.0]),
       durations=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=60),
       workers=st.integers(1, 10), admit_at=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5))
def test_no_window_ever_holds_more_than_the_budget(budget, window, durations, workers, admit_at):
    sends, admits = simulate(budget, window, durations, workers, admit_at)
    assert len(sends) == len(durations)
    assert most_in_any_window(admits, window) <= budget
    # ... so each of the test cloud's limiters admits all of them (the
    # Pacer's window has its margin, which also clears exact ties).
    _, admits = simulate(budget, window * (1 + cloud.WINDOW_MARGIN), durations, workers, admit_at)
    for model in MODELS:
        nova = Limits()
        nova.configure(post_limit=budget, window=window, model=model, now=0.0)
        assert [nova.admit_post(now=t) for t in sorted(admits)] == [None] * len(admits), model


@given(count=st.integers(1, 400), budget=st.integers(1, 100))
def test_instant_requests_meet_the_floor_of_the_sliding_window(count, budget):
    """With answers at once, the schedule is the strictest model's floor:
    `budget` at once, the next `budget` one window later, and so on."""
    sends, _ = simulate(budget, 60.0, [0.0] * count, 10, [1.0])
    assert sends[-1] == pytest.approx((-(-count // budget) - 1) * 60.0)


def test_the_old_pacing_overfilled_a_sliding_window():
    """What issue 22 measured: half of L at once, then L/W steadily, holds
    1.4 L in the first window; next_send's schedule holds L."""
    old = [0.0] * 5 + [0.1 * i for i in range(1, 21)]
    assert most_in_any_window(old, 1.0) == 14
    sends, _ = simulate(10, 1.0, [0.0] * 25, 10, [1.0])
    assert most_in_any_window(sends, 1.0) == 10


def test_the_pacer_bursts_what_remains_then_waits_for_the_window():
    clock, lines = Clock(), []
    pacer = cloud.Pacer(10, 1, "test", used=4, report=lines.append, clock=clock, wait=clock.wait)
    sent = []
    for _ in range(13):
        pacer.acquire()
        sent.append(round(clock.now - 100.0, 6))
        pacer.release(202)
    window = 1 + cloud.WINDOW_MARGIN
    assert sent == [0.0] * 6 + [pytest.approx(window)] * 6 + [pytest.approx(2 * window)]   # 10 - 4 used
    assert lines and lines[0].startswith("pacing: waiting 1.0s for the compute rate limit, 10 POSTs per second (test)")
    assert len(lines) == 1                            # at most one line every 10 s


def test_after_a_413_the_pacer_honours_retry_after_and_stops_bursting():
    clock = Clock()
    pacer = cloud.Pacer(10, 1, "test", clock=clock, wait=clock.wait)
    pacer.acquire()
    pacer.release(413, {"Retry-After": "3"})
    sent = []
    for _ in range(4):
        pacer.acquire()
        sent.append(round(clock.now - 100.0, 6))
        pacer.release(202)
    step = (1 + cloud.WINDOW_MARGIN) / 10
    assert sent == pytest.approx([3.0, 3.0 + step, 3.0 + 2 * step, 3.0 + 3 * step])
    assert pacer.refused == 1


def test_requests_in_flight_count_until_they_are_answered():
    clock = Clock()
    pacer = cloud.Pacer(2, 1, "test", clock=clock, wait=clock.wait)
    pacer.acquire()
    pacer.acquire()
    assert cloud.next_send(clock.now, 2, [], 2, 1.0) is None     # both in flight: wait for an answer
    clock.now += 5.0                                              # answered late: counted until then + W
    pacer.release(202)
    pacer.release(202)
    pacer.acquire()
    assert clock.now == pytest.approx(105.0 + 1 + cloud.WINDOW_MARGIN)


@pytest.fixture
def limited(test_cloud):
    yield test_cloud
    test_cloud.set_compute_limits(post_limit=0, page_size=5)


def _post(url, token):
    req = urllib.request.Request(url, data=b"{}", method="POST",
                                 headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_the_test_cloud_answers_413_beyond_its_limit_and_shows_it_in_limits(limited):
    limited.set_compute_limits(post_limit=3, window=60)
    token = limited.token()
    access = json.load(urllib.request.urlopen(urllib.request.Request(
        limited.direct_auth_url + "/tokens", data=json.dumps({"auth": {"RAX-KSKEY:apiKeyCredentials": {
            "username": limited.username, "apiKey": limited.api_key}}}).encode(),
        headers={"Content-Type": "application/json"}), timeout=10))["access"]
    compute = next(e["publicURL"] for svc in access["serviceCatalog"] if svc["type"] == "compute"
                   for e in svc["endpoints"])
    answers = [_post(compute + "/os-keypairs", token) for _ in range(5)]
    assert [code for code, _ in answers] == [400, 400, 400, 413, 413]
    assert 1 <= int(answers[3][1]["Retry-After"]) <= 20
    req = urllib.request.Request(compute + "/limits", headers={"X-Auth-Token": token})
    rate = json.load(urllib.request.urlopen(req, timeout=10))["limits"]["rate"]
    assert post_limits({"limits": {"rate": rate}}) == [(3, 60, 3, "/limits: *")]
    assert limited.compute_limits()["over_limit"] == 2


def test_creates_are_paced_under_the_limit_and_lists_are_paged(limited, cloud_env):
    env = dict(cloud_env, NUM_NODES="6", KUBE_IMAGE="CoreOS (Stable)", BOOT_TIMEOUT="120")
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    run_inv(["network", "upload"], env)
    limited.set_compute_limits(post_limit=4, window=2)    # 2 POSTs a second, bursts of 4
    first = run_inv(["keypair", "master", "nodes"], env)
    figures = limited.compute_limits()
    assert figures["over_limit"] == 0 and figures["posts"] == 8, figures   # keypair + 7 servers
    assert "pacing: waiting" in first.stdout and "(/limits: *)" in first.stdout
    prefix = env["INSTANCE_PREFIX"]
    names = sorted(s["name"] for s in limited.servers() if s["name"].startswith(prefix + "-"))
    assert names == [f"{prefix}-master"] + [f"{prefix}-node-{i}" for i in range(1, 7)]
    # 7 servers are two pages of 5: a re-run must see them all and make none.
    again = run_inv(["master", "nodes"], env)
    assert "created" not in again.stdout
    assert limited.compute_limits()["posts"] == 0 or limited.compute_limits()["over_limit"] == 0
    limited.set_compute_limits(post_limit=0)
    run_inv(["down", "--yes"], env)


@pytest.mark.parametrize("model", MODELS)
def test_150_nodes_draw_no_413_whatever_the_limiter(limited, cloud_env, model):
    """Issue 22: against a sliding window the old pacing drew 16 413s. The
    figure against the strictest model's floor is bench_scale.py's."""
    env = dict(cloud_env, NUM_NODES="150", KUBE_IMAGE="CoreOS (Stable)", BOOT_TIMEOUT="300",
               NOVA_NETWORK="192.168.0.0/22")
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    run_inv(["network", "keypair", "upload", "master"], env)
    limited.set_compute_limits(page_size=1000, post_limit=30, window=1, model=model)
    try:
        run_inv(["nodes"], env)
        figures = limited.compute_limits()
    finally:
        limited.set_compute_limits(post_limit=0)
    assert (figures["model"], figures["posts"], figures["over_limit"]) == (model, 150, 0), figures
    run_inv(["down", "--yes"], env)
