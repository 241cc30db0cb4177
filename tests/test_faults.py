"""A bad day: transient faults on every service.

Pure parts first (which failures are retried, how long to wait, the
look-up-then-retry of creates), then the retrying session against the
fault proxy in front of a real HTTP server, then the real `inv up
--no-checks` and `inv down` through the test cloud's fault proxies with a
seeded quarter of all requests failing.
"""

import http.server
import json
import os
import threading
import time

import pytest
from keystoneauth1 import exceptions as ks_exc

from tasks.services import session as cloud
from tasks.model import settings
from tasks.support.errors import CloudError
from tests.harness import resources, run_inv
from tests.testcloud.faults import FaultProxy

# --- the policy, pure -------------------------------------------------------------


@pytest.mark.parametrize("method,authenticated,status,expected", [
    ("GET", None, 503, True), ("GET", None, 500, True), ("GET", None, 413, True), ("GET", None, 429, True),
    ("GET", None, 408, True), ("GET", None, 404, False), ("GET", None, 401, False), ("GET", None, 409, False),
    ("DELETE", None, 502, True), ("PUT", None, 504, True), ("HEAD", None, 503, True),
    # A create: only "not acted on" answers are sent again blindly.
    ("POST", None, 413, True), ("POST", None, 429, True), ("POST", None, 408, True),
    ("POST", None, 500, False), ("POST", None, 503, False), ("POST", None, 400, False),
    # The token request makes nothing: always safe.
    ("POST", False, 503, True), ("POST", False, 500, True), ("POST", False, 401, False),
])
def test_which_statuses_are_retried(method, authenticated, status, expected):
    assert cloud.retriable(method, authenticated, status=status) is expected


def test_which_connection_errors_are_retried():
    for error in (ks_exc.ConnectFailure("reset"), ks_exc.ConnectTimeout("slow"),
                  ks_exc.UnknownConnectionError("broken", None)):
        assert cloud.retriable("GET", error=error)
        assert cloud.retriable("POST", False, error=error)
        assert not cloud.retriable("POST", error=error)   # a create: look it up instead
    assert not cloud.retriable("GET", error=ks_exc.SSLError("bad certificate"))


def test_retry_delay_honours_retry_after_and_backs_off():
    assert cloud.retry_delay(3, {"Retry-After": "2"}) == 2.0
    assert cloud.retry_delay(0, {"Retry-After": "9999"}) == cloud.MAX_RETRY_AFTER
    assert [cloud.retry_delay(n, rng=lambda: 1.0) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert cloud.retry_delay(20, rng=lambda: 1.0) == cloud.BACKOFF_MAX
    assert cloud.retry_delay(1, rng=lambda: 0.0) == 0.5   # jitter: half to all of the step


class Outcome(Exception):
    pass


def test_create_or_find_uses_what_the_look_up_finds():
    calls, sleeps = [], []

    def create():
        calls.append("create")
        raise Outcome("reset")
    found = cloud.create_or_find("creating x", create, lambda: "made-after-all", lambda e: True,
                                 sleep=sleeps.append)
    assert found == "made-after-all" and calls == ["create"] and len(sleeps) == 1


def test_create_or_find_tries_again_when_nothing_was_made():
    attempts = []

    def create():
        attempts.append(1)
        if len(attempts) < 3:
            raise Outcome("503")
        return "new"
    assert cloud.create_or_find("creating x", create, lambda: None, lambda e: True, sleep=lambda s: None) == "new"
    assert len(attempts) == 3


def test_create_or_find_stops_at_its_budget_and_on_a_clear_refusal():
    with pytest.raises(CloudError) as info:
        cloud.create_or_find("creating x", lambda: (_ for _ in ()).throw(Outcome("503 again")), lambda: None,
                             lambda e: True, sleep=lambda s: None, attempts=4)
    assert str(info.value) == ("creating x: 503 again; nothing was made in 4 attempts; "
                               "re-run when the cloud answers again")
    looked = []
    with pytest.raises(ValueError):
        cloud.create_or_find("creating x", lambda: (_ for _ in ()).throw(ValueError("400")),
                             lambda: looked.append(1), lambda e: isinstance(e, Outcome), sleep=lambda s: None)
    assert looked == []   # a refusal is not looked up


# --- the session against the fault proxy --------------------------------------------

class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Echo.seen.append((self.command, self.path, body))
        data = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _answer


@pytest.fixture
def echo():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Echo.seen = []
    proxy = FaultProxy("http://127.0.0.1:%d" % server.server_address[1]).start()
    yield proxy
    proxy.stop()
    server.shutdown()
    server.server_close()


def session(sleeps, timeout=5):
    return cloud.RetryingSession(timeout=timeout, sleep=sleeps.append)


def test_a_read_survives_every_kind_of_fault(echo):
    echo.set(rate=0.5, seed=1, slow_seconds=0.6)
    sleeps = []
    s = session(sleeps, timeout=0.3)
    for n in range(12):
        assert s.get(f"{echo.url}/things/{n}").json()["path"] == f"/things/{n}"
    stats = echo.stats()
    assert stats["forwarded"] == 12 and stats["503"] and stats["drop"] and stats["slow"]
    assert len(sleeps) == stats["503"] + stats["drop"] + stats["slow"]
    assert [p for _, p, _ in Echo.seen] == [f"/things/{n}" for n in range(12)]   # each reached the service once


def test_503_retry_after_is_waited_out(echo):
    echo.set(rate=1.0, kinds=("503",), retry_after=2)
    sleeps = []
    with pytest.raises(ks_exc.ServiceUnavailable):
        session(sleeps).get(echo.url + "/x")
    assert sleeps == [2.0] * (cloud.ATTEMPTS - 1)
    assert echo.stats() == {"503": cloud.ATTEMPTS}
    assert Echo.seen == []


def test_a_create_is_not_sent_twice_on_a_dropped_connection(echo):
    echo.set(rate=1.0, kinds=("drop",))
    with pytest.raises(ks_exc.ConnectFailure):
        session([]).post(echo.url + "/servers", json={"server": {}})
    assert echo.stats() == {"drop": 1}
    # ... but the token request is.
    with pytest.raises(ks_exc.ConnectFailure):
        session([]).post(echo.url + "/tokens", json={}, authenticated=False)
    assert echo.stats() == {"drop": 1 + cloud.ATTEMPTS}


def test_a_lost_answer_means_the_create_happened(echo):
    """The "lost" kind: the service made it, the client saw a reset."""
    echo.set(rate=1.0, kinds=("lost",))
    with pytest.raises(ks_exc.ConnectFailure):
        session([]).post(echo.url + "/ports", json={"port": {"name": "p"}})
    assert Echo.seen == [("POST", "/ports", b'{"port": {"name": "p"}}')]
    assert echo.stats() == {"lost": 1}


def test_a_one_pass_body_is_sent_once(echo):
    # glance.upload streams the image (once=True): a retry would send what
    # is left of a consumed iterator as if it were the whole image.
    echo.set(rate=1.0, kinds=("503",))
    sleeps = []
    with pytest.raises(ks_exc.ServiceUnavailable):
        session(sleeps).put(echo.url + "/v2/images/x/file", data=iter([b"a", b"b"]), once=True)
    assert echo.stats() == {"503": 1} and sleeps == []
    # Without it the same PUT is retried.
    with pytest.raises(ks_exc.ServiceUnavailable):
        session(sleeps).put(echo.url + "/v2/images/x/file", data=b"ab")
    assert echo.stats() == {"503": 1 + cloud.ATTEMPTS}


def test_a_forwarded_body_streams_to_the_service():
    """An upload reaches the service while it is sent (Glance sees an image
    upload under way, and a client cut off mid-body cuts it off too)."""
    first = threading.Event()
    got = []

    class Chunked(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_PUT(self):
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                got.append(self.rfile.read(size))
                self.rfile.readline()
                first.set()
            self.send_response(204)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FaultProxy("http://127.0.0.1:%d" % server.server_address[1]).start()
    seen_early = []

    def body():
        yield b"first"
        seen_early.append(first.wait(5))     # the service has the first piece before the rest is sent
        yield b"rest"

    try:
        assert session([]).put(proxy.url + "/v2/images/x/file", data=body(), once=True).status_code == 204
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()
    assert seen_early == [True] and b"".join(got) == b"firstrest"


def test_the_retry_budget_bounds_the_wait(echo, monkeypatch):
    monkeypatch.setattr(cloud, "RETRY_BUDGET", 5.0)
    echo.set(rate=1.0, kinds=("503",), retry_after=2)
    sleeps = []
    with pytest.raises(ks_exc.ServiceUnavailable):
        session(sleeps).get(echo.url + "/x")
    assert sleeps == [2.0, 2.0]


def test_the_proxy_forwards_bodies_and_match_limits_faults(echo):
    echo.set(rate=1.0, kinds=("503",), match=r"^DELETE ")
    s = session([])
    assert s.post(echo.url + "/a?b=c", json={"k": "v"}).json() == {"method": "POST", "path": "/a?b=c",
                                                                    "body": '{"k": "v"}'}
    with pytest.raises(ks_exc.ServiceUnavailable):
        s.delete(echo.url + "/a")
    assert echo.stats() == {"forwarded": 1, "503": cloud.ATTEMPTS}


# --- the tool against the faulty test cloud -----------------------------------------------

def test_the_token_and_its_refresh_survive_identity_faults(test_cloud, cloud_env):
    s = settings.load(environ=cloud_env)
    c = cloud.Cloud(s)
    test_cloud.faults(0.5, seed=11, services=["identity"], slow_seconds=0.5)
    try:
        first = c.token
        c.session.invalidate()          # as after a 401 on an expired token
        again = c.session.get_token()
    finally:
        test_cloud.faults(0)
    stats = test_cloud.fault_stats()["identity"]
    assert first and again
    assert stats.get("forwarded", 0) >= 2 and sum(v for k, v in stats.items() if k != "forwarded") >= 1


RUNS = int(os.environ.get("FAULT_RUNS", "20"))
RATE = 0.25
PARALLEL = 4


def test_up_and_down_survive_a_quarter_of_all_requests_failing(test_cloud, cloud_env, capsys):
    """RUNS seeded runs of `inv up --no-checks` then `inv down`, each with a
    quarter of all requests to identity, compute, network and object store
    failing (503 + Retry-After, dropped connection, or no answer within
    API_TIMEOUT). Every command must succeed on its first try, with no
    duplicate server and nothing left behind. Runs go PARALLEL at a time,
    each through its own seeded fault proxies (TestCloud.fault_lane)."""
    from concurrent.futures import ThreadPoolExecutor


    prefix = cloud_env["INSTANCE_PREFIX"]
    env = dict(cloud_env, NUM_NODES="1", KUBE_IMAGE="CoreOS (Stable)", BOOT_TIMEOUT="300", API_TIMEOUT="1")
    run_inv(["build", "--release", env["KUBE_VERSION"]], env)
    before = resources(test_cloud)

    def one(seed):
        name = f"{prefix}f{seed}"
        lane, proxies = test_cloud.fault_lane(RATE, seed, slow_seconds=1.5)
        # Its own container: another run's `down` may remove a shared empty one.
        e = dict(env, INSTANCE_PREFIX=name, CLOUDFILES_CONTAINER=f"{name}-releases", **lane)
        start = time.monotonic()
        try:
            up = run_inv(["up", "--no-checks"], e, check=False)
            names = sorted(srv["name"] for srv in test_cloud.servers() if srv["name"].startswith(name + "-"))
            down = run_inv(["down", "--yes"], e, check=False)
            left = [srv["name"] for srv in test_cloud.servers() if srv["name"].startswith(name + "-")]
        finally:
            for proxy in proxies.values():
                proxy.stop()
        stats = [p.stats() for p in proxies.values()]
        failed = sum(v for svc in stats for k, v in svc.items() if k != "forwarded")
        total = sum(sum(svc.values()) for svc in stats)
        ok = (up.returncode == 0 and down.returncode == 0 and names == [f"{name}-master", f"{name}-node-1"]
              and not left)
        return dict(seed=seed, ok=ok, up=up.returncode, down=down.returncode, names=names, failed=failed,
                    total=total, elapsed=time.monotonic() - start, out=up.stdout + down.stdout)

    start = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        rows = list(pool.map(one, range(RUNS)))
    wall = time.monotonic() - start
    after = resources(test_cloud)
    survived = sum(r["ok"] for r in rows)
    with capsys.disabled():
        print(f"\nfaults: {survived}/{RUNS} seeded runs survived `inv up --no-checks` + `inv down` with "
              f"{RATE:.0%} of requests failing ({wall:.0f}s, {PARALLEL} at a time); nothing left behind: "
              f"{after == before}")
        for r in rows:
            print(f"  seed {r['seed']:>2}: up {r['up']} down {r['down']}, {len(r['names'])} servers after up, "
                  f"{r['failed']}/{r['total']} requests failed ({r['failed'] / max(r['total'], 1):.0%}), "
                  f"{r['elapsed']:.0f}s")
    bad = [r for r in rows if not r["ok"]]
    assert not bad, "\n\n".join(f"seed {r['seed']}: {r['names']}\n{r['out'][-3000:]}" for r in bad)
    assert after == before
