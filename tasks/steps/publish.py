"""Publish the server tarball on Cloud Files behind a temp URL.

`publish(s)` is what `inv up`, `inv master` and `inv nodes` call: it finds
the tarball, uploads it unless the stored object is the same file, and
returns a fresh temp URL for the servers. Re-running it transfers nothing
when nothing changed, and hashes nothing either (digests are cached by
path, size and mtime).
"""

import threading
import time

from .. import kinds
from ..model import names, release
from ..model.release import Release
from ..services.session import Cloud
from ..support import lazy, progress
from ..support.errors import CloudError

cloudfiles = lazy.module("tasks.services.objects")


def plan(remote_headers, size, digests, segment_size):
    """What to do: 'skip' (same file stored), 'put' (one PUT) or 'slo'.
    digests None: not known yet (only possible when nothing is stored)."""
    if digests is not None and cloudfiles.matches(remote_headers, size, digests):
        return "skip"
    return "put" if size <= segment_size else "slo"


def publish(s, cloud=None):
    path = release.find_tarball(s)
    size = path.stat().st_size
    cache = release.DigestCache(s.KUBE_DOWNLOAD_DIR)
    container, name = names.container(s), names.release_object(s)
    segment_size = s.UPLOAD_SEGMENT_MB << 20

    # A plain PUT sends the MD5 for Swift to check; an SLO needs only the
    # sha256, which can be computed while the segments go up.
    plain = size <= segment_size
    cached = cache.get(path)
    digests = cached if cached and cached.get("sha256") and (cached.get("md5") or not plain) else None
    cancel = threading.Event()
    # Digests that are not cached are needed whatever the storage holds (to
    # compare with it, or as the new object's metadata): hashing starts now,
    # beside the client libraries' import, the token and the first requests,
    # while the object store is still idle, and not only beside the segments,
    # where it takes CPU from the upload (issue 22; README, benchmarks).
    digests_of = _hash_beside(path, cache, digests, cancel, md5=plain)
    try:
        cloud = cloud or Cloud(s)
        conn = cloudfiles.connect(cloud)
        storage_url = cloud.endpoint("object-store")
        try:
            # Its own connection: swiftclient keeps the /info URL's connection
            # for the requests that follow, which would then miss the account.
            digest = cloudfiles.temp_url_digest(cloudfiles.connect(cloud), storage_url)
        except cloudfiles.NoTempURL as exc:
            # No temp URLs (an OpenStack Swift without the middleware): the
            # servers can fetch only what the release site serves.
            cancel.set()
            return from_release_site(s, path, cache,
                                     delivery(False, release.version_from_path(s, path), exc.reason))
        cloudfiles.ensure_container(conn, container)
        remote = cloudfiles.head_object(conn, container, name)
        same_size = remote is not None and int(remote.get("content-length", -1)) == size
        if digests is None and (same_size or plain):
            # Needed up front to compare with what is stored (or for a plain
            # PUT); a stored object of another size is replaced at once.
            digests = digests_of()
        action = plan(remote, size, digests, segment_size)

        if action == "skip":
            progress.info(f"{container}/{name} is up to date ({path})")
        else:
            digests = _upload(s, cloud, conn, path, size, digests_of, action, container, name, segment_size,
                              cancel)
    except BaseException:
        cancel.set()   # the hashing thread stops too
        raise

    version = release.version_of(s, path, cache)
    key = cloudfiles.ensure_temp_url_key(conn)
    # Legacy: ServiceNet when CLOUDFILES_SERVICENET; OpenStack has none.
    server_url = kinds.of(cloud).release_endpoint(s, cloud, storage_url)
    url, expires_at = cloudfiles.temp_url(server_url, container, name, key, s.TEMP_URL_TTL, digest)
    result = Release(url=url, sha256=digests["sha256"], size=size, expires_at=expires_at,
                     container=container, object_name=name, version=version)
    release.save(s, result)
    return result


def delivery(temp_urls, official_version, why=""):
    """Pure: how the servers get the release. 'temp-url' (from object
    storage), or 'release-site' when the storage has no temp URLs and the
    tarball is an official release (fetched by `inv build --release`): the
    servers download it from KUBE_RELEASE_URL and check the sha256 their
    user data pins. A custom build cannot be handed over without temp URLs."""
    if temp_urls:
        return "temp-url"
    if official_version:
        return "release-site"
    raise CloudError(f"{why}; a custom build can reach the servers only through a temp URL: use a cloud whose "
                     "object storage has temp URLs, or an official release (inv build --release VERSION)")


def from_release_site(s, path, cache, how):
    """The Release the servers fetch from KUBE_RELEASE_URL themselves."""
    version = release.version_from_path(s, path)
    digests = release.file_digests(path, cache, md5=False)
    url = release.release_url(s.KUBE_RELEASE_URL, version)
    progress.info(f"no temp URLs in this cloud's object storage: the servers download {version} from "
                  f"{s.KUBE_RELEASE_URL} (sha256 {digests['sha256'][:12]}... pinned in their user data)")
    result = Release(url=url, sha256=digests["sha256"], size=digests["size"], expires_at=0, container="",
                     object_name="", version=version)
    release.save(s, result)
    return result


def _upload(s, cloud, conn, path, size, digests_of, action, container, name, segment_size, cancel):
    start = time.monotonic()
    with progress.transfer(f"uploading {path.name} to {container}", size) as advance:
        if action == "put":
            digests = digests_of()
            cloudfiles.put_file(conn, container, name, path, size, digests["md5"], digests["sha256"],
                                advance, cancel)
            keep = []
        else:
            keep = cloudfiles.put_segmented(cloud, container, name, path, size, segment_size,
                                            s.UPLOAD_CONCURRENCY, digests_of, advance, cancel)
            digests = digests_of()
    # Older segments of this object (a replaced SLO, a killed upload).
    cloudfiles.sweep_segments(cloud, conn, container, name, keep=keep)
    elapsed = time.monotonic() - start
    progress.info(f"uploaded {path} to {container}/{name}: {size / 2**20:.1f} MiB in {elapsed:.1f}s"
                  + (f" ({len(keep)} segments)" if keep else ""))
    return digests


def _hash_beside(path, cache, digests, cancel, md5=False):
    """A function returning the file's digests; when they are not cached,
    a thread computes them meanwhile (hashlib releases the GIL, so this
    costs little wall time)."""
    if digests is not None:
        return lambda: digests
    box = {}

    def run():
        try:
            box["digests"] = release.hash_file(path, cancel, md5=md5)
        except BaseException as exc:  # reported to the caller in get()
            box["error"] = exc

    thread = threading.Thread(target=run, name="hash-release", daemon=True)
    thread.start()

    def get():
        if "result" not in box:
            thread.join()
            if "error" in box:
                raise box["error"]
            if box.get("digests") is None:
                raise cloudfiles.Interrupted()
            cache.put(path, **box["digests"])
            box["result"] = box["digests"]
        return box["result"]
    return get
