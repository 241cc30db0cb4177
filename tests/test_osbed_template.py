"""
The OpenStack bed's database template (tests/osbed/template.py): its key,
and the per-run rewrite of the copied databases, on small SQLite files.
"""
import os
import sqlite3
import subprocess

import pytest

from tests.osbed import confs, template
from tests.osbed.bed import venv_dir


def fake_venv(root, python="3.11.7", dists=("nova-34.0.0", "keystone-30.0.0")):
    """The parts of a venv the fingerprint reads (no Python in it)."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "pyvenv.cfg"), "w") as f:
        f.write("home = /usr/bin\nversion = %s\n" % python)
    site = os.path.join(root, "lib", "python3.11", "site-packages")
    os.makedirs(site, exist_ok=True)
    for d in dists:
        os.makedirs(os.path.join(site, d + ".dist-info"))
        os.makedirs(os.path.join(site, d.split("-")[0]), exist_ok=True)
    return str(root)


def test_key_follows_the_installed_versions_python_and_code(tmp_path):
    base = template.fingerprint(fake_venv(tmp_path / "a"))
    assert base == {"python": "3.11.7",
                    "dists": ["keystone-30.0.0", "nova-34.0.0"]}
    k = template.key(base, b"code")
    assert len(k) == 16
    # Same venv contents elsewhere: same key (the path is not part of it).
    assert template.key(template.fingerprint(fake_venv(tmp_path / "b")),
                        b"code") == k
    changed = [
        template.fingerprint(fake_venv(tmp_path / "c", dists=(
            "nova-34.0.1", "keystone-30.0.0"))),          # pip upgraded one
        template.fingerprint(fake_venv(tmp_path / "d", dists=(
            "nova-34.0.0", "keystone-30.0.0", "oslo.db-17.0.0"))),
        template.fingerprint(fake_venv(tmp_path / "e", python="3.12.1")),
    ]
    for fp in changed:
        assert template.key(fp, b"code") != k, fp
    assert template.key(base, b"code 2") != k


def test_template_lives_in_the_venv_unless_overridden(tmp_path, monkeypatch):
    monkeypatch.delenv("OSBED_TEMPLATE_DIR", raising=False)
    venv = fake_venv(tmp_path / "v")
    k, directory = template.current(venv)
    assert directory == os.path.join(venv, "osbed-template", k)
    monkeypatch.setenv("OSBED_TEMPLATE_DIR", str(tmp_path / "t"))
    assert template.current(venv) == (k, os.path.join(tmp_path, "t", k))


def small_template_dbs(db_dir):
    """The tables and rows `rewrite` touches, as the real template has
    them (placeholder port 9, cell mappings of the build directory)."""
    os.makedirs(db_dir)
    with sqlite3.connect(os.path.join(db_dir, "nova_api.db")) as c:
        c.execute("create table cell_mappings (id integer primary key, "
                  "name text, database_connection text, transport_url text)")
        c.executemany("insert into cell_mappings values (?, ?, ?, ?)", [
            (1, "cell0", "sqlite:////old/db/nova_cell0.db?timeout=60",
             "none:///"),
            (2, "cell1", "sqlite:////old/db/nova.db?timeout=60",
             "rabbit://guest:guest@127.0.0.1:9/")])
    c.close()
    with sqlite3.connect(os.path.join(db_dir, "keystone.db")) as c:
        c.executescript("""
            create table service (id text, type text);
            create table endpoint (id text, service_id text,
                                   interface text, url text);
            create table project (id text, name text, is_domain integer);
            create table local_user (id integer, domain_id text, name text);
            create table password (id integer, local_user_id integer,
                                   password_hash text);
            create table application_credential (id text, name text,
                user_id text, project_id text, secret_hash text);
            insert into service values ('s1', 'identity'), ('s2', 'compute'),
                                       ('s3', 'object-store');
            insert into endpoint values
                ('e1', 's1', 'public', 'http://127.0.0.1:9'),
                ('e2', 's1', 'internal', 'http://127.0.0.1:9'),
                ('e3', 's1', 'admin', 'http://127.0.0.1:9'),
                ('e4', 's2', 'public', 'http://127.0.0.1:9/v2.1'),
                ('e5', 's3', 'internal',
                 'http://127.0.0.1:9/v1/AUTH_$(project_id)s');
            insert into project values ('default', 'Default', 1),
                ('d2', 'rackspace_cloud_domain', 1), ('p1', 'Default', 0);
            insert into local_user values (1, 'default', 'admin'),
                (2, 'd2', 'osbed'), (3, 'd2', 'admin');
            insert into password values (1, 1, 'old-admin'),
                (2, 2, 'old-osbed'), (3, 3, 'old-other-admin');
            insert into application_credential values
                ('ac1', 'osbed-tool', 'u2', 'p2', 'old-secret');
            """)
    c.close()


def test_rewrite_sets_this_runs_cells_endpoints_passwords_and_secret(
        tmp_path):
    db_dir = str(tmp_path / "db")
    small_template_dbs(db_dir)
    lay = confs.Layout(str(tmp_path), "DFW3", "pw", 5672,
                       {"identity": 20001, "compute": 20002,
                        "object-store": 20003})
    public = {"identity": "http://127.0.0.1:21001",
              "compute": "http://127.0.0.1:30000/front",
              "object-store": "http://127.0.0.1:21003"}
    internal = {k: lay.url(k) for k in lay.ports}
    ids = template.rewrite(
        db_dir, lay, public, internal,
        {"compute": "/v2.1", "object-store": "/v1/AUTH_$(project_id)s"},
        {("Default", "admin"): "admin-pw",
         ("rackspace_cloud_domain", "osbed"): "user-pw"}, "app-secret")
    assert ids == {"project_id": "p2", "user_id": "u2", "app_cred_id": "ac1"}

    with sqlite3.connect(os.path.join(db_dir, "nova_api.db")) as c:
        cells = dict((r[0], r[1:]) for r in c.execute(
            "select name, database_connection, transport_url "
            "from cell_mappings"))
    assert cells == {
        "cell0": ("sqlite:///%s/db/nova_cell0.db?timeout=60" % tmp_path,
                  "none:///"),
        "cell1": ("sqlite:///%s/db/nova.db?timeout=60" % tmp_path,
                  "rabbit://guest:guest@127.0.0.1:5672/")}

    with sqlite3.connect(os.path.join(db_dir, "keystone.db")) as c:
        urls = dict(c.execute("select id, url from endpoint"))
        hashes = dict(c.execute("select id, password_hash from password"))
        secret = c.execute("select secret_hash from application_credential"
                           ).fetchone()[0]
    assert urls == {"e1": "http://127.0.0.1:21001",
                    "e2": "http://127.0.0.1:20001",
                    "e3": "http://127.0.0.1:20001",
                    "e4": "http://127.0.0.1:30000/front/v2.1",
                    "e5": "http://127.0.0.1:20003/v1/AUTH_$(project_id)s"}
    assert hashes[1].startswith("$pbkdf2-sha512$")
    assert hashes[2].startswith("$pbkdf2-sha512$") and hashes[2] != hashes[1]
    # An admin of another domain keeps its password.
    assert hashes[3] == "old-other-admin"
    assert secret.startswith("$pbkdf2-sha512$")


def test_rewrite_refuses_a_user_the_template_lacks(tmp_path):
    db_dir = str(tmp_path / "db")
    small_template_dbs(db_dir)
    urls = dict.fromkeys(("identity", "compute", "object-store"),
                         "http://127.0.0.1:1")
    lay = confs.Layout(str(tmp_path), "DFW3", "pw", 5672, {})
    with pytest.raises(RuntimeError, match="Default/nobody"):
        template.rewrite(db_dir, lay, urls, urls, {},
                         {("Default", "nobody"): "x"}, "s")


def test_password_hash_is_one_keystone_accepts():
    """Keystone's own verifier (in .venv-openstack) checks the hash the bed
    writes without importing OpenStack."""
    python = os.path.join(venv_dir(), "bin", "python")
    if not os.path.exists(python):
        pytest.skip("no .venv-openstack (scripts/bootstrap --tests)")
    hashed = template.pbkdf2_sha512("s3cret pass")
    check = ("import sys; from keystone.common.password_hashers import pbkdf2;"
             " print(pbkdf2.Sha512.verify(sys.argv[1].encode(), sys.argv[2]))")
    out = [subprocess.run([python, "-c", check, pw, hashed], check=True,
                          capture_output=True, text=True).stdout.strip()
           for pw in ("s3cret pass", "s3cret pasS")]
    assert out == ["True", "False"]


def test_fresh_key_repositories_are_private(tmp_path):
    repo = str(tmp_path / "fernet-keys")
    template._key_repo(repo)
    assert sorted(os.listdir(repo)) == ["0", "1"]
    assert os.stat(repo).st_mode & 0o777 == 0o700
    keys = []
    for name in ("0", "1"):
        path = os.path.join(repo, name)
        assert os.stat(path).st_mode & 0o777 == 0o600
        with open(path, "rb") as f:
            keys.append(f.read())
    import base64
    assert all(len(base64.urlsafe_b64decode(k)) == 32 for k in keys)
    assert keys[0] != keys[1]
