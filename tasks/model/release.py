"""The server tarball: where it is looked for, where it comes from, whether
it is intact. Pure, apart from reading local files; no network here (the
download itself lives in build.py, the upload in steps/publish.py).

Where `find_tarball` looks, in order (the first two as the old
cluster/rackspace find-release-tars did):

  KUBE_ROOT/server/kubernetes-server-linux-amd64.tar.gz
  KUBE_ROOT/_output/release-tars/kubernetes-server-linux-amd64.tar.gz
  KUBE_DOWNLOAD_DIR/<version>/kubernetes-server-linux-amd64.tar.gz

A downloaded tarball only ever appears under its final name after its
checksum was verified (it is downloaded to a .part file first), so its
presence means "verified". KUBE_VERSION=stable maps to a version through
KUBE_DOWNLOAD_DIR/stable.txt, written by `inv build --release stable`, so
finding it needs no network.
"""

import dataclasses
import hashlib
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path

from ..support.errors import UserError
from . import names
from .names import RELEASE_TARBALL

STABLE_RECORD = "stable.txt"
DIGEST_CACHE = "digests.json"
CHUNK = 4 << 20

_VERSION = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")


# --- the release site ---------------------------------------------------------

def release_url(base, version):
    """The server tarball of `version` on the release site (dl.k8s.io layout)."""
    return f"{base.rstrip('/')}/{version}/kubernetes/server/linux/amd64/{RELEASE_TARBALL}"


def checksum_url(base, version):
    return release_url(base, version) + ".sha256"


def stable_url(base):
    return f"{base.rstrip('/')}/release/stable.txt"


def parse_version(text, origin):
    """The version named by stable.txt (one line like v1.31.4)."""
    version = text.strip()
    if not _VERSION.match(version):
        raise UserError(f"{origin} does not name a release (got {version[:40]!r}); check KUBE_RELEASE_URL")
    return version


def parse_sha256(text, origin):
    """The hex digest from a .sha256 file: the digest alone, or `digest  name`."""
    words = text.split()
    if not words or not re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
        raise UserError(f"{origin} holds no sha256 checksum; check KUBE_RELEASE_URL")
    return words[0].lower()


# --- local files --------------------------------------------------------------

def download_path(s, version):
    return Path(s.KUBE_DOWNLOAD_DIR) / version / RELEASE_TARBALL


def stable_record(s):
    return Path(s.KUBE_DOWNLOAD_DIR) / STABLE_RECORD


def record_stable(s, version):
    write_atomic(stable_record(s), version + "\n")


def recorded_stable(s):
    """The version `stable` resolved to at the last download, or None."""
    try:
        return parse_version(stable_record(s).read_text(), str(stable_record(s)))
    except (OSError, UserError):
        return None


def candidates(s):
    """[(path or None, description)] in the order find_tarball tries them.
    path None: the place cannot be named yet (the reason is the description)."""
    places = []
    if s.KUBE_ROOT:
        root = Path(s.KUBE_ROOT)
        places.append((root / "server" / RELEASE_TARBALL, None))
        places.append((root / "_output" / "release-tars" / RELEASE_TARBALL, None))
    version = s.KUBE_VERSION
    if version == "stable":
        version = recorded_stable(s)
        if version is None:
            places.append((None, f"a download of KUBE_VERSION=stable (none recorded in {stable_record(s)})"))
            return places
    places.append((download_path(s, version), None))
    return places


def find_tarball(s):
    """The tarball to upload, or UserError naming every place looked at."""
    looked = []
    for path, reason in candidates(s):
        if path is not None and path.is_file():
            return path
        looked.append(str(path) if path is not None else reason)
    hint = "set KUBE_ROOT and run `inv build`, or run `inv build --release`"
    raise UserError(f"no {RELEASE_TARBALL}: looked in {'; '.join(looked)}; {hint}")


def write_atomic(path, text, mode=0o644):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- digests ------------------------------------------------------------------

class Digests:
    """sha256 (and md5 when asked) of one file, fed chunk by chunk (hashlib
    releases the GIL on large updates, so this can run beside an upload)."""

    def __init__(self, md5=True):
        self._md5 = hashlib.md5() if md5 else None
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data):
        if self._md5 is not None:
            self._md5.update(data)
        self._sha256.update(data)
        self.size += len(data)

    @property
    def md5(self):
        return self._md5.hexdigest() if self._md5 is not None else None

    @property
    def sha256(self):
        return self._sha256.hexdigest()

    def as_dict(self):
        values = {"sha256": self.sha256, "size": self.size}
        if self._md5 is not None:
            values["md5"] = self.md5
        return values


def hash_file(path, cancel=None, md5=True):
    """{'sha256', 'size'[, 'md5']}, or None when `cancel` was set."""
    digests = Digests(md5=md5)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if cancel is not None and cancel.is_set():
                return None
            digests.update(chunk)
    return digests.as_dict()


def sha256_file(path):
    return hash_file(path)["sha256"]


def verify(path, expected_sha256):
    """True when the file's sha256 is the published one."""
    return sha256_file(path) == expected_sha256.lower()


class DigestCache:
    """Digests (and release version) of local files keyed by (path, size,
    mtime), so a second `inv upload` of a 400 MB tarball hashes nothing."""

    def __init__(self, directory):
        self.path = Path(directory) / DIGEST_CACHE

    def _load(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _key(path):
        st = Path(path).stat()
        return str(Path(path).resolve()), st.st_size, st.st_mtime_ns

    def get(self, path):
        name, size, mtime = self._key(path)
        entry = self._load().get(name)
        if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime:
            return entry
        return None

    def put(self, path, **values):
        """Record values for the file as it is now (merged with what is kept)."""
        name, size, mtime = self._key(path)
        data = self._load()
        entry = data.get(name)
        if not entry or entry.get("size") != size or entry.get("mtime_ns") != mtime:
            entry = {"size": size, "mtime_ns": mtime}
        entry.update(values)
        data[name] = entry
        # Drop entries of files that are gone, so the cache stays small.
        data = {k: v for k, v in data.items() if os.path.exists(k)}
        try:
            write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))
        except OSError:
            pass  # a cache that cannot be written only costs time
        return entry


def file_digests(path, cache, md5=True):
    """{'sha256', 'size'[, 'md5']} of the file, from the cache when unchanged.
    md5 costs twice what sha256 does (with SHA extensions): ask only when
    it is needed."""
    entry = cache.get(path)
    if entry and entry.get("sha256") and (entry.get("md5") or not md5):
        return entry
    return cache.put(path, **hash_file(path, md5=md5))


def tarball_version(path):
    """The Kubernetes version inside a server tarball (kubernetes/version, or
    the kube-apiserver image tag beside the binary), or None."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name in ("kubernetes/version", "kubernetes/server/bin/kube-apiserver.docker_tag"):
                    data = tar.extractfile(member).read(100).decode(errors="replace").strip()
                    # Image tags spell '+' as '_'.
                    version = data.replace("_", "+")
                    return version if version.startswith("v") else None
    except (OSError, tarfile.TarError, EOFError):
        return None
    return None


def version_of(s, path, cache):
    """The Kubernetes version in the tarball at `path`, cached like its
    digests (a DigestCache)."""
    entry = cache.get(path) or {}
    if "version" in entry:
        return entry["version"]
    version = version_from_path(s, path) or tarball_version(path)
    cache.put(path, version=version)
    return version


def version_from_path(s, path):
    """The version a downloaded tarball was fetched as, from where it lies."""
    path = Path(path)
    try:
        rel = path.relative_to(Path(s.KUBE_DOWNLOAD_DIR))
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) == 2 and _VERSION.match(rel.parts[0]) else None


# --- temp URLs ----------------------------------------------------------------

_SIGNATURE = re.compile(r"(temp_url_sig=)[^&\s#\"']+")


def redact(text):
    """The URL (or any text holding one) with its temp-URL signature
    replaced, for any output."""
    return _SIGNATURE.sub(r"\1REDACTED", text) if text else text


# --- the record of the last upload (release.json), which `inv status` reads ---

STATE_FILE = "release.json"


@dataclasses.dataclass(frozen=True)
class Release:
    url: str            # temp URL the servers GET (signature inside: never print it, see redacted)
    sha256: str         # of the whole tarball; the servers verify it
    size: int
    expires_at: int     # unix time the temp URL stops working
    container: str
    object_name: str
    version: str | None  # Kubernetes version in the tarball, when known

    @property
    def redacted(self):
        return redact(self.url)


def state_path(s):
    return Path(names.state_dir(s)) / STATE_FILE


def save(s, rel):
    """release.json in the cluster's state dir: mode 0600 (it holds the
    temp URL), dir 0700."""
    directory = Path(names.state_dir(s))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    write_atomic(directory / STATE_FILE, json.dumps(dataclasses.asdict(rel), indent=1) + "\n", mode=0o600)


def load_saved(s):
    """The last published Release, or None."""
    try:
        data = json.loads(state_path(s).read_text())
        return Release(**data)
    except (OSError, ValueError, TypeError):
        return None
