"""
TestCloud: Mimic (identity, Nova, Cloud Networks) + real Swift + sshd +
release mirror, all on loopback, started in one call.
"""
from __future__ import annotations

import json
import os
import shlex
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.harness.lifecycle import Bed, stop_process_groups
from tests.testcloud import release_mirror, sshd, swift
from tests.testcloud.faults import FaultProxy
from tests.testcloud.netns import assert_loopback_namespace
from tests.testcloud.util import (REPO_ROOT, free_port, http_ok, port_open,
                                  wait_for)

REGION = "ORD"


class TestCloud(Bed):
    """Start with ``TestCloud.start(workdir)``; stop with ``.stop()`` or use
    it as a context manager (tests.harness.Bed)."""

    def __init__(self, workdir, username="testcloud", api_key=None,
                 tenant_id="987654", kube_version="v1.31.4", password=None):
        self.workdir = os.path.abspath(workdir)
        self.username = username
        self.api_key = api_key or secrets.token_hex(16)
        self.password = password or secrets.token_hex(12)
        self.tenant_id = tenant_id
        self.region = REGION
        self.release_version = kube_version
        self._procs = []
        self._mirror = None
        self.startup_seconds = None

    # -- lifecycle --------------------------------------------------------
    def _start(self):
        assert_loopback_namespace()
        t0 = time.monotonic()
        os.makedirs(self.workdir, exist_ok=True)
        self.health_dir = os.path.join(self.workdir, "health")
        self.servers_dir = os.path.join(self.workdir, "servers")
        for d in (self.health_dir, self.servers_dir):
            os.makedirs(d, exist_ok=True)
        mimic_port, swift_port = free_port(), free_port()
        swift_internal_port = free_port()
        self.mimic_url = "http://127.0.0.1:%d" % mimic_port
        self.swift_url = "http://127.0.0.1:%d" % swift_port
        # The tool reaches every service through a fault proxy (faults.py),
        # off until a test calls faults(); the catalog names the proxies.
        # Tests' own requests (direct_auth_url, storage_url, mimic_url) go
        # straight to the services.
        self._start_proxies()
        self.direct_auth_url = self.mimic_url + "/identity/v2.0"
        self.auth_url = self.proxies["identity"].url + "/identity/v2.0"
        self.storage_url = "%s/v1/AUTH_%s" % (self.swift_url, self.tenant_id)
        # What the catalog names as the public object store (the proxy).
        self.public_storage_url = "%s/v1/AUTH_%s" % (
            self.proxies["object-store"].url, self.tenant_id)
        # The catalog's internal (ServiceNet) object-store URL: another
        # Swift proxy on the same store, without /info.
        self.swift_internal_url = "http://127.0.0.1:%d" % swift_internal_port
        self.internal_storage_url = "%s/v1/AUTH_%s" % (
            self.swift_internal_url, self.tenant_id)

        ready = os.path.join(self.workdir, "mimic.ready")
        env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep +
                   os.environ.get("PYTHONPATH", ""))
        log = open(os.path.join(self.workdir, "mimic.log"), "ab")
        self._mimic = subprocess.Popen(
            [sys.executable, "-m", "tests.testcloud.mimic_server",
             "--port", str(mimic_port),
             "--swift-url", self.proxies["object-store"].url,
             "--network-url", self.proxies["network"].url,
             "--username", self.username, "--api-key", self.api_key,
             "--tenant-id", self.tenant_id, "--ready-file", ready,
             "--password", self.password,
             "--swift-internal-url", self.swift_internal_url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT, env=env, start_new_session=True)
        log.close()
        self._procs.append(self._mimic)

        swift_procs, self._swift_ports, _ = swift.start(
            os.path.join(self.workdir, "swift"), self.mimic_url,
            proxy_port=swift_port, internal_port=swift_internal_port)
        self._procs.extend(swift_procs)

        self._mirror = release_mirror.ReleaseMirror(
            os.path.join(self.workdir, "mirror"), self.release_version)
        self.release_base_url = self._mirror.base_url
        self.flatcar = release_mirror.FlatcarMirror(self._mirror.root, self.release_base_url)

        self._sshd, self.sshd_port, self.ssh_config = sshd.start(
            os.path.join(self.workdir, "ssh"), self.mimic_url,
            self.health_dir, self.servers_dir)
        self._procs.append(self._sshd)

        wait_for(lambda: os.path.exists(ready), procs=[self._mimic],
                 what="mimic")
        wait_for(lambda: http_ok(self.swift_url + "/info") and all(
            port_open(p) for p in self._swift_ports.values()),
            procs=swift_procs, what="swift")
        wait_for(lambda: port_open(self.sshd_port), procs=[self._sshd],
                 what="sshd")
        info = self._get("/testcloud/info")
        self.behaviors_url = info["behaviors_url"].format(
            tenant=self.tenant_id)
        self.env_file = os.path.join(self.workdir, "testcloud.env")
        with open(self.env_file, "w") as f:
            for k, v in self.env().items():
                f.write("%s=%s\n" % (k, shlex.quote(v)))
        self.reset_request_counts()
        self.startup_seconds = time.monotonic() - t0

    def _proxy_set(self):
        compute = FaultProxy(self.mimic_url).start()
        # Mimic builds the compute URLs of the catalog from the Host of the
        # token request: the identity proxy names the compute proxy.
        identity = FaultProxy(self.mimic_url, host_header="127.0.0.1:%d"
                              % compute.port).start()
        return {"identity": identity, "compute": compute,
                "network": FaultProxy(self.mimic_url).start(),
                "object-store": FaultProxy(self.swift_url).start()}

    def _start_proxies(self):
        self.proxies = {}
        self.proxies = self._proxy_set()

    def fault_lane(self, rate, seed, **options):
        """A private set of fault proxies for one client run, so that runs
        side by side each get their own seeded faults. Returns (env,
        proxies): env points the tool at them (OS_AUTH_URL, whose catalog
        names the lane's compute proxy, and NETWORK_ENDPOINT,
        STORAGE_ENDPOINT); stop the proxies when done."""
        proxies = self._proxy_set()
        for offset, (_, proxy) in enumerate(sorted(proxies.items())):
            proxy.set(rate, seed=seed * 16 + offset, **options)
        env = {"OS_AUTH_URL": proxies["identity"].url + "/identity/v2.0",
               "NETWORK_ENDPOINT": proxies["network"].url
               + "/cloudNetworks/%s/v2.0" % self.region,
               "STORAGE_ENDPOINT": "%s/v1/AUTH_%s" % (
                   proxies["object-store"].url, self.tenant_id)}
        return env, proxies

    def faults(self, rate, seed=0, services=None, **options):
        """Fail a seeded `rate` share of the tool's requests to `services`
        (default: identity, compute, network, object-store) before they reach
        the service; options as FaultProxy.set (kinds, retry_after,
        slow_seconds, match). rate=0 switches them off. Each proxy gets its
        own generator, seeded from `seed` and its service."""
        for offset, (name, proxy) in enumerate(sorted(self.proxies.items())):
            if services is None or name in services:
                proxy.set(rate, seed=seed * 16 + offset, **options)
            else:
                proxy.off()

    def fault_stats(self):
        """{service: {"forwarded": n, "503": n, "drop": n, "slow": n}}."""
        return {name: proxy.stats() for name, proxy in self.proxies.items()}

    def stop(self):
        """Kill every process group we started; idempotent."""
        for proxy in getattr(self, "proxies", {}).values():
            proxy.stop()
        self.proxies = {}
        stop_process_groups(self._procs)
        self._procs = []
        if self._mirror is not None:
            self._mirror.stop()
            self._mirror = None

    # -- configuration for the tool --------------------------------------
    def env(self):
        return {
            "OS_AUTH_URL": self.auth_url,
            "OS_USERNAME": self.username,
            "OS_API_KEY": self.api_key,
            "OS_REGION_NAME": self.region,
            "OS_TENANT_NAME": self.tenant_id,
            # Mimic's image list is Rackspace's of its day: no Flatcar yet.
            "KUBE_IMAGE": "CoreOS (Stable)",
            "SSH_USER": "root",
            "SSH_CONFIG": self.ssh_config,
            "KUBE_RELEASE_URL": self.release_base_url,
            "KUBE_VERSION": self.release_version,
            **self.flatcar.env(),
        }

    # -- HTTP helpers -----------------------------------------------------
    def _request(self, method, url, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def _get(self, path):
        return self._request("GET", self.mimic_url + path)

    def token(self):
        """A Mimic token for the test user (same one the tool will get)."""
        body = {"auth": {"RAX-KSKEY:apiKeyCredentials": {
            "username": self.username, "apiKey": self.api_key}}}
        return self._request("POST", self.direct_auth_url + "/tokens",
                             body)["access"]["token"]["id"]

    # -- fault injection ----------------------------------------------------
    def inject_nova_behavior(self, name, parameters=None, criteria=None,
                             event="creation", server_name=None):
        """Register a Mimic Nova behavior; returns its id.

        name: "fail" ({"code", "message", "type"}), "false-negative" (same
        params; server IS created), "error" (server goes to ERROR),
        "build" ({"duration": seconds} in BUILD), "active-then-error"
        ({"duration"}), "over-limit" ({"retry_after": s}: 413 + Retry-After).
        criteria: Mimic criteria list, e.g. [{"server_name": "^t1a2.*"}];
        server_name=REGEX is a shortcut.  Default: every server.
        """
        if criteria is None:
            criteria = [{"server_name": server_name or ".*"}]
        resp = self._request(
            "POST", "%s/%s" % (self.behaviors_url, event),
            {"name": name, "parameters": parameters or {},
             "criteria": criteria}, {"X-Auth-Token": self.token()})
        return resp["id"]

    def remove_nova_behavior(self, behavior_id, event="creation"):
        self._request("DELETE", "%s/%s/%s" % (self.behaviors_url, event,
                                              behavior_id),
                      headers={"X-Auth-Token": self.token()})

    def set_server_status(self, server_id, status):
        """Force a Nova server's status (e.g. "ERROR") via Mimic's control
        API."""
        url = self.behaviors_url.rsplit("/behaviors", 1)[0] + "/attributes/"
        self._request("POST", url, {"status": {server_id: status}},
                      {"X-Auth-Token": self.token()})

    # -- servers / health -------------------------------------------------
    def servers(self):
        """Live servers of all tenants: id, name, status, public_ipv4, ..."""
        return self._get("/testcloud/servers")

    def keypairs(self):
        return self._get("/testcloud/keypairs")

    def set_server_health(self, server_name, unit=None, active=True,
                          journal=None, node_ready=None, drain_error=None,
                          **pods):
        """Make ``unit`` on ``server_name`` active/failed (systemctl,
        journalctl, curl /readyz for kube-apiserver, kubectl Ready for
        kubelet) and/or set the node's Ready condition.  ``pods``:
        flannel=STATE (its flannel pod), coredns=STATE (the CoreDNS pods,
        on the master), pod_network=False (dig from it times out); see
        stubs.py."""
        unknown = set(pods) - {"flannel", "coredns", "pod_network"}
        if unknown:
            raise TypeError("unknown health: %s" % ", ".join(sorted(unknown)))
        path = os.path.join(self.health_dir, server_name + ".json")
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {}
        if unit is not None:
            u = state.setdefault("units", {}).setdefault(unit, {})
            u["active"] = bool(active)
            if journal is not None:
                u["journal"] = journal
        if node_ready is not None:
            state["node_ready"] = bool(node_ready)
        if drain_error is not None:
            # `kubectl drain` of this node fails with this reason ("" clears)
            state["drain_error"] = drain_error
        state.update(pods)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, path)

    def kube_objects(self, server_name, namespace, kind):
        """{name: object} that `kubectl create -f -` over SSH recorded on
        ``server_name`` (see stubs.py)."""
        import yaml

        folder = os.path.join(self.servers_dir, server_name, "kube-objects", namespace, kind)
        if not os.path.isdir(folder):
            return {}
        return {name[:-len(".yaml")]: yaml.safe_load(open(os.path.join(folder, name)))
                for name in sorted(os.listdir(folder)) if name.endswith(".yaml")}

    def reset_server_health(self, server_name=None):
        for name in os.listdir(self.health_dir):
            if server_name is None or name == server_name + ".json":
                os.unlink(os.path.join(self.health_dir, name))

    # -- snapshots ----------------------------------------------------------
    def resources(self):
        """Everything in the account that up/down could touch, as sets:
        servers, keypairs, networks, subnets, ports (IDs) and objects
        ("container/name", and "container/" for each container)."""
        token = self.token()
        network_url = self.mimic_url + "/cloudNetworks/%s/v2.0" % self.region

        def get(url):
            req = urllib.request.Request(url, headers={"X-Auth-Token": token})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)

        objects = set()
        for container in [c["name"] for c in get(self.storage_url + "?format=json")]:
            objects |= {"%s/%s" % (container, o["name"])
                        for o in get("%s/%s?format=json" % (self.storage_url, container))}
            objects.add(container + "/")
        return {
            "servers": {srv["id"] for srv in self.servers()},
            "keypairs": {kp["name"] for kp in self.keypairs()},
            **{kind: {item["id"] for item in get("%s/%s" % (network_url, kind))[kind]}
               for kind in ("networks", "subnets", "ports")},
            "objects": objects,
        }

    # -- request counters ---------------------------------------------------
    def request_counts(self):
        """Requests served since start/reset, per service: identity,
        compute, compute-behaviors, network, object-store, other."""
        counts = dict(self._get("/testcloud/requests"))
        try:
            with open(os.path.join(self.workdir, "swift", "log",
                                   "requests.log")) as f:
                counts["object-store"] = sum(1 for _ in f)
        except OSError:
            counts["object-store"] = 0
        return counts

    def set_compute_limits(self, page_size=None, post_limit=None,
                           window=None, model=None):
        """Nova's paging (at most page_size servers or images a page; 5
        at start) and its POST rate limit (post_limit POSTs per window
        seconds, 0 = none, the start), enforced by `model`: "leaky"
        (Nova's leaky bucket, the start), "fixed" or "sliding" window (see
        mimic_ext.Limits): beyond it, 413 + Retry-After and /limits shows
        the rate. Returns the current figures and the count of 413s
        answered since the last call that set something."""
        return self._request("POST", self.mimic_url + "/testcloud/limits",
                             {"page_size": page_size, "post_limit": post_limit,
                              "window": window, "model": model})

    def compute_limits(self):
        """{"page_size", "post_limit", "window", "posts", "over_limit"}."""
        return self._get("/testcloud/limits")

    def compute_request_count(self):
        return self.request_counts().get("compute", 0)

    def request_log(self, since=0):
        """Compute, network and identity requests (oldest first) after
        sequence number `since`: dicts with seq, t (Mimic's time.time() on
        arrival), method, path, query, service, status."""
        return self._get("/testcloud/requests/log?since=%d" % since)

    def request_log_mark(self):
        """A `since` for request_log: the requests from now on."""
        log = self.request_log()
        return log[-1]["seq"] if log else 0

    def inject_fault(self, match, status, count=1, headers=None, body=None):
        """Answer the next `count` requests whose "METHOD /path?query"
        matches the regex `match` with `status` (and `headers`, JSON
        `body`) before they reach Mimic: compute, network and identity."""
        self._request("POST", self.mimic_url + "/testcloud/faults",
                      {"match": match, "status": status, "count": count,
                       "headers": headers or {}, "body": body or {}})

    def clear_faults(self):
        self._request("DELETE", self.mimic_url + "/testcloud/faults")

    def reset_request_counts(self):
        self._request("POST", self.mimic_url + "/testcloud/requests/reset", {})
        log = os.path.join(self.workdir, "swift", "log", "requests.log")
        if os.path.exists(log):
            open(log, "w").close()


def remove_workdir(path):
    shutil.rmtree(path, ignore_errors=True)
