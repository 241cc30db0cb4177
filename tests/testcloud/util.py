"""Small helpers shared by the test cloud modules."""
import socket
import time
import urllib.request

from tests.harness.inv import REPO_ROOT
from tests.harness.ports import free_port

__all__ = ["REPO_ROOT", "free_port", "wait_for", "http_ok", "port_open"]


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
