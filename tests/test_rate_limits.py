"""Rate limits and paging: the POST pacer (pure), the parse of /limits, and
`inv master nodes` against a test cloud that pages at 5 and answers 413
beyond its POST limit."""

import json
import urllib.error
import urllib.request

import pytest

from tasks.services import session as cloud
from tasks.services.compute import post_limits
from tests.harness import run_inv

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

    def sleep(self, seconds):
        self.now += seconds


def test_the_pacer_spends_half_the_burst_then_spaces_requests():
    clock, lines = Clock(), []
    pacer = cloud.Pacer(10, 1, "test", report=lines.append, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(25):
        pacer()
        sent.append(round(clock.now - 100.0, 6))
    assert sent[:5] == [0.0] * 5                     # half of Nova's burst of 10
    assert sent[5:8] == [0.1, 0.2, 0.3]              # then one per 1/10 s
    assert sent[-1] == pytest.approx(2.0)
    # Nova's own limiter (the test cloud's copy) admits every one of them.
    from tests.testcloud.mimic_ext import Limits
    nova = Limits()
    nova.configure(post_limit=10, window=1)
    assert [nova.admit_post(now=t) for t in sent] == [None] * 25
    # ... and would not have admitted a sixth burst request at once, had
    # the account used its other half meanwhile.
    assert [nova.admit_post(now=sent[-1]) for _ in range(6)][-1] is not None
    assert lines and lines[0].startswith("pacing: waiting 0.1s for the compute rate limit, 10 POSTs per second (test)")
    assert len(lines) == 1                            # at most one line every 10 s


def test_the_pacer_counts_what_the_account_already_used():
    clock = Clock()
    pacer = cloud.Pacer(10, 1, "test", used=8, clock=clock, sleep=clock.sleep)
    assert pacer.delay() == pytest.approx(0.4)       # 8 used: the bucket is 0.8 s full, ours holds 0.5 s


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
