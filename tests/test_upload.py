"""`inv upload` against the test cloud's real Swift: read back, no transfer
when unchanged, temp URLs (good, tampered, expired), segmented uploads,
an interrupted upload, and `delete_release` / `describe_release`."""

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from tasks.services import objects as cloudfiles
from tasks.model import names, release, settings
from tasks.services.session import Cloud
from tasks.model.names import RELEASE_TARBALL
from tests.harness import run_inv
from tests.testcloud.util import REPO_ROOT


class Swift:
    """Plain HTTP to the test cloud's Swift with a token, to check what the
    tool stored independently of its own code."""

    def __init__(self, cloud):
        self.base = cloud.storage_url
        self.headers = {"X-Auth-Token": cloud.token()}

    def head(self, container, name=""):
        return requests.head(f"{self.base}/{container}/{name}".rstrip("/"), headers=self.headers, timeout=10)

    def get(self, container, name, **params):
        return requests.get(f"{self.base}/{container}/{name}", headers=self.headers, params=params, timeout=30)

    def listing(self, container, prefix=""):
        r = requests.get(f"{self.base}/{container}", headers=self.headers, params={"prefix": prefix, "format": "json"},
                         timeout=10)
        return [] if r.status_code == 404 else [o["name"] for o in r.json()]

    def put(self, container, name, data):
        requests.put(f"{self.base}/{container}", headers=self.headers, timeout=10).raise_for_status()
        requests.put(f"{self.base}/{container}/{name}", headers=self.headers, data=data,
                     timeout=10).raise_for_status()

    def account_key(self):
        return requests.head(self.base, headers=self.headers, timeout=10).headers["X-Account-Meta-Temp-Url-Key"]


@pytest.fixture
def env(cloud_env, tmp_path):
    return dict(cloud_env, KUBE_DOWNLOAD_DIR=str(tmp_path / "downloads"), KUBE_STATE_DIR=str(tmp_path / "state"),
                CLOUDFILES_CONTAINER="c-" + cloud_env["INSTANCE_PREFIX"])


@pytest.fixture
def swift(test_cloud):
    return Swift(test_cloud)


def big_tarball(env, tmp_path, mib):
    """A random 'tarball' of `mib` MiB in KUBE_ROOT/server (the upload does
    not care what is inside)."""
    root = tmp_path / "kubernetes"
    (root / "server").mkdir(parents=True, exist_ok=True)
    path = root / "server" / RELEASE_TARBALL
    path.write_bytes(os.urandom(int(mib * (1 << 20))))
    env["KUBE_ROOT"] = str(root)
    return path


def saved(env):
    return json.loads((Path(env["KUBE_STATE_DIR"]) / env["INSTANCE_PREFIX"] / "release.json").read_text())


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_upload_and_temp_url(env, swift, test_cloud):
    run_inv(["build", "--release"], env)
    tarball = Path(env["KUBE_DOWNLOAD_DIR"]) / env["KUBE_VERSION"] / RELEASE_TARBALL
    out = run_inv(["upload"], env).stdout
    container, name = env["CLOUDFILES_CONTAINER"], f"{env['INSTANCE_PREFIX']}/{RELEASE_TARBALL}"

    # Read back with a token: the same bytes.
    stored = swift.get(container, name)
    assert stored.status_code == 200 and stored.content == tarball.read_bytes()
    # The container is private.
    assert requests.get(f"{test_cloud.storage_url}/{container}/{name}", timeout=10).status_code == 401

    record = saved(env)
    state = Path(env["KUBE_STATE_DIR"]) / env["INSTANCE_PREFIX"]
    assert stat.S_IMODE((state / "release.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert record["sha256"] == sha256(tarball.read_bytes()) and record["version"] == env["KUBE_VERSION"]
    assert record["container"] == container and record["object_name"] == name
    url = record["url"]
    # CLOUDFILES_SERVICENET (default true): the servers download over the
    # catalog's internal endpoint, another proxy than the one we upload to.
    assert url.startswith(f"{test_cloud.internal_storage_url}/{container}/")
    signature = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["temp_url_sig"]
    assert signature not in out and "temp_url_sig=REDACTED" in out
    assert swift.account_key() not in out

    # The temp URL needs no token and returns the same bytes.
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and sha256(got.content) == record["sha256"]
    assert abs(record["expires_at"] - (time.time() + 86400)) < 120
    # /info allows sha512 here: the strongest is used.
    assert signature.startswith("sha512:")
    # A tampered signature, and an expired URL signed with the account's key, get 401.
    tampered = url.replace(signature, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB"))
    assert requests.get(tampered, timeout=10).status_code == 401
    expired, _ = cloudfiles.temp_url(test_cloud.storage_url, container, name, swift.account_key(), 60, "sha512",
                                     now=time.time() - 3600)
    assert requests.get(expired, timeout=10).status_code == 401


def test_public_temp_url_and_the_sha1_fallback_without_info(env, swift, test_cloud, tmp_path):
    path = big_tarball(env, tmp_path, 0.1)
    container, name = env["CLOUDFILES_CONTAINER"], f"{env['INSTANCE_PREFIX']}/{RELEASE_TARBALL}"
    run_inv(["upload"], dict(env, CLOUDFILES_SERVICENET="false"))
    url = saved(env)["url"]
    assert url.startswith(f"{test_cloud.public_storage_url}/{container}/{name}?")
    assert requests.get(url, timeout=30).content == path.read_bytes()

    # Rackspace's Cloud Files has no /info (nor has this endpoint): SHA-1,
    # which every tempurl middleware accepts.
    run_inv(["upload"], dict(env, CLOUDFILES_SERVICENET="false", STORAGE_ENDPOINT=test_cloud.internal_storage_url))
    url = saved(env)["url"]
    assert url.startswith(f"{test_cloud.internal_storage_url}/{container}/{name}?")
    signature = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["temp_url_sig"]
    assert len(signature) == 40 and int(signature, 16) >= 0   # hex HMAC-SHA1, no "sha1:" prefix
    assert requests.get(url, timeout=30).content == path.read_bytes()


def test_unchanged_second_upload_transfers_nothing(env, swift):
    big_tarball(env, Path(env["KUBE_STATE_DIR"]).parent, 2)
    env["UPLOAD_SEGMENT_MB"] = "1"
    run_inv(["upload"], env)
    container, name = env["CLOUDFILES_CONTAINER"], f"{env['INSTANCE_PREFIX']}/{RELEASE_TARBALL}"
    before = swift.head(container, name).headers["X-Timestamp"]
    listing = swift.listing(container)
    again = run_inv(["upload"], env)
    assert "is up to date" in again.stdout and "uploading" not in again.stdout
    assert swift.head(container, name).headers["X-Timestamp"] == before
    assert swift.listing(container) == listing


def test_segmented_upload_reads_back_whole(env, swift, tmp_path):
    path = big_tarball(env, tmp_path, 3.5)
    env.update(UPLOAD_SEGMENT_MB="1", UPLOAD_CONCURRENCY="3")
    run_inv(["upload"], env)
    container, name = env["CLOUDFILES_CONTAINER"], f"{env['INSTANCE_PREFIX']}/{RELEASE_TARBALL}"
    head = swift.head(container, name)
    assert head.headers.get("X-Static-Large-Object") == "True"
    assert int(head.headers["Content-Length"]) == path.stat().st_size
    assert swift.get(container, name).content == path.read_bytes()
    segments = swift.listing(container, f"{name}.segments/")
    assert len(segments) == 4
    url = saved(env)["url"]
    assert sha256(requests.get(url, timeout=30).content) == sha256(path.read_bytes())

    # A changed tarball replaces the object; the old segments go.
    path.write_bytes(os.urandom(5 << 19))
    run_inv(["upload"], env)
    assert swift.get(container, name).content == path.read_bytes()
    new_segments = swift.listing(container, f"{name}.segments/")
    assert len(new_segments) == 3 and not set(new_segments) & set(segments)


def test_interrupted_upload_leaves_no_half_object(env, swift, tmp_path):
    big_tarball(env, tmp_path, 200)
    env.update(UPLOAD_SEGMENT_MB="1", UPLOAD_CONCURRENCY="1")
    container, name = env["CLOUDFILES_CONTAINER"], f"{env['INSTANCE_PREFIX']}/{RELEASE_TARBALL}"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "upload"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not swift.listing(container, f"{name}.segments/"):
        assert proc.poll() is None and time.monotonic() < deadline, "no segment appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    assert swift.head(container, name).status_code == 404
    assert swift.listing(container, f"{name}.segments/") == []


def reading_offset(pid, path):
    """How far process `pid` has read the file at `path` (0: not open)."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    return int(f.readline().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return 0


def test_interrupted_single_put_exits_130_and_stores_nothing(env, swift, tmp_path):
    path = big_tarball(env, tmp_path, 160)
    env["UPLOAD_SEGMENT_MB"] = "512"      # one PUT
    container, name = env["CLOUDFILES_CONTAINER"], f"{env['INSTANCE_PREFIX']}/{RELEASE_TARBALL}"
    # Digests cached as an earlier run leaves them: the only read of the
    # file by `inv upload` is then the PUT's, and its offset shows the
    # bytes sent so far.
    release.file_digests(path, release.DigestCache(env["KUBE_DOWNLOAD_DIR"]))
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "upload"], cwd=REPO_ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while reading_offset(proc.pid, path) < (8 << 20):
        assert proc.poll() is None and time.monotonic() < deadline, "the PUT did not start"
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    lines = out.strip().splitlines()
    assert lines[-1] == f"error: upload of {path} to {container}/{name} interrupted; nothing stored", out
    assert "Traceback" not in out
    assert swift.head(container, name).status_code == 404
