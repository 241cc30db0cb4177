"""Download -> decompress -> upload in one pass, hashing as it goes.

Three stages run at once, joined by small bounded queues:

  fetch       the .img.bz2 from the release server (kept in the download
              cache as it arrives) or from the cache, hashed on the way
  decompress  bzip2 (multi-stream aware), in its own thread; bz2 and
              hashlib release the GIL, so the stages overlap on 2 cores
  upload      the caller's consumer (Glance's PUT /file) reads the
              decompressed chunks from an iterator, hashing them (md5,
              sha512: what Glance stores as checksum and os_hash_value)

Nothing unverified becomes an image: the upload's last chunk is held back
until the compressed file's digest matched the signed DIGESTS. On a
mismatch the iterator raises instead, the upload is cut short (Glance
discards a partial upload and leaves the image `queued`), and the cached
download is deleted.

A verified download is renamed from .part to its final name, so a file
under that name was verified once; it is checked again while it streams.
"""

import bz2
import hashlib
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from ..support import lazy, progress
from ..support.errors import UserError

requests = lazy.module("requests")

CHUNK = 1 << 20
DEPTH = 16            # chunks in flight per queue: bounded memory (a few MiB)
TIMEOUT = (15, 60)    # connect, read seconds for the release server
_END = object()


class DigestMismatch(UserError):
    """The compressed image is not the one the signed DIGESTS names."""


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class Streamed:
    """What went through: the decompressed image's size and digests."""
    size: int
    md5: str
    sha512: str
    compressed_size: int
    from_cache: bool
    virtual_size: int = 0     # the qcow2 header's guest disk size (0: not qcow2)

    def digests(self):
        return {"md5": self.md5, "sha512": self.sha512, "size": self.size, "virtual_size": self.virtual_size}


def _put(q, item, stop):
    while True:
        if stop.is_set():
            raise Cancelled()
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _get(q, stop):
    while True:
        if stop.is_set():
            raise Cancelled()
        try:
            return q.get(timeout=0.2)
        except queue.Empty:
            continue


def decompress_chunks(chunks, on_input=None):
    """Decompressed pieces (at most CHUNK bytes each) of bzip2 data that may
    hold several streams (lbzip2 and pbzip2 write one per block)."""
    decomp = bz2.BZ2Decompressor()
    started = False
    for data in chunks:
        if on_input:
            on_input(len(data))
        while True:
            if decomp.eof:
                data = decomp.unused_data + data
                if not data:
                    break
                decomp = bz2.BZ2Decompressor()
            if not data and decomp.needs_input:
                break
            # max_length bounds memory: bzip2 can expand a MiB into gigabytes.
            out = decomp.decompress(data, max_length=CHUNK)
            data = b""
            started = True
            if out:
                yield out
    if not started or not decomp.eof:
        raise OSError("the bzip2 data ends early")


class Pipeline:
    """One pass of the release image through the three stages.

        with Pipeline(url, cache_path, algo, expected, session) as pipe:
            upload(pipe.chunks())        # the consumer; may raise
        pipe.result                      # Streamed, once chunks() ran out

    After a consumer failure (not Ctrl-C) the fetch stage still finishes
    the download into the cache, so a retry reads it from disk."""

    def __init__(self, url, cache_path, algo, expected, session=None, total=None):
        self.url = url
        self.cache_path = Path(cache_path)
        self.part = self.cache_path.with_name(self.cache_path.name + ".part")
        self.algo, self.expected = algo, expected.lower()
        self.session = session
        self.from_cache = self.cache_path.is_file()
        self.total = self.cache_path.stat().st_size if self.from_cache else total
        self.compressed = queue.Queue(DEPTH)
        self.decompressed = queue.Queue(DEPTH)
        self.stop = threading.Event()          # Ctrl-C or the end: everything stops
        self.downstream_gone = threading.Event()  # the consumer failed: fetch only fills the cache
        self.errors = []
        self.verified = threading.Event()
        self.result = None
        self._threads = []

    # -- stage 1 -----------------------------------------------------------
    def _open(self):
        if self.from_cache:
            f = open(self.cache_path, "rb")
            try:
                while chunk := f.read(CHUNK):
                    yield chunk
            finally:
                f.close()
            return
        response = self._response
        length = int(response.headers.get("Content-Length") or 0) or None
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        got = 0
        try:
            with open(self.part, "wb") as out:
                for chunk in response.iter_content(chunk_size=CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    yield chunk
        except requests.RequestException as exc:
            self.part.unlink(missing_ok=True)
            raise UserError(f"download of {self.url} broke off ({type(exc).__name__}); run `inv image` again") from None
        if length and got != length:
            self.part.unlink(missing_ok=True)
            raise UserError(f"download of {self.url} ended after {got} of {length} bytes; run `inv image` again")

    def _fetch(self, advance):
        digest = hashlib.new(self.algo)
        try:
            for chunk in self._open():
                if self.stop.is_set():
                    raise Cancelled()
                digest.update(chunk)
                advance(len(chunk))
                if not self.downstream_gone.is_set():
                    try:
                        _put(self.compressed, chunk, self.downstream_gone_or_stop)
                    except Cancelled:
                        if self.stop.is_set():
                            raise
                        # The upload failed: go on filling the cache only.
            if digest.hexdigest() != self.expected:
                where = self.cache_path if self.from_cache else self.url
                self.cache_path.unlink(missing_ok=True)
                self.part.unlink(missing_ok=True)
                raise DigestMismatch(
                    f"{where}: {self.algo} {digest.hexdigest()[:16]}... does not match the signed DIGESTS "
                    f"({self.expected[:16]}...); deleted the download and uploaded nothing")
            if not self.from_cache:
                os.replace(self.part, self.cache_path)
            self.verified.set()
        except Cancelled:
            if not self.from_cache:
                self.part.unlink(missing_ok=True)
        except BaseException as exc:  # handed to the consumer's thread
            self.errors.append(exc)
        finally:
            try:
                _put(self.compressed, _END, self.downstream_gone_or_stop)
            except Cancelled:
                pass

    @property
    def downstream_gone_or_stop(self):
        return _Either(self.stop, self.downstream_gone)

    # -- stage 2 -----------------------------------------------------------
    def _decompress(self, advance):
        stop = self.downstream_gone_or_stop

        def compressed():
            while (chunk := _get(self.compressed, stop)) is not _END:
                yield chunk
        try:
            for piece in decompress_chunks(compressed(), on_input=advance):
                _put(self.decompressed, piece, stop)
        except Cancelled:
            return
        except (OSError, EOFError) as exc:
            if not self.errors:   # a digest mismatch explains a broken stream better
                self.errors.append(UserError(f"{self.url}: not a valid bzip2 file ({exc})"))
        except BaseException as exc:
            self.errors.append(exc)
        try:
            _put(self.decompressed, _END, stop)
        except Cancelled:
            pass

    # -- stage 3 (the caller's thread) ---------------------------------------
    def chunks(self):
        """The decompressed image, for the upload. The last chunk comes only
        once the download is verified; otherwise this raises."""
        md5, sha512 = hashlib.md5(), hashlib.sha512()
        size = 0
        head = b""
        pending = None
        while (item := _get(self.decompressed, self.stop)) is not _END:
            if len(head) < 32:
                head += item[:32 - len(head)]
            md5.update(item)
            sha512.update(item)
            size += len(item)
            self._advance_upload(len(item))
            if pending is not None:
                yield pending
            pending = item
        for thread in self._threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
        if not self.verified.is_set():
            raise UserError(f"{self.url}: the download was not verified; uploaded nothing")
        from ..model.flatcar import qcow2_virtual_size

        self.result = Streamed(size=size, md5=md5.hexdigest(), sha512=sha512.hexdigest(),
                               compressed_size=self.total or 0, from_cache=self.from_cache,
                               virtual_size=qcow2_virtual_size(head) or 0)
        if pending is not None:
            yield pending

    def _request(self):
        """Start the download here, so its size is known for the bars."""
        try:
            response = self.session.get(self.url, stream=True, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise UserError(f"cannot download {self.url}: {type(exc).__name__}; check FLATCAR_RELEASE_URL "
                            "and your network") from None
        if response.status_code != 200:
            raise UserError(f"cannot download {self.url}: HTTP {response.status_code}; check --version "
                            "and FLATCAR_RELEASE_URL")
        self._response = response
        self.total = int(response.headers.get("Content-Length") or 0) or self.total

    def __enter__(self):
        if not self.from_cache:
            self._request()
        what = f"reading cached {self.cache_path.name}" if self.from_cache else "downloading"
        self._bars = progress.transfers([(what, self.total), ("decompressing", self.total),
                                         ("uploading", None)])
        fetch, decomp, self._advance_upload = self._bars.__enter__()
        self._threads = [threading.Thread(target=self._fetch, args=(fetch,), name="image-fetch", daemon=True),
                         threading.Thread(target=self._decompress, args=(decomp,), name="image-decompress",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None or issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self.stop.set()
        else:
            # The upload failed: let the download finish into the cache, so
            # a retry needs no second download.
            self.downstream_gone.set()
        for thread in self._threads:
            thread.join()
        self._bars.__exit__(kind, exc, tb)
        return False


class _Either:
    """Looks like an Event that is set when either of two is."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def is_set(self):
        return self.a.is_set() or self.b.is_set()
