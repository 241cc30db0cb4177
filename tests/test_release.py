"""Pure parts of the release stages: where tarballs are looked for, release
site URLs, digests and their cache, temp-URL redaction and signing, retry
delays, and the upload plan."""

import hashlib
import hmac
import io
import os
import tarfile
import urllib.parse

import pytest

from tasks.services import objects as cloudfiles
from tasks.model import release, settings
from tasks.steps import publish
from tasks.support.errors import UserError
from tasks.model.names import RELEASE_TARBALL


def load(tmp_path, **env):
    environ = {"KUBE_DOWNLOAD_DIR": str(tmp_path / "downloads"), "KUBE_STATE_DIR": str(tmp_path / "state")}
    environ.update(env)
    return settings.load(environ=environ)


def make_tarball(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- release site ---------------------------------------------------------------

def test_release_site_urls():
    base = "https://dl.k8s.io/"
    assert release.release_url(base, "v1.31.4") == \
        "https://dl.k8s.io/v1.31.4/kubernetes/server/linux/amd64/kubernetes-server-linux-amd64.tar.gz"
    assert release.checksum_url("https://mirror.example/k8s", "v1.31.4") == \
        "https://mirror.example/k8s/v1.31.4/kubernetes/server/linux/amd64/kubernetes-server-linux-amd64.tar.gz.sha256"
    assert release.stable_url("https://dl.k8s.io") == "https://dl.k8s.io/release/stable.txt"


def test_parse_sha256_and_version():
    digest = "ab" * 32
    assert release.parse_sha256(digest + "\n", "x") == digest
    assert release.parse_sha256(f"{digest.upper()}  {RELEASE_TARBALL}\n", "x") == digest
    with pytest.raises(UserError, match="holds no sha256 checksum"):
        release.parse_sha256("<html>not found</html>", "x")
    assert release.parse_version("v1.31.4\n", "x") == "v1.31.4"
    with pytest.raises(UserError, match="does not name a release"):
        release.parse_version("<html>", "https://mirror/release/stable.txt")


# --- find_tarball ---------------------------------------------------------------

def test_find_tarball_order(tmp_path):
    root = tmp_path / "kubernetes"
    s = load(tmp_path, KUBE_ROOT=str(root), KUBE_VERSION="v1.31.4")
    server = root / "server" / RELEASE_TARBALL
    output = root / "_output" / "release-tars" / RELEASE_TARBALL
    downloaded = release.download_path(s, "v1.31.4")
    for p in (server, output, downloaded):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    assert release.find_tarball(s) == server
    server.unlink()
    assert release.find_tarball(s) == output
    output.unlink()
    assert release.find_tarball(s) == downloaded
    downloaded.unlink()
    with pytest.raises(UserError) as exc:
        release.find_tarball(s)
    message = str(exc.value)
    for place in (server, output, downloaded):
        assert str(place) in message
    assert "inv build" in message and "\n" not in message


def test_find_tarball_stable_uses_the_recorded_version(tmp_path):
    s = load(tmp_path)  # KUBE_VERSION=stable, no KUBE_ROOT
    with pytest.raises(UserError, match="KUBE_VERSION=stable.*stable.txt.*inv build --release"):
        release.find_tarball(s)
    path = release.download_path(s, "v1.30.2")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    release.record_stable(s, "v1.30.2")
    assert release.find_tarball(s) == path
    assert release.version_from_path(s, path) == "v1.30.2"
    assert release.version_from_path(s, tmp_path / RELEASE_TARBALL) is None


# --- digests --------------------------------------------------------------------

def test_digest_cache_keys_on_size_and_mtime(tmp_path):
    f = tmp_path / "blob"
    f.write_bytes(b"first content")
    cache = release.DigestCache(tmp_path / "cache")
    first = release.file_digests(f, cache)
    assert first["md5"] == hashlib.md5(b"first content").hexdigest()
    assert first["sha256"] == hashlib.sha256(b"first content").hexdigest()
    # Same size and mtime: the cache answers, the file is not read again.
    st = f.stat()
    f.write_bytes(b"other content")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert release.file_digests(f, cache)["sha256"] == first["sha256"]
    # A new mtime: hashed again.
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert release.file_digests(f, cache)["sha256"] == hashlib.sha256(b"other content").hexdigest()


def test_hash_file_matches_hashlib(tmp_path):
    data = os.urandom(release.CHUNK * 2 + 123)
    f = tmp_path / "blob"
    f.write_bytes(data)
    assert release.hash_file(f) == {"md5": hashlib.md5(data).hexdigest(),
                                    "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert release.hash_file(f, md5=False) == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert release.verify(f, hashlib.sha256(data).hexdigest().upper())
    assert not release.verify(f, "0" * 64)


def test_tarball_version(tmp_path):
    assert release.tarball_version(make_tarball(tmp_path / "a.tgz", {
        "kubernetes/server/bin/kubelet": b"#!", "kubernetes/version": b"v1.31.4\n"})) == "v1.31.4"
    assert release.tarball_version(make_tarball(tmp_path / "b.tgz", {
        "kubernetes/server/bin/kube-apiserver.docker_tag": b"v1.32.0-alpha.1.5_abc\n"})) == "v1.32.0-alpha.1.5+abc"
    assert release.tarball_version(make_tarball(tmp_path / "c.tgz", {"other": b"x"})) is None
    (tmp_path / "d.tgz").write_bytes(os.urandom(1000))
    assert release.tarball_version(tmp_path / "d.tgz") is None


# --- temp URLs ------------------------------------------------------------------

def test_redact_hides_only_the_signature():
    url = "https://snet.example/v1/MossoCloudFS_1/c/p/k.tar.gz?temp_url_sig=deadbeef&temp_url_expires=1700000000"
    assert release.redact(url) == url.replace("deadbeef", "REDACTED")
    assert release.redact(f"GET {url} failed") == f"GET {url.replace('deadbeef', 'REDACTED')} failed"
    sha512 = "https://h/v1/a/c/o?temp_url_sig=sha512:AbC-_x&temp_url_expires=1"
    assert "AbC" not in release.redact(sha512)
    assert release.redact("https://h/v1/a/c/o") == "https://h/v1/a/c/o"
    assert release.redact(None) is None


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_temp_url_is_signed_as_swift_checks_it(digest):
    key = "k" * 64
    url, expires = cloudfiles.temp_url("https://storage.example/v1/AUTH_1", "releases", "p/obj.tar.gz",
                                       key, 600, digest, now=1_000_000)
    assert expires == 1_000_600
    parts = urllib.parse.urlsplit(url)
    assert parts.path == "/v1/AUTH_1/releases/p/obj.tar.gz"
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert query["temp_url_expires"] == "1000600"
    # Swift's tempurl: HMAC(key, "GET\n<expires>\n<path>").
    mac = hmac.new(key.encode(), f"GET\n1000600\n{parts.path}".encode(), digest)
    if digest == "sha512":
        import base64
        assert query["temp_url_sig"] == "sha512:" + base64.urlsafe_b64encode(mac.digest()).decode().strip("=")
    else:
        assert query["temp_url_sig"] == mac.hexdigest()


def test_info_url_is_at_the_proxy_root():
    assert cloudfiles.info_url("https://storage101.ord1.clouddrive.com/v1/MossoCloudFS_abc") == \
        "https://storage101.ord1.clouddrive.com/info"
    assert cloudfiles.info_url("http://127.0.0.1:8080/swift/v1/AUTH_1") == "http://127.0.0.1:8080/swift/info"


# --- retries and the upload plan ---------------------------------------------------

def test_retry_delay_honours_retry_after_and_is_bounded():
    assert cloudfiles.retry_delay(0, {"Retry-After": "7"}) == 7.0
    from tasks.services import session as cloud
    assert cloudfiles.retry_delay(0, {"retry-after": "100000"}) == cloud.MAX_RETRY_AFTER
    delays = [cloudfiles.retry_delay(n, {}, rng=lambda: 1.0) for n in range(10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == cloud.BACKOFF_MAX
    # An HTTP-date Retry-After falls back to backoff.
    assert cloudfiles.retry_delay(2, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, rng=lambda: 0.0) == 1.0


def test_retriable_statuses():
    from swiftclient.exceptions import ClientException
    for code in (408, 413, 429, 500, 503):
        assert cloudfiles.retriable(ClientException("x", http_status=code))
    for code in (401, 403, 404, 409, 422):
        assert not cloudfiles.retriable(ClientException("x", http_status=code))


def test_plan_and_match():
    md5, sha = "a" * 32, "b" * 64
    digests = {"md5": md5, "sha256": sha}
    plain = {"content-length": "10", "etag": md5, cloudfiles.META_SHA256: sha}
    slo = {"content-length": "10", "etag": '"' + "c" * 32 + '"', "x-static-large-object": "True",
           cloudfiles.META_MD5: md5, cloudfiles.META_SHA256: sha}
    assert publish.plan(plain, 10, digests, 100) == "skip"
    assert publish.plan(slo, 10, digests, 100) == "skip"
    assert publish.plan(dict(slo, **{cloudfiles.META_MD5: "d" * 32}), 10, digests, 100) == "put"
    assert publish.plan(dict(plain, **{"content-length": "11"}), 10, digests, 5) == "slo"
    assert publish.plan({k: v for k, v in plain.items() if k != cloudfiles.META_SHA256}, 10, digests, 100) == "put"
    assert publish.plan(None, 10, None, 5) == "slo"
    # An SLO is compared by size and sha256 when no MD5 is at hand.
    slo_no_md5 = {k: v for k, v in slo.items() if k != cloudfiles.META_MD5}
    assert publish.plan(slo_no_md5, 10, {"sha256": sha}, 5) == "skip"
    assert publish.plan(slo_no_md5, 10, {"sha256": "e" * 64}, 5) == "slo"
    # A plain object needs its MD5 (the ETag Swift checked).
    assert publish.plan(plain, 10, {"sha256": sha}, 5) == "slo"
