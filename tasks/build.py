"""inv build: make the server tarball that `inv upload` publishes.

  inv build                      make quick-release in KUBE_ROOT
  inv build --release            download KUBE_VERSION from KUBE_RELEASE_URL
  inv build --release v1.31.4    download that release
"""

import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from invoke import task

from .support import lazy, progress
from .support.errors import UserError
from .model.names import RELEASE_TARBALL

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
rel = lazy.module("tasks.model.release")
settings = lazy.module("tasks.model.settings")

requests = lazy.module("requests")

LAST_LINES = 5
TIMEOUT = (15, 60)  # connect, read: seconds


@task(optional=["release"], help={
    "release": "download this release (vX.Y.Z or stable; alone: KUBE_VERSION) instead of building KUBE_ROOT"})
def build(c, release=None):
    """Build the server tarball from KUBE_ROOT, or download a release."""
    if release is not None:
        version = None if release is True else release
        s = settings.load(flags={"KUBE_VERSION": version})
        path = download(s)
    else:
        s = settings.load()
        path = build_from_source(s)
    digests = rel.file_digests(path, rel.DigestCache(s.KUBE_DOWNLOAD_DIR), md5=False)
    print(f"{path}  {digests['size']} bytes  sha256 {digests['sha256']}")


# --- from a Kubernetes checkout --------------------------------------------------

_QUICK_RELEASE = re.compile(r"^quick-release\s*:", re.MULTILINE)


def check_checkout(s):
    """KUBE_ROOT as a Path, or UserError when it is no Kubernetes checkout."""
    s.require("KUBE_ROOT", why="`inv build` builds from a Kubernetes checkout; set it, or run `inv build --release`")
    root = Path(s.KUBE_ROOT)
    if not root.is_dir():
        raise UserError(f"KUBE_ROOT={root} does not exist; point it at a Kubernetes checkout or run `inv build --release`")
    makefile = root / "Makefile"
    try:
        text = makefile.read_text(errors="replace")
    except OSError:
        text = ""
    if not _QUICK_RELEASE.search(text):
        raise UserError(f"KUBE_ROOT={root} is not a Kubernetes checkout: no Makefile with a quick-release target")
    return root


def run_streaming(argv, cwd, keep=LAST_LINES):
    """Run argv, copying its output to ours line by line; (status, last lines)."""
    last = collections.deque(maxlen=keep)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UserError(f"`{argv[0]}` not found; install it (the Kubernetes build needs make and docker)") from None
    try:
        for raw in proc.stdout:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            line = raw.decode(errors="replace").strip()
            if line:
                last.append(line[:200])
        return proc.wait(), list(last)
    except BaseException:
        # Ctrl-C reaches make too (same process group); give it a moment to stop.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise


def build_from_source(s):
    root = check_checkout(s)
    progress.info(f"building {RELEASE_TARBALL} in {root}: make quick-release")
    start = time.time()
    status, last = run_streaming(["make", "quick-release"], cwd=root)
    if status != 0:
        tail = " | ".join(last) or "no output"
        raise UserError(f"`make quick-release` in KUBE_ROOT={root} failed with exit status {status}; last lines: {tail}")
    places = [root / "server" / RELEASE_TARBALL, root / "_output" / "release-tars" / RELEASE_TARBALL]
    found = next((p for p in places if p.is_file()), None)
    if found is None:
        raise UserError(f"`make quick-release` in KUBE_ROOT={root} succeeded but left no tarball: looked in "
                        f"{places[0]} and {places[1]}")
    if found.stat().st_mtime < start and places[1].is_file() and found != places[1]:
        # server/ wins, as in find-release-tars; say so when it is older than the build.
        progress.info(f"note: using {found} (it comes first), not the newer {places[1]}")
    progress.info(f"built {found} in {time.time() - start:.0f}s")
    return found


# --- from the release site --------------------------------------------------------

def _get(session, url, what, stream=False):
    try:
        response = session.get(url, stream=stream, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise UserError(f"cannot download {what} from {url}: {type(exc).__name__}; check KUBE_RELEASE_URL and your network") from None
    if response.status_code == 404:
        raise UserError(f"{what} not found at {url} (HTTP 404); check KUBE_VERSION and KUBE_RELEASE_URL")
    if response.status_code != 200:
        raise UserError(f"cannot download {what} from {url}: HTTP {response.status_code}")
    return response


def resolve_version(s, session):
    if s.KUBE_VERSION != "stable":
        return s.KUBE_VERSION
    url = rel.stable_url(s.KUBE_RELEASE_URL)
    version = rel.parse_version(_get(session, url, "the stable release name").text, url)
    progress.info(f"stable is {version}")
    return version


def download(s, session=None):
    """The verified tarball of KUBE_VERSION in KUBE_DOWNLOAD_DIR, downloaded
    unless a verified copy is there."""
    session = session or requests.Session()
    version = resolve_version(s, session)
    url = rel.release_url(s.KUBE_RELEASE_URL, version)
    sums_url = rel.checksum_url(s.KUBE_RELEASE_URL, version)
    expected = rel.parse_sha256(_get(session, sums_url, f"the checksum of {version}").text, sums_url)
    dest = rel.download_path(s, version)
    cache = rel.DigestCache(s.KUBE_DOWNLOAD_DIR)

    if dest.is_file():
        if rel.file_digests(dest, cache, md5=False)["sha256"] == expected:
            progress.info(f"kept {dest}: already downloaded and verified")
            _record(s, version)
            return dest
        dest.unlink()
        progress.info(f"deleted {dest}: its sha256 does not match the published {sums_url}; downloading again")

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    response = _get(session, url, f"release {version}", stream=True)
    total = int(response.headers.get("Content-Length") or 0)
    digests = rel.Digests(md5=False)
    try:
        with open(part, "wb") as f, progress.transfer(f"downloading {version}", total) as advance:
            for chunk in response.iter_content(chunk_size=1 << 20):
                f.write(chunk)
                digests.update(chunk)
                advance(len(chunk))
    except requests.RequestException as exc:
        part.unlink(missing_ok=True)
        raise UserError(f"download of {url} broke off ({type(exc).__name__}); run `inv build --release` again") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if total and digests.size != total:
        part.unlink(missing_ok=True)
        raise UserError(f"download of {url} ended after {digests.size} of {total} bytes; run `inv build --release` again")
    if digests.sha256 != expected:
        part.unlink(missing_ok=True)
        raise UserError(f"downloaded {RELEASE_TARBALL} of {version} failed verification: sha256 {digests.sha256}, "
                        f"published {expected} ({sums_url}); deleted it")
    os.replace(part, dest)
    cache.put(dest, **digests.as_dict(), version=version)
    _record(s, version)
    progress.info(f"downloaded and verified {dest}")
    return dest


def _record(s, version):
    if s.KUBE_VERSION == "stable":
        rel.record_stable(s, version)
