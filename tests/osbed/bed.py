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
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.osbed import confs
from tests.testcloud import swift
from tests.testcloud.netns import assert_loopback_namespace
from tests.testcloud.util import REPO_ROOT, free_port, port_open, wait_for

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


class OSBed:
    """``OSBed.start(workdir)``; ``.stop()`` or use as a context manager.

    front: optional callable(upstream_url) -> object with ``.url`` and
    ``.stop()`` (e.g. tests.testcloud.faults.FaultProxy(u).start()); the
    public catalog endpoint of every service then points at it, while the
    services reach each other on their internal endpoints directly.
    """

    __test__ = False

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
    @classmethod
    def start(cls, workdir, **kwargs):
        self = cls(workdir, **kwargs)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

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
        prep = self._prepare_databases()
        self._wait_prep(prep, "keystone")
        self._mark("keystone db", t0)
        self._serve("identity")
        wait_for(lambda: self._http_ok(self.lay.identity), timeout=60,
                 procs=[self._procs["identity"]], what="keystone")
        self._mark("keystone up", t0)
        self._register()
        self._mark("keystone registered", t0)
        for name in ("glance", "placement", "neutron", "nova"):
            self._wait_prep(prep, name)
        self._mark("databases", t0)
        for kind in ("image", "placement", "network", "compute"):
            self._serve(kind)
        self._start_swift()
        wait_for(lambda: port_open(self.lay.rabbit_port), timeout=60,
                 procs=[self._procs["rabbitmq"]], what="rabbitmq")
        self._mark("rabbitmq", t0)
        for name in ("conductor", "scheduler", "compute"):
            self._spawn("nova-" + name,
                        [self._bin("nova-" + name), "--config-file",
                         self._conf("nova", "nova.conf")])
        for kind, path in (("image", "/versions"), ("placement", "/"),
                           ("network", "/"), ("compute", "/")):
            wait_for(lambda: self._http_ok(self.lay.url(kind) + path),
                     timeout=90, procs=[self._procs[kind]], what=kind)
        wait_for(lambda: self._http_ok(self.lay.url("object-store") +
                                       "/info"),
                 timeout=30, procs=self._swift_procs, what="swift")
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
        procs = list(self._procs.values()) + getattr(self, "_swift_procs", [])
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.poll() is None:
                p.wait(5)
        self._procs = {}
        self._swift_procs = []
        for f in self.fronts.values():
            f.stop()
        self.fronts = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

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
        lay = self.lay
        shipped = os.path.join(self.venv, "etc")
        files = {
            ("keystone", "keystone.conf"): confs.keystone(lay),
            ("glance", "glance-api.conf"): confs.glance(lay),
            ("placement", "placement.conf"): confs.placement(lay),
            ("neutron", "neutron.conf"): confs.neutron(lay),
            ("nova", "nova.conf"): confs.nova(lay, "osbed-compute"),
        }
        for (service, name), text in files.items():
            os.makedirs(os.path.join(self.workdir, "etc", service),
                        exist_ok=True)
            with open(self._conf(service, name), "w") as f:
                f.write(text)
        for service, name in (("glance", "glance-api-paste.ini"),
                              ("neutron", "api-paste.ini"),
                              ("nova", "api-paste.ini")):
            shutil.copy(os.path.join(shipped, service, name),
                        self._conf(service, name))
        # ML2 finds mechanism drivers by entry point only: declare ours in a
        # dist-info of its own on neutron's PYTHONPATH.
        dist = os.path.join(self.workdir, "pylib",
                            "osbed_neutron-1.0.dist-info")
        os.makedirs(dist, exist_ok=True)
        with open(os.path.join(dist, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: osbed-neutron\n"
                    "Version: 1.0\n")
        with open(os.path.join(dist, "entry_points.txt"), "w") as f:
            f.write("[neutron.ml2.mechanism_drivers]\nosbed_bindall = "
                    "tests.osbed.neutron_bindall:BindAllDriver\n")

    def _prepare_databases(self):
        """Schema for every service, in parallel; Keystone also bootstrapped
        (admin, region, identity endpoints public + internal)."""
        ks = ["--config-file", self._conf("keystone", "keystone.conf")]
        nv = ["--config-file", self._conf("nova", "nova.conf")]
        km = self._bin("keystone-manage")
        nm = self._bin("nova-manage")
        q = shlex.join
        chains = {
            "keystone": [
                q([km, *ks, "db_sync"]),
                q([km, *ks, "fernet_setup", "--keystone-user", "root",
                   "--keystone-group", "root"]),
                q([km, *ks, "credential_setup", "--keystone-user", "root",
                   "--keystone-group", "root"]),
                q([km, *ks, "bootstrap",
                   "--bootstrap-password", self.admin_password,
                   "--bootstrap-region-id", self.region,
                   "--bootstrap-public-url", self.public_urls["identity"],
                   "--bootstrap-internal-url", self.lay.url("identity"),
                   "--bootstrap-admin-url", self.lay.url("identity")]),
            ],
            "glance": [q([self._bin("glance-manage"), "--config-file",
                          self._conf("glance", "glance-api.conf"),
                          "db_sync"])],
            "placement": [q([self._bin("placement-manage"), "--config-file",
                             self._conf("placement", "placement.conf"),
                             "db", "sync"])],
            # neutron-db-manage cannot migrate SQLite: the models' metadata
            # makes the schema of the head revision.
            "neutron": [q([self._bin("python"), "-c",
                           "import sys, sqlalchemy; "
                           "from neutron.db.migration.models import head; "
                           "head.get_metadata().create_all("
                           "sqlalchemy.create_engine(sys.argv[1]))",
                           self.lay.sqlite("neutron")])],
            "nova": [
                q([nm, *nv, "api_db", "sync"]),
                q([nm, *nv, "cell_v2", "map_cell0", "--database_connection",
                   self.lay.sqlite("nova_cell0")]),
                q([nm, *nv, "cell_v2", "create_cell", "--name", "cell1"]),
                q([nm, *nv, "db", "sync"]),
            ],
        }
        return {name: self._spawn("prep-" + name,
                                  ["sh", "-ec", " && ".join(cmds)])
                for name, cmds in chains.items()}

    def _wait_prep(self, prep, name):
        p = prep[name]
        if p.wait(180) != 0:
            raise RuntimeError("OpenStack bed: preparing %s failed (exit %s); "
                               "see %s" % (name, p.returncode, os.path.join(
                                   self.workdir, "log", "prep-%s.log" % name)))
        del self._procs["prep-" + name]
        # WAL: readers never wait for the writer (a property of the file,
        # set before the service opens it).
        for db in {"nova": ("nova_api", "nova", "nova_cell0")}.get(
                name, (name,)):
            with sqlite3.connect(os.path.join(self.workdir, "db", db + ".db"),
                                 timeout=60) as c:
                c.execute("pragma journal_mode=wal")

    def _start_swift(self):
        procs, self._swift_ports, _ = swift.start(
            os.path.join(self.workdir, "swift"), mimic_url=None,
            proxy_port=self.lay.ports["object-store"],
            auth=confs.swift_keystone_pipeline(self.lay),
            python=self._bin("python"))
        self._swift_procs = procs

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

    # -- Keystone content -------------------------------------------------
    def _register(self):
        ks = self.lay.identity
        tok = self.admin_token()

        def post(path, body):
            return self.request("POST", ks + path, body, tok)[2]

        def get(path):
            return self.request("GET", ks + path, token=tok)[2]

        roles = {r["name"]: r["id"] for r in get("/roles")["roles"]}
        for name in ("service", "member", "reader"):
            if name not in roles:
                roles[name] = post("/roles", {"role": {"name": name}}
                                   )["role"]["id"]
        default = "default"
        service_project = post("/projects", {"project": {
            "name": confs.SERVICE_PROJECT, "domain_id": default}})["project"]
        service_user = post("/users", {"user": {
            "name": confs.SERVICE_USER, "domain_id": default,
            "password": self.lay.service_password}})["user"]
        for role in ("admin", "service"):
            self.request("PUT", "%s/projects/%s/users/%s/roles/%s" % (
                ks, service_project["id"], service_user["id"], roles[role]),
                token=tok)
        for kind, (name, path) in CATALOG.items():
            svc = post("/services", {"service": {"type": kind, "name": name,
                                                 "enabled": True}})["service"]
            for iface, base in (("public", self.public_urls[kind]),
                                ("internal", self.lay.url(kind))):
                post("/endpoints", {"endpoint": {
                    "service_id": svc["id"], "interface": iface,
                    "region_id": self.region, "url": base + path}})
        domain = post("/domains", {"domain": {"name": self.domain}})["domain"]
        project = post("/projects", {"project": {
            "name": self.project_name, "domain_id": domain["id"]}})["project"]
        user = post("/users", {"user": {
            "name": self.username, "domain_id": domain["id"],
            "password": self.password,
            "default_project_id": project["id"]}})["user"]
        for role in ("member", "reader"):
            self.request("PUT", "%s/projects/%s/users/%s/roles/%s" % (
                ks, project["id"], user["id"], roles[role]), token=tok)
        self.project_id, self.user_id = project["id"], user["id"]
        utok, _ = self.user_token()
        cred = self.request("POST", "%s/users/%s/application_credentials" % (
            ks, user["id"]), {"application_credential": {
                "name": "osbed-tool"}}, utok)[2]["application_credential"]
        self.app_cred_id, self.app_cred_secret = cred["id"], cred["secret"]

    # -- content the tool expects -----------------------------------------
    def _populate(self):
        tok = self.admin_token()
        nova = self.lay.url("compute") + "/v2.1"
        for name, vcpus, ram, disk in self.flavors:
            self.request("POST", nova + "/flavors", {"flavor": {
                "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "id": name}}, tok)
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
        self.external_network_id = net["id"]
        self.image_id = self.upload_image(self.image_name, tok,
                                          visibility="public")

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
