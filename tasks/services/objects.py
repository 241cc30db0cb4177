"""Cloud Files (OpenStack Swift): the only module that talks to it.

Connections are python-swiftclient's, authenticated by our keystoneauth
session (a 401 re-authenticates once). Retries are ours, not swiftclient's,
with the policy of every other service (cloud.ATTEMPTS, cloud.RETRY_BUDGET,
cloud.retry_delay): on 408/413/429/5xx, broken connections and timeouts
(API_TIMEOUT), honouring Retry-After (Rackspace answers 413/429 with it).
Every Swift request we make is idempotent (PUT, POST of metadata, GET,
HEAD, DELETE where 404 counts as done), so all may be sent again.

Large files go up as a static large object (SLO): segments under
`<object>.segments/<upload id>/<n>` in the same container, several at once,
the manifest last. After a good manifest every other segment under
`<object>.segments/` goes (older uploads, leftovers of a killed run); a
failed or interrupted upload deletes its own segments, so no half object
stays behind. `delete_release` removes object and segments alike.
"""

import concurrent.futures
import json
import random
import secrets
import threading
import time
import urllib.parse

import requests
from swiftclient import client as swift
from swiftclient.exceptions import ClientException
from swiftclient.utils import LengthWrapper, generate_temp_url

from ..model import names, release
from . import session as cloudmod
from .session import RETRY_STATUSES
from ..support.errors import CloudError, UserError

RETRIES = cloudmod.ATTEMPTS - 1
MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments
# Digests the servers' temp URLs may be signed with, strongest first.
DIGEST_PREFERENCE = ("sha512", "sha256", "sha1")
META_MD5 = "x-object-meta-md5"
META_SHA256 = "x-object-meta-sha256"
TEMP_URL_KEY = "x-account-meta-temp-url-key"
CONTENT_TYPE = "application/gzip"
READ_SIZE = 1 << 20


class Interrupted(Exception):
    """An upload was cancelled (another segment failed, or Ctrl-C)."""


# --- connections and retries ---------------------------------------------------

def connect(cloud):
    """A swiftclient Connection to the public object-store endpoint. One per
    thread: connections are not thread-safe."""
    return swift.Connection(
        preauthurl=cloud.endpoint("object-store"), preauthtoken=cloud.token,
        session=cloud.session, retries=0, timeout=cloud.settings.API_TIMEOUT)


def retry_delay(attempt, headers=None, rng=random.random):
    return cloudmod.retry_delay(attempt, headers, rng)


def retriable(exc):
    if isinstance(exc, ClientException):
        return exc.http_status is None or exc.http_status in RETRY_STATUSES
    return isinstance(exc, (requests.RequestException, OSError))


def call(fn, *args, reset=None, cancel=None, **kwargs):
    """fn(*args, **kwargs), retried on what retrying can fix; the last error
    is raised as is (callers turn it into one line with `fail`)."""
    start = time.monotonic()
    for attempt in range(RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except (ClientException, requests.RequestException, OSError) as exc:
            if attempt == RETRIES or not retriable(exc) or (cancel is not None and cancel.is_set()):
                raise
            headers = getattr(exc, "http_response_headers", None)
            delay = retry_delay(attempt, headers)
            if time.monotonic() - start + delay > cloudmod.RETRY_BUDGET:
                raise
        if cancel is not None and cancel.wait(delay):
            raise Interrupted()
        if cancel is None:
            time.sleep(delay)
        if reset is not None:
            reset()


def describe(exc):
    if isinstance(exc, ClientException):
        if exc.http_status:
            body = (exc.http_response_content or b"")
            body = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
            first = body.strip().splitlines()[0][:200] if body.strip() else exc.http_reason
            return f"{first} (HTTP {exc.http_status})"
        return str(exc.msg)
    return f"cannot reach Cloud Files ({type(exc).__name__})"


def fail(exc, what):
    raise CloudError(f"{what}: {describe(exc)}") from None


def status(exc):
    return getattr(exc, "http_status", None)


# --- account, containers, objects ---------------------------------------------

def ensure_container(conn, container):
    """Create the container unless it exists (private: no read ACL)."""
    try:
        call(conn.head_container, container)
        return False
    except ClientException as exc:
        if status(exc) != 404:
            fail(exc, f"Cloud Files container {container}")
    try:
        call(conn.put_container, container)
    except (ClientException, requests.RequestException, OSError) as exc:
        fail(exc, f"creating Cloud Files container {container}")
    return True


def head_object(conn, container, name):
    """The object's headers (lower-case keys), or None when absent."""
    try:
        return call(conn.head_object, container, name)
    except ClientException as exc:
        if status(exc) == 404:
            return None
        fail(exc, f"Cloud Files object {container}/{name}")
    except (requests.RequestException, OSError) as exc:
        fail(exc, f"Cloud Files object {container}/{name}")


def is_slo(headers):
    return str((headers or {}).get("x-static-large-object", "")).lower() == "true"


def matches(headers, size, digests):
    """True when the stored object is this file: same size, same sha256 (the
    digest we hand the servers, stored as metadata) and, for a plain object,
    the same MD5 (its ETag, which Swift checked on upload). An SLO's ETag is
    no file MD5; its segments were each checked by Swift as they arrived."""
    if headers is None or int(headers.get("content-length", -1)) != size:
        return False
    if headers.get(META_SHA256) != digests.get("sha256"):
        return False
    if is_slo(headers):
        stored_md5 = headers.get(META_MD5)
        return stored_md5 is None or stored_md5 == digests.get("md5", stored_md5)
    return headers.get("etag", "").strip('"') == digests.get("md5")


def list_names(conn, container, prefix):
    try:
        _, listing = call(conn.get_container, container, prefix=prefix, full_listing=True)
    except ClientException as exc:
        if status(exc) == 404:
            return []
        fail(exc, f"listing {container}/{prefix}")
    except (requests.RequestException, OSError) as exc:
        fail(exc, f"listing {container}/{prefix}")
    return [item["name"] for item in listing]


def delete_objects(cloud, container, object_names, concurrency=4):
    """Delete objects; not-found counts as done. Returns the names deleted."""
    if not object_names:
        return []
    local = threading.local()
    errors = []

    def delete(name):
        if not hasattr(local, "conn"):
            local.conn = connect(cloud)
        try:
            call(local.conn.delete_object, container, name)
        except ClientException as exc:
            if status(exc) != 404:
                errors.append(f"{name}: {describe(exc)}")
        except (requests.RequestException, OSError) as exc:
            errors.append(f"{name}: {describe(exc)}")
        return name

    with concurrent.futures.ThreadPoolExecutor(max(1, concurrency)) as pool:
        done = list(pool.map(delete, object_names))
    if errors:
        raise CloudError(f"deleting from Cloud Files container {container} failed for "
                         f"{len(errors)} object(s): {'; '.join(errors[:3])}")
    return done


def segments_prefix(object_name):
    return f"{object_name}.segments/"


# --- uploads ---------------------------------------------------------------------

class FileSlice(LengthWrapper):
    """`length` bytes of a file from `offset`, read as the request body;
    reports progress, notices cancellation, and rewinds for a retry.

    urllib3 asks for 16 KiB at a time but sends whatever read() returns:
    handing it READ_SIZE instead cuts the Python work per byte (the client
    shares the CPU with everything else), which is most of our gap to curl."""

    def __init__(self, path, offset, length, advance, cancel):
        self._file = open(path, "rb")
        self._file.seek(offset)
        super().__init__(self._file, length, md5=False)
        self._advance = advance
        self._cancel = cancel
        self._sent = 0

    def read(self, size=-1):
        if self._cancel.is_set():
            raise Interrupted()
        chunk = super().read(max(size, READ_SIZE) if size >= 0 else size)
        if chunk:
            self._sent += len(chunk)
            self._advance(len(chunk))
        return chunk

    def _reset(self, *args, **kwargs):
        self._advance(-self._sent)
        self._sent = 0
        super()._reset()

    def close(self):
        self._file.close()


def put_file(conn, container, name, path, size, md5, sha256, advance, cancel):
    """One PUT of the whole file; Swift checks it against our MD5 (ETag)."""
    body = FileSlice(path, 0, size, advance, cancel)
    headers = {META_SHA256: sha256}
    try:
        call(conn.put_object, container, name, contents=body, content_length=size, etag=md5,
             content_type=CONTENT_TYPE, headers=headers, reset=body.reset, cancel=cancel)
    except (ClientException, requests.RequestException, OSError) as exc:
        fail(exc, f"uploading {path} to {container}/{name}")
    except KeyboardInterrupt:
        # Swift stores nothing of a PUT that did not finish.
        raise UserError(f"upload of {path} to {container}/{name} interrupted; nothing stored", code=130) from None
    finally:
        body.close()


def put_segmented(cloud, container, name, path, size, segment_size, concurrency, digests_of, advance,
                  cancel):
    """Upload as an SLO: segments concurrently, then the manifest, whose
    metadata carries the file's sha256 (`digests_of()` is called after the
    segments, so it may hash beside them). On any failure or interrupt the
    segments of this upload are deleted."""
    count = -(-size // segment_size)
    if count > MAX_SEGMENTS:
        raise CloudError(f"{path} would take {count} segments, more than Cloud Files allows ({MAX_SEGMENTS}); "
                         f"raise UPLOAD_SEGMENT_MB")
    upload_id = f"{size}-{time.time_ns()}"
    prefix = f"{segments_prefix(name)}{upload_id}/"
    local = threading.local()
    uploaded = []
    lock = threading.Lock()

    def put_segment(index):
        if cancel.is_set():
            raise Interrupted()
        if not hasattr(local, "conn"):
            local.conn = connect(cloud)
        offset = index * segment_size
        length = min(segment_size, size - offset)
        segment = f"{prefix}{index:08d}"
        body = FileSlice(path, offset, length, advance, cancel)
        try:
            etag = call(local.conn.put_object, container, segment, contents=body, content_length=length,
                        content_type="application/octet-stream", reset=body.reset, cancel=cancel)
        finally:
            body.close()
        with lock:
            uploaded.append(segment)
        return {"path": f"/{container}/{segment}", "etag": etag, "size_bytes": length}

    pool = concurrent.futures.ThreadPoolExecutor(max(1, concurrency))
    try:
        futures = [pool.submit(put_segment, i) for i in range(count)]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()  # the first failure stops the rest
        except BaseException:
            cancel.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        manifest = [f.result() for f in futures]
        digests = digests_of()
        headers = {META_SHA256: digests["sha256"]}
        if digests.get("md5"):
            headers[META_MD5] = digests["md5"]
        conn = connect(cloud)
        call(conn.put_object, container, name, contents=json.dumps(manifest).encode(),
             content_type=CONTENT_TYPE, headers=headers, query_string="multipart-manifest=put")
    except (ClientException, requests.RequestException, OSError, Interrupted, KeyboardInterrupt,
            concurrent.futures.CancelledError) as exc:
        cancel.set()
        _discard(cloud, container, uploaded)
        if isinstance(exc, KeyboardInterrupt):
            # Ctrl-C: one line, the shell's status for SIGINT.
            raise UserError(f"upload of {path} to {container}/{name} interrupted; removed its segments",
                            code=130) from None
        if isinstance(exc, Interrupted):
            raise CloudError(f"upload of {path} to {container}/{name} was interrupted; removed its segments") from None
        fail(exc, f"uploading {path} to {container}/{name} (removed its segments)")
    except BaseException:
        cancel.set()
        _discard(cloud, container, uploaded)
        raise
    return [entry["path"].split("/", 2)[2] for entry in manifest]


def _discard(cloud, container, segments):
    try:
        delete_objects(cloud, container, list(segments))
    except (CloudError, KeyboardInterrupt):
        pass  # best effort; the next good upload sweeps `<object>.segments/`


def sweep_segments(cloud, conn, container, name, keep=()):
    """Delete every segment under `<object>.segments/` but those in `keep`."""
    keep = set(keep)
    stale = [n for n in list_names(conn, container, segments_prefix(name)) if n not in keep]
    return delete_objects(cloud, container, stale)


# --- temp URLs -------------------------------------------------------------------

def info_url(storage_url):
    """Swift's /info sits at the root of the proxy, before /v1/."""
    parts = urllib.parse.urlsplit(storage_url)
    root = parts.path.split("/v1/", 1)[0] if "/v1/" in parts.path + "/" else ""
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, root.rstrip("/") + "/info", "", ""))


class NoTempURL(CloudError):
    """The object storage says (in /info) that it has no temp URLs."""


def temp_url_digest(conn, storage_url):
    """The strongest digest /info allows; sha1 when there is no /info
    (Rackspace Cloud Files) or it predates allowed_digests. NoTempURL when
    /info lists no tempurl."""
    try:
        info = call(conn.get_capabilities, info_url(storage_url))
    except (ClientException, requests.RequestException, OSError, ValueError):
        return "sha1"
    if not isinstance(info, dict):
        return "sha1"
    if "tempurl" not in info:
        raise NoTempURL(f"the object storage at {storage_url} has no temp URL support (no tempurl in /info)")
    allowed = (info.get("tempurl") or {}).get("allowed_digests") or ["sha1"]
    for digest in DIGEST_PREFERENCE:
        if digest in allowed:
            return digest
    raise CloudError(f"the object storage at {storage_url} allows only temp URL digests {allowed}; "
                     f"kube-rackspace signs with {', '.join(DIGEST_PREFERENCE)}")


def ensure_temp_url_key(conn):
    """The account's temp-URL key; a new random one when it has none. The
    key is never printed."""
    try:
        headers = call(conn.head_account)
    except (ClientException, requests.RequestException, OSError) as exc:
        fail(exc, "reading the Cloud Files account")
    key = headers.get(TEMP_URL_KEY) or headers.get(TEMP_URL_KEY + "-2")
    if key:
        return key
    key = secrets.token_hex(32)
    try:
        call(conn.post_account, {"X-Account-Meta-Temp-URL-Key": key})
    except (ClientException, requests.RequestException, OSError) as exc:
        fail(exc, "setting the Cloud Files account's temp URL key")
    return key


def temp_url(storage_url, container, name, key, ttl, digest, now=None):
    """(url, expires_at): a GET URL of the object that needs no token."""
    parts = urllib.parse.urlsplit(storage_url)
    path = f"{parts.path.rstrip('/')}/{container}/{name}"
    expires_at = int(now if now is not None else time.time()) + int(ttl)
    signed = generate_temp_url(urllib.parse.unquote(path), expires_at, key, "GET", absolute=True, digest=digest)
    query = signed.split("?", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, "")), expires_at


# --- for `down` and `status` ------------------------------------------------------

def delete_release(s, cloud):
    """Delete this cluster's release object with its segments, the local
    record of its temp URL, then the container if that leaves it empty
    (shared containers stay). Returns what was removed; what is already
    gone counts as done."""
    container, name = names.container(s), names.release_object(s)
    conn = connect(cloud)
    removed = []
    headers = head_object(conn, container, name)
    if headers is not None:
        try:
            if is_slo(headers):
                call(conn.delete_object, container, name, query_string="multipart-manifest=delete")
            else:
                call(conn.delete_object, container, name)
        except ClientException as exc:
            if status(exc) != 404:
                fail(exc, f"deleting {container}/{name}")
        except (requests.RequestException, OSError) as exc:
            fail(exc, f"deleting {container}/{name}")
        removed.append(f"object {container}/{name}")
    # Segments the manifest delete left (or a killed upload did).
    leftovers = sweep_segments(cloud, conn, container, name)
    if leftovers:
        removed.append(f"{len(leftovers)} segment(s) under {container}/{segments_prefix(name)}")
    # The record of the temp URL that now leads nowhere (release.save).
    record = release.state_path(s)
    if record.exists():
        record.unlink()
        removed.append(f"record {record}")
    try:
        call(conn.delete_container, container)
        removed.append(f"container {container}")
    except ClientException as exc:
        if status(exc) not in (404, 409):  # 409: other objects remain
            fail(exc, f"deleting container {container}")
    except (requests.RequestException, OSError) as exc:
        fail(exc, f"deleting container {container}")
    return removed


def describe_release(s, cloud):
    """The stored release object as a dict, or None when there is none."""
    container, name = names.container(s), names.release_object(s)
    headers = head_object(connect(cloud), container, name)
    if headers is None:
        return None
    return {
        "container": container,
        "object": name,
        "size": int(headers.get("content-length", 0)),
        "md5": headers.get(META_MD5) or (None if is_slo(headers) else headers.get("etag", "").strip('"')),
        "sha256": headers.get(META_SHA256),
        "segmented": is_slo(headers),
        "last_modified": headers.get("last-modified"),
    }
