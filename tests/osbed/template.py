"""
The OpenStack bed's prepared databases, built once and copied per start.

Building the schemas (keystone-manage db_sync + bootstrap, glance-manage,
placement-manage, neutron's create_all, nova-manage api_db sync / map_cell0
/ create_cell / db sync) imports every service several times: ~40 s of a
2-core machine.  The result depends only on the installed versions, so it is
made once per .venv-openstack, in ``<venv>/osbed-template/<key>/`` (or
``$OSBED_TEMPLATE_DIR/<key>/``), keyed by `key()`: the venv's Python version,
its installed distributions (the ``*.dist-info`` names: name and version,
what ``pip freeze`` says), the builder's code and the content it makes.
Keystone's content is in the template too (keystone_content.py).  A start
copies the SQLite files and rewrites what differs per run (`instantiate`):
Nova's cell mappings (database paths, RabbitMQ port), Keystone's endpoint
URLs, passwords and application credential secret; fresh fernet and
credential keys are written each time.  A missing or stale template is
built first (`ensure`), so a start never depends on the cache.  See
README.md, "Database template".

    python -m tests.osbed.template [--force]   # scripts/bootstrap --tests

Starts no server: every step is a command-line tool writing SQLite.
"""
from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile

from tests.osbed import confs
from tests.testcloud.util import REPO_ROOT

# Each file is in WAL mode (a property of the file, kept by the copy).
DATABASES = ("keystone", "glance", "placement", "neutron", "nova_api", "nova",
             "nova_cell0")
# Ports the template's configs name; every URL holding one is rewritten per
# run (port 9 is "discard": nothing on loopback answers there).
PLACEHOLDER_PORT = 9
REGION = "DFW3"
APP_CRED = "osbed-tool"
KEEP_OTHERS = 3


def template_root(venv):
    return os.environ.get("OSBED_TEMPLATE_DIR") or os.path.join(
        venv, "osbed-template")


def fingerprint(venv):
    """What the schemas depend on: the venv's Python and its distributions
    (name-version of every dist-info, i.e. pip freeze without running pip)."""
    version = ""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as f:
            for line in f:
                k, _, v = line.partition("=")
                if k.strip() in ("version", "version_info"):
                    version = v.strip()
    except OSError:
        pass
    dists = sorted(os.path.basename(p)[:-len(".dist-info")] for p in glob.glob(
        os.path.join(venv, "lib", "python*", "site-packages", "*.dist-info")))
    return {"python": version, "dists": dists}


def key(fp, code):
    """16 hex digits naming a template: fingerprint + the builder's code."""
    h = hashlib.sha256(json.dumps(fp, sort_keys=True).encode())
    h.update(code)
    return h.hexdigest()[:16]


def content_spec():
    """What the template's Keystone holds besides bootstrap's admin (see
    keystone_content.py); URLs are placeholders."""
    from tests.osbed import bed
    placeholder = "http://127.0.0.1:%d" % PLACEHOLDER_PORT
    return {"region": REGION, "service_project": confs.SERVICE_PROJECT,
            "service_user": confs.SERVICE_USER, "domain": bed.DOMAIN,
            "project": bed.PROJECT, "user": bed.USERNAME,
            "app_cred": APP_CRED,
            "catalog": [[kind, name, placeholder + path]
                        for kind, (name, path) in sorted(bed.CATALOG.items())]}


def _code():
    """The builder, the configs it builds with and the content it makes."""
    out = json.dumps(content_spec(), sort_keys=True).encode()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("template.py", "keystone_content.py", "confs.py"):
        with open(os.path.join(here, name), "rb") as f:
            out += f.read()
    return out


def current(venv):
    """(key, directory) of the template this venv and code would use."""
    k = key(fingerprint(venv), _code())
    return k, os.path.join(template_root(venv), k)


def ready(directory):
    return os.path.exists(os.path.join(directory, "READY"))


# -- building -------------------------------------------------------------
def _chains(venv, lay, admin_password):
    bin_ = lambda name: os.path.join(venv, "bin", name)  # noqa: E731
    conf = lambda s, n: lay.path("etc", s, n)  # noqa: E731
    ks = ["--config-file", conf("keystone", "keystone.conf")]
    nv = ["--config-file", conf("nova", "nova.conf")]
    km, nm, q = bin_("keystone-manage"), bin_("nova-manage"), shlex.join
    placeholder = "http://127.0.0.1:%d" % PLACEHOLDER_PORT
    return {
        # Fernet and credential keys do not stay in the template: a start
        # writes new ones.  The admin password is replaced per start too.
        "keystone": [
            q([km, *ks, "db_sync"]),
            q([km, *ks, "bootstrap", "--bootstrap-password", admin_password,
               "--bootstrap-region-id", lay.region,
               "--bootstrap-public-url", placeholder,
               "--bootstrap-internal-url", placeholder,
               "--bootstrap-admin-url", placeholder]),
            q([bin_("python"), "-m", "tests.osbed.keystone_content",
               conf("keystone", "keystone.conf"),
               json.dumps(content_spec())]),
        ],
        "glance": [q([bin_("glance-manage"), "--config-file",
                      conf("glance", "glance-api.conf"), "db_sync"])],
        "placement": [q([bin_("placement-manage"), "--config-file",
                         conf("placement", "placement.conf"), "db", "sync"])],
        # neutron-db-manage cannot migrate SQLite: the models' metadata
        # makes the schema of the head revision.
        "neutron": [q([bin_("python"), "-c",
                       "import sys, sqlalchemy; "
                       "from neutron.db.migration.models import head; "
                       "head.get_metadata().create_all("
                       "sqlalchemy.create_engine(sys.argv[1]))",
                       lay.sqlite("neutron")])],
        "nova": [
            q([nm, *nv, "api_db", "sync"]),
            q([nm, *nv, "cell_v2", "map_cell0", "--database_connection",
               lay.sqlite("nova_cell0")]),
            q([nm, *nv, "cell_v2", "create_cell", "--name", "cell1"]),
            q([nm, *nv, "db", "sync"]),
        ],
    }


def build(venv, directory, log_dir=None):
    """Make the template in `directory` (atomically: built next to it, then
    renamed).  log_dir gets prep-<service>.log (default: the template's)."""
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        _build_in(venv, tmp, log_dir or os.path.join(parent, ".log"))
        try:
            os.rename(tmp, directory)
        except OSError:
            if not ready(directory):     # else: built by someone else too
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Older keys are dead weight (~5 MB each), but two checkouts sharing
    # one venv may use two keys at once: keep the newest few.
    others = sorted((p for p in glob.glob(os.path.join(parent, "*"))
                     if p != directory), key=os.path.getmtime)
    for other in others[:-KEEP_OTHERS]:
        shutil.rmtree(other, ignore_errors=True)


def _build_in(venv, root, log_dir):
    from tests.osbed.bed import write_service_configs   # no import cycle
    os.chmod(root, 0o700)
    for d in ("db", "lock", "keystone", "neutron", "nova", "pylib"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    ports = dict.fromkeys(("identity", "image", "placement", "network",
                           "compute", "object-store"), PLACEHOLDER_PORT)
    lay = confs.Layout(root, REGION, "template", PLACEHOLDER_PORT, ports)
    write_service_configs(lay, venv)
    for repo in ("fernet-keys", "credential-keys"):   # bootstrap wants them
        _key_repo(os.path.join(root, "keystone", repo))
    env = dict(os.environ, HOME=root, PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join([REPO_ROOT,
                                           os.path.join(root, "pylib")]))
    env.pop("OS_CLOUD", None)
    procs = {}
    for name, cmds in _chains(venv, lay, os.urandom(16).hex()).items():
        log = open(os.path.join(log_dir, "prep-%s.log" % name), "ab")
        procs[name] = subprocess.Popen(
            ["sh", "-ec", " && ".join(cmds)], stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root,
            env=env, start_new_session=True)
        log.close()
    try:
        failed = [n for n, p in procs.items() if p.wait(600) != 0]
    finally:       # interrupted (or timed out): leave nothing running
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    if failed:
        raise RuntimeError(
            "OpenStack bed: preparing %s failed; see %s" % (
                ", ".join(failed), ", ".join(os.path.join(
                    log_dir, "prep-%s.log" % n) for n in failed)))
    for db in DATABASES:
        path = os.path.join(root, "db", db + ".db")
        with sqlite3.connect(path) as c:
            c.execute("pragma journal_mode=wal")
        c.close()                       # last close checkpoints the WAL
        os.chmod(path, 0o600)
    for junk in ("etc", "lock", "keystone", "neutron", "nova", "pylib",
                 ".cache"):
        shutil.rmtree(os.path.join(root, junk), ignore_errors=True)
    with open(os.path.join(root, "fingerprint.json"), "w") as f:
        json.dump(fingerprint(venv), f, indent=1)
    open(os.path.join(root, "READY"), "w").close()


def ensure(venv, log_dir=None):
    """The current template's directory, built first if missing; returns
    (directory, seconds spent building or 0)."""
    import time
    _k, directory = current(venv)
    if ready(directory):
        return directory, 0.0
    t0 = time.monotonic()
    build(venv, directory, log_dir)
    return directory, round(time.monotonic() - t0, 1)


# -- per start --------------------------------------------------------------
def pbkdf2_sha512(password, salt=None, rounds=25000):
    """A password hash Keystone checks (its pbkdf2_sha512 hasher, passlib's
    format); stdlib-only, so a start needs no OpenStack import to set one."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds, 64)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
    return "$pbkdf2-sha512$%d$%s$%s" % (rounds, b64(salt), b64(digest))


def cell_mapping_values(name, lay):
    """(database_connection, transport_url or None to keep) of a cell."""
    if name == "cell0":
        return lay.sqlite("nova_cell0"), None
    return lay.sqlite("nova"), lay.transport_url


def endpoint_url(service_type, interface, public_urls, internal_urls,
                 paths):
    """The URL of a catalog endpoint this run: public -> the tool's (maybe
    a fault proxy), internal/admin -> the service's own port."""
    base = (public_urls if interface == "public" else internal_urls)[
        service_type]
    return base + paths.get(service_type, "")


def fernet_key():
    return base64.urlsafe_b64encode(os.urandom(32))


def _key_repo(path):
    """A fresh key repository as keystone-manage *_setup makes it: 0 is the
    staged key, 1 the primary; directory 0700, keys 0600."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    for name in ("0", "1"):
        fd = os.open(os.path.join(path, name),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(fernet_key())


def rewrite(db_dir, lay, public_urls, internal_urls, paths, passwords,
            app_cred_secret):
    """Per-run values into copied databases: nova_api's cell mappings,
    keystone's endpoints, the passwords of `passwords` ({(domain name, user
    name): password}) and the application credential's secret.  Returns
    Keystone's ids: {"project_id", "user_id", "app_cred_id"} of the user
    in the Flex-like domain."""
    with sqlite3.connect(os.path.join(db_dir, "nova_api.db")) as c:
        for cid, name in c.execute("select id, name from cell_mappings"
                                   ).fetchall():
            conn, transport = cell_mapping_values(name, lay)
            c.execute("update cell_mappings set database_connection = ?"
                      " where id = ?", (conn, cid))
            if transport is not None:
                c.execute("update cell_mappings set transport_url = ?"
                          " where id = ?", (transport, cid))
    c.close()
    with sqlite3.connect(os.path.join(db_dir, "keystone.db")) as c:
        rows = c.execute("select e.id, s.type, e.interface from endpoint e"
                         " join service s on s.id = e.service_id").fetchall()
        for eid, stype, iface in rows:
            c.execute("update endpoint set url = ? where id = ?", (
                endpoint_url(stype, iface, public_urls, internal_urls, paths),
                eid))
        for (domain, name), password in passwords.items():
            n = c.execute(
                "update password set password_hash = ? where local_user_id ="
                " (select u.id from local_user u join project d on"
                " d.id = u.domain_id and d.is_domain where d.name = ?"
                " and u.name = ?)",
                (pbkdf2_sha512(password), domain, name)).rowcount
            if n != 1:
                raise RuntimeError("OpenStack bed template: user %s/%s has %d "
                                   "passwords, expected 1" % (domain, name, n))
        (app_cred_id, user_id, project_id), = c.execute(
            "select id, user_id, project_id from application_credential"
            " where name = ?", (APP_CRED,)).fetchall()
        c.execute("update application_credential set secret_hash = ?"
                  " where id = ?", (pbkdf2_sha512(app_cred_secret),
                                    app_cred_id))
    c.close()
    return {"project_id": project_id, "user_id": user_id,
            "app_cred_id": app_cred_id}


def instantiate(directory, workdir, lay, public_urls, internal_urls, paths,
                passwords, app_cred_secret):
    """Copy the template's databases into <workdir>/db and make them this
    run's (`rewrite`, whose ids it returns); new fernet and credential keys
    in <workdir>/keystone."""
    db_dir = os.path.join(workdir, "db")
    os.makedirs(db_dir, exist_ok=True)
    for db in DATABASES:
        dst = os.path.join(db_dir, db + ".db")
        shutil.copyfile(os.path.join(directory, "db", db + ".db"), dst)
        os.chmod(dst, 0o600)
    ids = rewrite(db_dir, lay, public_urls, internal_urls, paths, passwords,
                  app_cred_secret)
    for repo in ("fernet-keys", "credential-keys"):
        _key_repo(os.path.join(workdir, "keystone", repo))
    return ids


def main(argv):
    from tests.osbed.bed import venv_dir
    venv = venv_dir()
    if not os.path.exists(os.path.join(venv, "bin", "keystone-manage")):
        sys.stderr.write("osbed template: no OpenStack virtualenv at %s: run "
                         "scripts/bootstrap --tests\n" % venv)
        return 2
    k, directory = current(venv)
    if "--force" in argv:
        shutil.rmtree(directory, ignore_errors=True)
    directory, took = ensure(venv)
    print("osbed template %s: %s (%s)" % (
        k, directory, "built in %.0fs" % took if took else "up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
