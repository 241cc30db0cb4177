"""
A fault-injecting HTTP reverse proxy, for any HTTP service.

    proxy = FaultProxy("http://127.0.0.1:5000").start()   # proxy.url -> give this to the client
    proxy.set(rate=0.25, seed=7)          # a seeded quarter of requests fail
    proxy.set(rate=0)                     # off again (the default)
    proxy.stats()                         # {"forwarded": n, "503": n, "drop": n, "slow": n}
    proxy.stop()

A failing request (but a "lost" one) never reaches the service: the proxy
reads it whole and then answers in one of these ways (`kinds`, chosen at random with the
same seeded generator):

    "503"   503 Service Unavailable with Retry-After: `retry_after` seconds
    "drop"  closes the connection without an answer (the client sees a
            reset / remote disconnect)
    "slow"  answers nothing for `slow_seconds` (set it above the client's
            timeout), then closes the connection
    "lost"  forwards the request, then closes the connection without the
            service's answer: a create that happened although the client
            saw a failure (false negative). Not in the default `kinds`.

Everything else is forwarded as is (method, path, query, headers, body) and
the service's answer sent back. The Host header is kept, so services that
build absolute URLs from it (Mimic's catalog, `next` links) point back at
the proxy; `host_header` replaces it instead. `match` (a regex searched in
"METHOD /path?query") limits faults to some requests.

Threads in the calling process (ThreadingHTTPServer). A forwarded request's
body streams through as it arrives (an image upload reaches Glance while it
is sent, and a client cut off mid-body cuts the service off too); answers
are buffered in memory, which suits API answers. Decisions come from
one random.Random(seed) in arrival order, so one client's run is
reproducible; concurrent clients share the sequence.
"""
from __future__ import annotations

import http.client
import http.server
import json
import random
import re
import socket
import threading
import time
import urllib.parse

KINDS = ("503", "drop", "slow")
ALL_KINDS = KINDS + ("lost",)
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length"}


class FaultProxy:
    def __init__(self, upstream, port=0, seed=0, host_header=None, upstream_timeout=600):
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http":
            raise ValueError("FaultProxy forwards to plain http:// upstreams only")
        self.upstream = upstream.rstrip("/")
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._port = port
        self.host_header = host_header
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._counts = {}
        self.set(rate=0.0, seed=seed)
        self._server = None
        self._thread = None

    # -- control -----------------------------------------------------------
    def set(self, rate, seed=None, kinds=KINDS, retry_after=1, slow_seconds=3.0, match=None):
        """Fail a `rate` share (0..1) of the requests `match` selects (all by
        default) with `kinds`. A new `seed` restarts the generator."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate is a share between 0 and 1")
        unknown = set(kinds) - set(ALL_KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds must be some of {ALL_KINDS}")
        with self._lock:
            self.rate = rate
            self.kinds = tuple(kinds)
            self.retry_after = retry_after
            self.slow_seconds = slow_seconds
            self.match = re.compile(match) if match else None
            if seed is not None:
                self._rng = random.Random(seed)

    def off(self):
        self.set(rate=0.0)

    def stats(self):
        with self._lock:
            return dict(self._counts)

    def reset_stats(self):
        with self._lock:
            self._counts.clear()

    def decide(self, method, path):
        """The fault for one request, or None to forward it."""
        with self._lock:
            fault = None
            if self.rate > 0 and (self.match is None or self.match.search(f"{method} {path}")):
                if self._rng.random() < self.rate:
                    fault = self._rng.choice(self.kinds)
            key = fault or "forwarded"
            self._counts[key] = self._counts.get(key, 0) + 1
            return fault

    # -- lifecycle -----------------------------------------------------------
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _Server(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # clients that time out and hang up are part of the job


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass   # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self):
        proxy = self.owner
        fault = proxy.decide(self.command, self.path)
        if fault in ("503", "drop", "slow"):
            self._read_body()
        if fault == "503":
            payload = json.dumps({"serviceUnavailable": {"code": 503, "message": "injected fault"}}).encode()
            self.send_response(503)
            self.send_header("Retry-After", str(proxy.retry_after))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if fault == "drop":
            self._drop()
            return
        if fault == "slow":
            time.sleep(proxy.slow_seconds)
            self._drop()
            return
        self._forward(answer=fault != "lost")

    def _pipe_body(self, conn, chunked, length):
        """Copy the request body to the service as it arrives; False when
        the client stopped short of its end."""
        if not chunked:
            left = length
            while left:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    return False
                conn.send(data)
                left -= len(data)
            return True
        while True:
            line = self.rfile.readline()
            if not line:
                return False
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:                       # trailers, then the blank line
                    trailer = self.rfile.readline()
                    if not trailer:
                        return False
                    if trailer in (b"\r\n", b"\n"):
                        break
                conn.send(b"0\r\n\r\n")
                return True
            data = self.rfile.read(size)
            if len(data) < size:
                return False
            self.rfile.readline()
            conn.send(b"%x\r\n%s\r\n" % (size, data))

    def _forward(self, answer=True):
        proxy = self.owner
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if proxy.host_header:
            headers = {k: v for k, v in headers.items() if k.lower() != "host"}
            headers["Host"] = proxy.host_header
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        conn = http.client.HTTPConnection(proxy._upstream_host, proxy._upstream_port,
                                          timeout=proxy.upstream_timeout)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in headers.items():
                conn.putheader(key, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif length or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(length))
            conn.endheaders()
            if not self._pipe_body(conn, chunked, length):
                self._drop()       # the client went away: so does the service's request
                return
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException, ValueError):
            self._drop()   # the service itself dropped us: pass that on
            return
        finally:
            conn.close()
        if not answer:
            self._drop()
            return
        self.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        if self.command == "HEAD":
            length = resp.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
        elif resp.status not in (204, 304) and not 100 <= resp.status < 200:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_COPY = do_OPTIONS = _handle
