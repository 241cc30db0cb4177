"""`inv image` end to end: the test cloud's Flatcar-like channel (signed by a
test key) into real Glance behind real Keystone (the OpenStack bed)."""

import functools
import hashlib
import http.server
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tests.harness import run_inv
from tests.testcloud import release_mirror
from tests.testcloud.util import REPO_ROOT

CHANNEL = "stable"


class _Throttled(http.server.SimpleHTTPRequestHandler):
    """The mirror's files, .bz2 at `rate` bytes/s (0: full speed)."""
    rate = 0

    def log_message(self, fmt, *args):
        pass

    def copyfile(self, source, outputfile):
        if not self.rate or not self.path.endswith(".bz2"):
            return super().copyfile(source, outputfile)
        while chunk := source.read(64 << 10):
            outputfile.write(chunk)
            time.sleep(len(chunk) / self.rate)


@pytest.fixture(scope="module")
def flatcar_mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    handler = type("Handler", (_Throttled,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % httpd.server_address[1]
    mirror = release_mirror.FlatcarMirror(str(root), base)
    mirror.handler = handler
    yield mirror
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(os_bed, flatcar_mirror, tmp_path):
    e = dict(os.environ)
    e.update(os_bed.env())
    e.update(flatcar_mirror.env())
    e.update(HOME=str(tmp_path / "home"), KUBE_DOWNLOAD_DIR=str(tmp_path / "cache"),
             INSTANCE_PREFIX="t" + secrets.token_hex(3))
    return e


@pytest.fixture(scope="module")
def glance(os_bed):
    """A keystoneauth session on the bed's image endpoint, for looking."""
    from keystoneauth1 import loading, session as ks_session
    with open(os_bed.clouds_yaml) as f:
        cloud = yaml.safe_load(f)["clouds"]["osbed"]
    sess = ks_session.Session(auth=loading.get_plugin_loader("password").load_from_options(**cloud["auth"]))
    url = sess.get_endpoint(service_type="image", interface="public", region_name=os_bed.region).rstrip("/")

    def images(name):
        return sess.get(f"{url}/v2/images?name={name}").json()["images"]
    return images


def publish(mirror, version, image_bytes_path=None, digests=None, tamper=False):
    path = image_bytes_path or mirror.image
    sha512 = release_mirror.publish_flatcar(mirror.root, CHANNEL, version, path, mirror.gnupghome,
                                            current=False, digests=digests)
    if tamper:
        d = os.path.join(mirror.root, "flatcar", CHANNEL, "amd64-usr", version)
        asc = os.path.join(d, release_mirror.FLATCAR_IMAGE + ".bz2.DIGESTS.asc")
        text = open(asc).read()
        open(asc, "w").write(text.replace("# SHA512 HASH\n", "# SHA512 HASH\n" + "0" * 128 + "  other\n"))
    return sha512


def name(version):
    return f"Flatcar Container Linux {CHANNEL} {version}"


def test_import_then_an_unchanged_rerun_uploads_nothing(env, glance, flatcar_mirror, os_bed):
    proc = run_inv(["image"], env)
    version = flatcar_mirror.version
    found = glance(name(version))
    assert len(found) == 1, proc.stdout
    img = found[0]
    data = open(flatcar_mirror.image, "rb").read()
    assert img["status"] == "active"
    assert img["disk_format"] == "qcow2" and img["container_format"] == "bare"
    assert img["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert img["checksum"] == hashlib.md5(data).hexdigest()
    assert (img["os_distro"], img["os_version"], img["hw_qemu_guest_agent"], img["img_config_drive"]) == \
        ("flatcar", version, "yes", "optional")
    assert "kube-rackspace" in img["tags"]
    # The mirror's image is a 64 MiB qcow2: min_disk rounds up to 1 GB;
    # min_ram is a node's minimum.
    assert (img["min_disk"], img["min_ram"]) == (1, 1024), proc.stdout
    cached = os.path.join(env["KUBE_DOWNLOAD_DIR"], "flatcar", CHANNEL, version, release_mirror.FLATCAR_IMAGE + ".bz2")
    assert os.path.isfile(cached)

    again = run_inv(["image"], env)
    assert "uploaded nothing" in again.stdout
    assert [i["id"] for i in glance(name(version))] == [img["id"]]

    # --list names it, and `inv up`'s default KUBE_IMAGE picks it.
    listed = run_inv(["image", "--list"], dict(env, KUBE_IMAGE="Flatcar Container Linux (Stable)"))
    assert f"{img['id']}" in listed.stdout


def test_list_marks_what_up_uses_and_remove_deletes_only_ours(env, glance, flatcar_mirror):
    version = "4230.2.7"
    publish(flatcar_mirror, version)
    run_inv(["image", "--version", version], env)
    default = {k: v for k, v in env.items() if k != "KUBE_IMAGE"}
    listed = run_inv(["image", "--list"], default).stdout
    line = next(l for l in listed.splitlines() if name(version) in l)
    assert "inv up uses this" in line        # the newest stable of ours
    run_inv(["image", "--remove", version], env)
    assert glance(name(version)) == []
    proc = run_inv(["image", "--remove", version], env, check=False)
    assert proc.returncode == 1 and "no Flatcar image of that version" in proc.stdout


def test_bad_signature_uploads_nothing(env, glance, flatcar_mirror):
    version = "4230.2.2"
    publish(flatcar_mirror, version, tamper=True)
    proc = run_inv(["image", "--version", version], env, check=False)
    assert proc.returncode == 1
    assert "bad OpenPGP signature" in proc.stdout.strip().splitlines()[-1]
    assert "Traceback" not in proc.stdout
    assert glance(name(version)) == []


def test_bad_digest_deletes_the_download_and_leaves_no_image(env, glance, flatcar_mirror):
    version = "4230.2.3"
    wrong = f"# SHA512 HASH\n{'0' * 128}  {release_mirror.FLATCAR_IMAGE}.bz2\n"
    publish(flatcar_mirror, version, digests=wrong)
    proc = run_inv(["image", "--version", version], env, check=False)
    assert proc.returncode == 1
    assert "does not match the signed DIGESTS" in proc.stdout.strip().splitlines()[-1]
    assert [i for i in glance(name(version)) if i["status"] == "active"] == []
    assert glance(name(version)) == []     # the image made for it was deleted
    cache = os.path.join(env["KUBE_DOWNLOAD_DIR"], "flatcar", CHANNEL, version)
    assert not [f for f in os.listdir(cache) if f.endswith(".bz2") or f.endswith(".part")]


def test_interrupted_upload_leaves_no_active_image_and_a_rerun_completes_it(env, glance, flatcar_mirror, tmp_path):
    version = "4230.2.4"
    big = str(tmp_path / "big.qcow2")
    release_mirror.make_qcow2(big, payload=os.urandom(6 << 20))
    publish(flatcar_mirror, version, image_bytes_path=big)
    flatcar_mirror.handler.rate = 1 << 20      # ~6 s of download: the upload is under way meanwhile
    try:
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "image", "--version", version], cwd=REPO_ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = glance(name(version))
            if found and found[0]["status"] == "saving":
                break
            time.sleep(0.1)
        else:
            proc.kill()
            raise AssertionError("the upload never started:\n" + proc.communicate()[0].decode())
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        flatcar_mirror.handler.rate = 0
    # Glance notices the cut connection and discards the partial data.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and glance(name(version))[0]["status"] == "saving":
        time.sleep(0.2)
    [cut] = glance(name(version))
    assert cut["status"] != "active"
    again = run_inv(["image", "--version", version], env)
    [done] = glance(name(version))
    assert done["status"] == "active", again.stdout
    assert done["os_hash_value"] == hashlib.sha512(open(big, "rb").read()).hexdigest()
    if cut["status"] == "queued":
        assert done["id"] == cut["id"]         # completed into the same image


def test_via_url_lets_glance_fetch_it_and_checks_the_stored_digest(env, glance, flatcar_mirror, tmp_path):
    version = "4230.2.5"
    # As large a disk as Flatcar stable's OpenStack image (sparse: a small file).
    image = str(tmp_path / "flatcar-size.qcow2")
    release_mirror.make_qcow2(image, size="13212057600")
    publish(flatcar_mirror, version, image_bytes_path=image)
    proc = run_inv(["image", "--version", version, "--via-url"], env)
    [img] = glance(name(version))
    assert img["status"] == "active", proc.stdout
    assert img["os_hash_value"] == hashlib.sha512(open(image, "rb").read()).hexdigest()
    assert "kube-rackspace" in img["tags"] and img["os_distro"] == "flatcar"
    assert (img["min_disk"], img["min_ram"]) == (13, 1024), proc.stdout


def test_via_url_refuses_an_image_whose_stored_digest_is_not_the_expected_one(env, glance, flatcar_mirror):
    import json
    version = "4230.2.6"
    source = publish(flatcar_mirror, version)
    # What this machine believes the decompressed image's digests are (as an
    # earlier upload would have recorded them), here deliberately wrong.
    record = os.path.join(env["KUBE_DOWNLOAD_DIR"], "flatcar", CHANNEL, version, "image.json")
    os.makedirs(os.path.dirname(record))
    with open(record, "w") as f:
        json.dump({"source_sha512": source, "sha512": "0" * 128, "md5": "0" * 32, "size": 1}, f)
    proc = run_inv(["image", "--version", version, "--via-url"], env, check=False)
    assert proc.returncode == 1
    assert "not the" in proc.stdout.strip().splitlines()[-1] and "deleted it" in proc.stdout
    assert glance(name(version)) == []
