"""Small helpers shared by the test cloud modules."""
import os
import socket
import time
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=20.0, what="service", procs=()):
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError("%s: process %s exited with %s"
                                   % (what, p.args[:3], p.returncode))
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    raise TimeoutError("timed out waiting for %s" % what)


def http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return 200 <= r.status < 300


def port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
