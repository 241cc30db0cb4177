"""
OSBed: real OpenStack on loopback (Keystone, Glance, Placement, Neutron API,
Nova with the fake virt driver, Swift behind Keystone, RabbitMQ), started in
one call.  The services run from .venv-openstack (requirements-openstack.txt);
this module only starts processes and talks HTTP, so it imports nothing of
OpenStack into the test process.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

from tests.harness.lifecycle import Bed, stop_process_groups
from tests.harness.ports import free_port
from tests.osbed import confs
from tests.testcloud import sshd, swift
from tests.testcloud.cloud import TestCloud
from tests.testcloud.netns import assert_loopback_namespace
from tests.testcloud.util import REPO_ROOT, port_open, wait_for

REGION = "DFW3"
# What a Flex account looks like: user and project in rackspace_cloud_domain,
# the project named <account>_Flex.
DOMAIN = "rackspace_cloud_domain"
PROJECT = "123456_Flex"
USERNAME = "osbed"
CLOUD_NAME = "osbed"
EXTERNAL_NETWORK = "PUBLICNET"
EXTERNAL_CIDR = "198.51.100.0/24"        # floating IPs; ssh maps to 127.51.100.x
IMAGE_NAME = "flatcar-stable-osbed"
# (name, vCPUs, RAM MB, disk GB): Flex's <class>.<generation>.<vCPU>.<RAM GB>.
FLAVORS = (("gp.0.1.2", 1, 2048, 10), ("gp.0.2.4", 2, 4096, 20),
           ("gp.0.4.8", 4, 8192, 40), ("gp.0.4.16", 4, 16384, 40),
           ("gp.0.8.16", 8, 16384, 80))
WSGI = {   # catalog type -> (module:attr, program name, config env)
    "identity": ("keystone.server.wsgi:initialize_public_application()",
                 "keystone", "OS_KEYSTONE_CONFIG_DIR"),
    "image": ("glance.wsgi.api:application", "glance-api",
              "OS_GLANCE_CONFIG_DIR"),
    "placement": ("placement.wsgi.api:application", "placement-api",
                  "OS_PLACEMENT_CONFIG_DIR"),
    "network": ("neutron.wsgi.api:application", "neutron-api",
                "OS_NEUTRON_CONFIG_DIR"),
    "compute": ("nova.wsgi.osapi_compute:application", "nova-api",
                "OS_NOVA_CONFIG_DIR"),
}
CATALOG = {   # catalog type -> (service name, path on the endpoint)
    "image": ("glance", ""),
    "placement": ("placement", ""),
    "network": ("neutron", ""),
    "compute": ("nova", "/v2.1"),
    "object-store": ("swift", "/v1/AUTH_$(project_id)s"),
}


def venv_dir():
    """The OpenStack virtualenv: OSBED_VENV, else .venv-openstack in the
    repo (scripts/bootstrap --tests makes it)."""
    return os.environ.get("OSBED_VENV") or os.path.join(REPO_ROOT,
                                                        ".venv-openstack")


def available():
    """None if the bed can start here, else why not (one line)."""
    if not os.path.exists(os.path.join(venv_dir(), "bin", "nova-compute")):
        return ("no OpenStack virtualenv at %s: run scripts/bootstrap --tests"
                % venv_dir())
    if not os.path.exists(RABBITMQ):
        return "no %s: apt-get install rabbitmq-server" % RABBITMQ
    return None


RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"
# Tenant networks' fixed IPs: a jump host's sshd forwards to <fixed ip>:22,
# and inside the bed's namespace these ranges are local, so the forward
# lands on the bed's sshd (port 22), which works out the server reached.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def write_service_configs(lay, venv):
    """The services' config files under <lay.root>/etc (and neutron's
    mechanism driver entry point under <lay.root>/pylib)."""
    shipped = os.path.join(venv, "etc")
    files = {
        ("keystone", "keystone.conf"): confs.keystone(lay),
        ("glance", "glance-api.conf"): confs.glance(lay),
        ("placement", "placement.conf"): confs.placement(lay),
        ("neutron", "neutron.conf"): confs.neutron(lay),
        ("nova", "nova.conf"): confs.nova(lay, "osbed-compute"),
    }
    for (service, name), text in files.items():
        os.makedirs(os.path.join(lay.root, "etc", service),
                    exist_ok=True)
        with open(os.path.join(lay.root, "etc", service, name), "w") as f:
            f.write(text)
    for service, name in (("glance", "glance-api-paste.ini"),
                          ("neutron", "api-paste.ini"),
                          ("nova", "api-paste.ini")):
        shutil.copy(os.path.join(shipped, service, name),
                    os.path.join(lay.root, "etc", service, name))
    # ML2 finds mechanism drivers by entry point only: declare ours in a
    # dist-info of its own on neutron's PYTHONPATH.
    dist = os.path.join(lay.root, "pylib",
                        "osbed_neutron-1.0.dist-info")
    os.makedirs(dist, exist_ok=True)
    with open(os.path.join(dist, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: osbed-neutron\n"
                "Version: 1.0\n")
    with open(os.path.join(dist, "entry_points.txt"), "w") as f:
        f.write("[neutron.ml2.mechanism_drivers]\nosbed_bindall = "
                "tests.osbed.neutron_bindall:BindAllDriver\n")


class OSBed(Bed):
    """``OSBed.start(workdir)``; ``.stop()`` or use as a context manager
    (tests.harness.Bed).

    front: optional callable(upstream_url) -> object with ``.url`` and
    ``.stop()`` (e.g. tests.testcloud.faults.FaultProxy(u).start()); the
    public catalog endpoint of every service then points at it, while the
    services reach each other on their internal endpoints directly.
    """

    def __init__(self, workdir, front=None):
        self.workdir = os.path.abspath(workdir)
        self.region = REGION
        self.domain = DOMAIN
        self.project_name = PROJECT
        self.username = USERNAME
        self.password = secrets.token_hex(12)
        self.admin_password = secrets.token_hex(12)
        self.image_name = IMAGE_NAME
        self.external_network = EXTERNAL_NETWORK
        self.flavors = FLAVORS
        self._front_factory = front
        self.fronts = {}
        self._procs = {}
        self.timings = {}
        self.startup_seconds = None

    # -- lifecycle --------------------------------------------------------
    def _mark(self, what, t0):
        self.timings[what] = round(time.monotonic() - t0, 1)

    def _start(self):
        assert_loopback_namespace()
        why = available()
        if why:
            raise RuntimeError("OpenStack bed: " + why)
        t0 = time.monotonic()
        self.venv = venv_dir()
        for d in ("db", "log", "lock", "etc", "keystone", "glance/images",
                  "glance/staging", "glance/tasks", "neutron", "nova",
                  "rabbitmq", "pylib"):
            os.makedirs(os.path.join(self.workdir, d), exist_ok=True)
        ports = {k: free_port() for k in
                 ("identity", "image", "placement", "network", "compute",
                  "object-store")}
        self.lay = confs.Layout(self.workdir, self.region,
                                secrets.token_hex(12), free_port(), ports)
        # WSGI services listen twice: the internal endpoints (the services
        # among themselves) and the public ones (the tool), so the counters
        # and fault proxies see only the tool's requests.
        self.public_ports = {k: free_port() for k in WSGI}
        self.public_ports["object-store"] = ports["object-store"]
        self.public_urls = {}
        for kind in ports:
            upstream = "http://127.0.0.1:%d" % self.public_ports[kind]
            if self._front_factory is not None:
                self.fronts[kind] = self._front_factory(upstream)
                self.public_urls[kind] = self.fronts[kind].url.rstrip("/")
            else:
                self.public_urls[kind] = upstream
        self.auth_url = self.public_urls["identity"] + "/v3"
        self._write_configs()
        self._start_rabbitmq()
        self._prepare_databases()
        self._mark("databases", t0)
        # Keystone's content is in the databases already (users, catalog):
        # every service starts at once (Nova's own wait for RabbitMQ, see
        # nova_service.py).
        for name in ("conductor", "scheduler", "compute"):
            self._spawn_nova(name)
        for kind in WSGI:
            self._serve(kind)
        self._start_swift()
        self._start_sshd()
        wait_for(lambda: port_open(self.lay.rabbit_port), timeout=60,
                 procs=[self._procs["rabbitmq"]], what="rabbitmq")
        self._mark("rabbitmq", t0)
        wait_for(lambda: self._http_ok(self.lay.identity), timeout=90,
                 procs=[self._procs["identity"]], what="keystone")
        self._mark("keystone up", t0)
        for kind, path in (("image", "/versions"), ("placement", "/"),
                           ("network", "/"), ("compute", "/")):
            wait_for(lambda: self._http_ok(self.lay.url(kind) + path),
                     timeout=90, procs=[self._procs[kind]], what=kind)
        wait_for(lambda: self._http_ok(self.lay.url("object-store") +
                                       "/info"),
                 timeout=30, procs=self._swift_procs, what="swift")
        wait_for(lambda: port_open(self.sshd_port), procs=[self._procs["sshd"]],
                 what="sshd")
        self._mark("apis up", t0)
        self._populate()
        self._mark("populated", t0)
        wait_for(self._compute_host_mapped, timeout=90,
                 procs=[self._procs["nova-compute"],
                        self._procs["nova-scheduler"],
                        self._procs["nova-conductor"]],
                 what="nova-compute to be discovered")
        self._mark("compute ready", t0)
        self._write_clouds_yaml()
        self.reset_request_counts()
        self.startup_seconds = time.monotonic() - t0

    def stop(self):
        """Kill every process group we started; idempotent."""
        stop_process_groups(list(self._procs.values()) + getattr(self, "_swift_procs", []))
        self._procs = {}
        self._swift_procs = []
        for f in self.fronts.values():
            f.stop()
        self.fronts = {}
        for cidr in getattr(self, "_routes", []):
            subprocess.run(["ip", "route", "del", "local", cidr, "dev", "lo"],
                           check=False)
        self._routes = []

    # -- processes --------------------------------------------------------
    def _bin(self, name):
        return os.path.join(self.venv, "bin", name)

    def _conf(self, service, name):
        return os.path.join(self.workdir, "etc", service, name)

    def _env(self, **extra):
        env = dict(os.environ)
        env.pop("OS_CLOUD", None)
        env.update(PYTHONPATH=os.pathsep.join(
            [REPO_ROOT, os.path.join(self.workdir, "pylib")]),
            HOME=self.workdir, PYTHONDONTWRITEBYTECODE="1")
        env.update(extra)
        return env

    def _spawn(self, name, argv, env=None):
        log = open(os.path.join(self.workdir, "log", name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=self.workdir,
                             env=env or self._env(), start_new_session=True)
        log.close()
        self._procs[name] = p
        return p

    def _spawn_nova(self, name):
        env = self._env(OSBED_RABBIT_PORT=str(self.lay.rabbit_port))
        if name == "compute":
            env["OSBED_CONDUCTOR_DB"] = os.path.join(self.workdir, "db",
                                                     "nova.db")
        self._spawn("nova-" + name,
                    [self._bin("python"), "-m", "tests.osbed.nova_service",
                     name, "--config-file", self._conf("nova", "nova.conf")],
                    env=env)

    def _serve(self, kind):
        app, prog, conf_env = WSGI[kind]
        service = {"identity": "keystone", "image": "glance",
                   "placement": "placement", "network": "neutron",
                   "compute": "nova"}[kind]
        conf_file = {"keystone": "keystone.conf",
                     "glance": "glance-api.conf",
                     "placement": "placement.conf",
                     "neutron": "neutron.conf", "nova": "nova.conf"}[service]
        argv = [prog]
        if service in ("neutron", "nova"):
            argv += ["--config-file", self._conf(service, conf_file)]
        env = self._env(OSBED_APP=app, OSBED_ARGV=json.dumps(argv),
                        **{conf_env: os.path.join(self.workdir, "etc",
                                                  service)})
        if service == "nova":
            env["OS_NOVA_CONFIG_FILES"] = "api-paste.ini;nova.conf"
        if service == "neutron":
            env["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf"
        self._spawn(kind, [
            self._bin("gunicorn"), "--bind",
            "127.0.0.1:%d" % self.lay.ports[kind], "--bind",
            "127.0.0.1:%d" % self.public_ports[kind], "--workers", "1",
            "--worker-class", "gthread", "--threads", "8",
            "--timeout", "120", "--graceful-timeout", "2",
            "--access-logfile",
            os.path.join(self.workdir, "log", kind + ".access"),
            "--access-logformat", '%({server_port}e)s %(m)s %(U)s %(s)s',
            "--name", "osbed-" + service, "tests.osbed.wsgi:application"],
            env=env)

    def _start_rabbitmq(self):
        base = os.path.join(self.workdir, "rabbitmq")
        with open(os.path.join(base, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(os.path.join(base, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n"
                    "loopback_users = none\n" % self.lay.rabbit_port)
        node = "osbed%s@localhost" % secrets.token_hex(3)
        env = self._env(
            HOME=base, RABBITMQ_NODENAME=node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.lay.rabbit_port),
            RABBITMQ_DIST_PORT=str(free_port()),
            RABBITMQ_MNESIA_BASE=os.path.join(base, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(base, "log"),
            RABBITMQ_CONFIG_FILE=os.path.join(base, "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(base,
                                                       "enabled_plugins"),
            RABBITMQ_PID_FILE=os.path.join(base, "rabbitmq.pid"),
            RABBITMQ_LOGS="-", ERL_EPMD_ADDRESS="127.0.0.1")
        self._spawn("rabbitmq", [RABBITMQ], env=env)

    def _write_configs(self):
        write_service_configs(self.lay, self.venv)

    def _prepare_databases(self):
        """Every service's database from the template (tests/osbed/
        template.py; built first if missing or stale), made this run's."""
        from tests.osbed import template    # lazily: `python -m` runs it
        directory, built = template.ensure(
            self.venv, log_dir=os.path.join(self.workdir, "log"))
        if built:
            self.timings["template built"] = built
        internal = {kind: self.lay.url(kind) for kind in self.lay.ports}
        paths = {kind: path for kind, (_name, path) in CATALOG.items()}
        self.app_cred_secret = secrets.token_urlsafe(32)
        ids = template.instantiate(
            directory, self.workdir, self.lay, self.public_urls, internal,
            paths, {("Default", "admin"): self.admin_password,
                    ("Default", confs.SERVICE_USER): self.lay.service_password,
                    (self.domain, self.username): self.password},
            self.app_cred_secret)
        self.project_id, self.user_id = ids["project_id"], ids["user_id"]
        self.app_cred_id = ids["app_cred_id"]

    def _start_swift(self):
        procs, self._swift_ports, _ = swift.start(
            os.path.join(self.workdir, "swift"), mimic_url=None,
            proxy_port=self.lay.ports["object-store"],
            auth=confs.swift_keystone_pipeline(self.lay),
            python=self._bin("python"))
        self._swift_procs = procs

    def _start_sshd(self):
        self.health_dir = os.path.join(self.workdir, "health")
        self.servers_dir = os.path.join(self.workdir, "servers")
        for d in (self.health_dir, self.servers_dir):
            os.makedirs(d, exist_ok=True)
        state = os.path.join(self.workdir, "ssh-lookup.json")
        fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"identity": self.lay.identity,
                       "admin_password": self.admin_password,
                       "compute": self.lay.url("compute") + "/v2.1",
                       "network": self.lay.url("network"),
                       "user_ids": [self.user_id],
                       "token_cache": state + ".token"}, f)
        self._routes = []
        for cidr in PRIVATE_RANGES:
            subprocess.run(["ip", "route", "replace", "local", cidr, "dev",
                            "lo"], check=True)
            self._routes.append(cidr)
        proc, self.sshd_port, self.ssh_config = sshd.start(
            os.path.join(self.workdir, "ssh"), "osbed:" + state,
            self.health_dir, self.servers_dir, extra_ports=(22,))
        self._procs["sshd"] = proc

    # Server "health" seen over SSH: the legacy test cloud's, as is.
    set_server_health = TestCloud.set_server_health
    reset_server_health = TestCloud.reset_server_health

    # -- HTTP -------------------------------------------------------------
    @staticmethod
    def _http_ok(url):
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.status < 500
        except urllib.error.HTTPError as e:
            return e.code < 500

    def request(self, method, url, body=None, token=None, headers=None,
                raw=None, timeout=30):
        """JSON request; returns (status, headers, parsed body or None)."""
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method)
        if raw is None:
            req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if token:
            req.add_header("X-Auth-Token", token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, hdrs, out = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s -> %d: %s" % (
                method, url, e.code, e.read()[:500].decode(errors="replace")))
        try:
            parsed = json.loads(out) if out else None
        except ValueError:
            parsed = None
        return status, hdrs, parsed

    def _token(self, user, password, domain, project, project_domain):
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password,
                "domain": {"name": domain}}}},
            "scope": {"project": {"name": project,
                                  "domain": {"name": project_domain}}}}}
        _s, hdrs, out = self.request("POST", self.lay.identity +
                                     "/auth/tokens", body)
        return hdrs["X-Subject-Token"], out["token"]

    def admin_token(self):
        return self._token("admin", self.admin_password, "Default", "admin",
                           "Default")[0]

    def user_token(self):
        """A token of the bed's user, scoped to its project (what the tool
        gets); returns (token, token body)."""
        return self._token(self.username, self.password, self.domain,
                           self.project_name, self.domain)

    # -- content the tool expects -----------------------------------------
    def _populate(self):
        """Flavors, PUBLICNET and the image: three services, in parallel
        (each one's first request is its slowest)."""
        from concurrent.futures import ThreadPoolExecutor
        tok = self.admin_token()
        # One token check first: Keystone's policy enforcer loads on first
        # use, and three first checks at once were refused (403, "not
        # authorized: identity:validate_token").
        self.request("GET", self.lay.identity + "/auth/tokens", token=tok,
                     headers={"X-Subject-Token": tok})
        with ThreadPoolExecutor(3) as pool:
            jobs = [pool.submit(f, tok) for f in (
                self._populate_flavors, self._populate_network,
                lambda t: self.upload_image(self.image_name, t,
                                            visibility="public"))]
            _, self.external_network_id, self.image_id = [
                j.result() for j in jobs]

    def _populate_flavors(self, tok):
        nova = self.lay.url("compute") + "/v2.1"
        for name, vcpus, ram, disk in self.flavors:
            self.request("POST", nova + "/flavors", {"flavor": {
                "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "id": name}}, tok)

    def _populate_network(self, tok):
        neutron = self.lay.url("network") + "/v2.0"
        net = self.request("POST", neutron + "/networks", {"network": {
            "name": self.external_network, "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "public"}}, tok)[2]["network"]
        self.request("POST", neutron + "/subnets", {"subnet": {
            "name": self.external_network + "-v4", "network_id": net["id"],
            "ip_version": 4, "cidr": EXTERNAL_CIDR, "enable_dhcp": False,
            "allocation_pools": [{"start": "198.51.100.10",
                                  "end": "198.51.100.250"}]}}, tok)
        return net["id"]

    def upload_image(self, name, token, visibility="private"):
        """A small qcow2 image (a real header: Glance 33 checks the bytes
        against disk_format) uploaded through Glance; returns its id."""
        path = os.path.join(self.workdir, "test-image.qcow2")
        if not os.path.exists(path):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path,
                            "64M"], check=True)
        glance = self.lay.url("image") + "/v2"
        image = self.request("POST", glance + "/images", {
            "name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": visibility}, token)[2]
        with open(path, "rb") as f:
            self.request("PUT", "%s/images/%s/file" % (glance, image["id"]),
                         token=token, raw=f.read(), headers={
                             "Content-Type": "application/octet-stream"})
        return image["id"]

    def _compute_host_mapped(self):
        """nova-scheduler has mapped the fake compute host to cell1 (the
        discover_hosts_in_cells_interval pass): servers can be scheduled."""
        db = os.path.join(self.workdir, "db", "nova_api.db")
        with sqlite3.connect(db, timeout=60) as c:
            return c.execute("select count(*) from host_mappings").fetchone(
            )[0] > 0

    # -- configuration for the tool ----------------------------------------
    def _write_clouds_yaml(self):
        self.clouds_yaml = os.path.join(self.workdir, "clouds.yaml")
        clouds = {
            CLOUD_NAME: {
                "auth": {"auth_url": self.auth_url,
                         "username": self.username,
                         "password": self.password,
                         "user_domain_name": self.domain,
                         "project_name": self.project_name,
                         "project_domain_name": self.domain},
                "region_name": self.region, "interface": "public",
                "identity_api_version": 3},
            CLOUD_NAME + "-appcred": {
                "auth_type": "v3applicationcredential",
                "auth": {"auth_url": self.auth_url,
                         "application_credential_id": self.app_cred_id,
                         "application_credential_secret":
                             self.app_cred_secret},
                "region_name": self.region, "interface": "public",
                "identity_api_version": 3},
        }
        fd = os.open(self.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"clouds": clouds}, f, indent=2)   # JSON is YAML
        self.env_file = os.path.join(self.workdir, "osbed.env")
        with open(self.env_file, "w") as f:
            for k, v in self.env().items():
                f.write("%s=%s\n" % (k, shlex.quote(v)))

    def env(self):
        """What the tool needs to use this cloud (OS_CLOUD + clouds.yaml)."""
        env = {"OS_CLOUD": CLOUD_NAME,
               "OS_CLIENT_CONFIG_FILE": self.clouds_yaml,
               "KUBE_IMAGE": self.image_name}
        if getattr(self, "ssh_config", None):
            env.update(SSH_USER="root", SSH_CONFIG=self.ssh_config)
        return env

    # -- faults (front=FaultProxy) ----------------------------------------
    def faults(self, rate, seed=0, services=None, **options):
        """Fail a seeded `rate` share of the tool's requests (public
        endpoints) to `services` (default: all of them), before they reach
        the service; options as FaultProxy.set. rate=0 switches them off.
        Needs a bed started with front=..."""
        if not self.fronts:
            raise RuntimeError("this bed was started without fault proxies "
                               "(OSBed.start(workdir, front=...))")
        for offset, (name, proxy) in enumerate(sorted(self.fronts.items())):
            if services is None or name in services:
                proxy.set(rate, seed=seed * 16 + offset, **options)
            else:
                proxy.off()

    def fault_stats(self):
        """{service: {"forwarded": n, "503": n, "drop": n, "slow": n}}."""
        return {name: proxy.stats() for name, proxy in self.fronts.items()}

    # -- snapshots ----------------------------------------------------------
    NEUTRON = ("networks", "subnets", "routers", "ports", "floatingips", "security-groups")

    def resources(self):
        """Everything in the project that up/down could touch, as sets of
        IDs (Neutron's kinds, servers), keypair names and objects
        ("container/name", and "container/" for each container)."""
        token, body = self.user_token()
        project = body["project"]["id"]
        found = {}
        for kind in self.NEUTRON:
            _s, _h, out = self.request("GET", "%s/v2.0/%s?project_id=%s" % (
                self.public_urls["network"], kind, project), token=token)
            found[kind] = {item["id"] for item in out[kind.replace("-", "_")]}
        _s, _h, out = self.request("GET", self.public_urls["compute"] + "/v2.1/servers", token=token)
        found["servers"] = {srv["id"] for srv in out["servers"]}
        _s, _h, out = self.request("GET", self.public_urls["compute"] + "/v2.1/os-keypairs", token=token)
        found["keypairs"] = {kp["keypair"]["name"] for kp in out["keypairs"]}
        storage = "%s/v1/AUTH_%s" % (self.public_urls["object-store"], project)
        _s, _h, out = self.request("GET", storage + "?format=json", token=token)
        objects = set()
        for container in out or []:
            _s, _h, listed = self.request("GET", "%s/%s?format=json" % (storage, container["name"]),
                                          token=token)
            objects |= {"%s/%s" % (container["name"], o["name"]) for o in listed or []}
            objects.add(container["name"] + "/")
        found["objects"] = objects
        return found

    # -- request counters ---------------------------------------------------
    def request_counts(self):
        """Requests served since start/reset, per catalog service type."""
        counts = {}
        for kind in WSGI:
            counts[kind] = _lines(os.path.join(self.workdir, "log",
                                               kind + ".access"),
                                  "%d " % self.public_ports[kind])
        counts["object-store"] = _lines(os.path.join(
            self.workdir, "log", "swift-requests.log"))
        return counts

    def reset_request_counts(self):
        for name in list(WSGI) + ["swift-requests"]:
            path = os.path.join(self.workdir, "log", name + (
                ".log" if name == "swift-requests" else ".access"))
            if os.path.exists(path):
                os.truncate(path, 0)


def _lines(path, prefix=""):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.startswith(prefix))
    except OSError:
        return 0
