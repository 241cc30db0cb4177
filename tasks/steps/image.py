"""Bring a verified Flatcar OpenStack image into the image service (`inv image`).

    inv image                      # FLATCAR_CHANNEL's current version
    inv image --channel beta       # or --version 4230.2.1
    inv image --list               # ours, and which one `inv up` uses
    inv image --remove 4230.2.1    # delete one of ours
    inv image --via-url            # the cloud fetches it (web-download)

Order: the channel's version, the signed DIGESTS (gpgv against the pinned
key), then the image service; the image data is streamed (imagestream.py)
and its stored checksum compared with what was sent. `inv down` never
removes images: clusters share them.
"""

import json
import time
from pathlib import Path

from ..model import flatcar, openpgp, release
from ..support import lazy, progress
from ..support.errors import CloudError, UserError

requests = lazy.module("requests")

REPO = Path(__file__).resolve().parent.parent.parent
SHIPPED_KEY = REPO / "keys" / "flatcar-image-signing-key.asc"
ATTEMPTS = 3            # upload tries; the 2nd and 3rd read the verified download from the cache
RETRY_DELAY = 3.0
SMALL_TIMEOUT = (15, 60)


# --- release facts ------------------------------------------------------------

def _get_text(session, url, what):
    last = None
    for attempt in range(ATTEMPTS):
        try:
            response = session.get(url, timeout=SMALL_TIMEOUT)
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}"
        else:
            if response.status_code == 200:
                return response.text
            if response.status_code == 404:
                raise UserError(f"{what} not found at {url} (HTTP 404); check --version / --channel and "
                                "FLATCAR_RELEASE_URL")
            last = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in (408, 429):
                break
        time.sleep(RETRY_DELAY * (attempt + 1))
    raise UserError(f"cannot download {what} from {url} ({last}); check FLATCAR_RELEASE_URL and your network")


def key_file(s):
    return s.FLATCAR_KEY_FILE or SHIPPED_KEY


def signed_digests(s, session, channel, version, workdir):
    """The verified digests of the release's .img.bz2 ({'sha512': ...})."""
    url = flatcar.digests_url(s.FLATCAR_RELEASE_URL, channel, version)
    text = _get_text(session, url, f"the signed DIGESTS of Flatcar {channel} {version}")
    path = Path(workdir) / (flatcar.IMAGE_FILE + flatcar.DIGESTS_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    signed = openpgp.verify(path, key_file(s), s.FLATCAR_KEY_FINGERPRINT, what=url)
    return flatcar.parse_digests(signed, flatcar.IMAGE_FILE, url)


def resolve_version(s, session, channel, version):
    if version:
        return flatcar.check_version(version)
    url = flatcar.version_url(s.FLATCAR_RELEASE_URL, channel)
    found = flatcar.parse_version_txt(_get_text(session, url, f"the current {channel} version"), url)
    progress.info(f"Flatcar {channel} is at {found}")
    return found


def cache_dir(s, channel, version):
    return Path(s.KUBE_DOWNLOAD_DIR) / "flatcar" / channel / version


def record_path(s, channel, version):
    return cache_dir(s, channel, version) / "image.json"


def load_record(s, channel, version, source):
    """Digests of the decompressed image as sent before, for this source."""
    try:
        data = json.loads(record_path(s, channel, version).read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("source_sha512") == source else None


def save_record(s, channel, version, source, digests):
    release.write_atomic(record_path(s, channel, version),
                         json.dumps(dict(digests, source_sha512=source), indent=1) + "\n")


# --- import -------------------------------------------------------------------

def ensure(s, glance, version=None, via_url=False, session=None):
    """The active image of the release, uploaded unless it is there."""
    session = session or requests.Session()
    channel = s.FLATCAR_CHANNEL
    version = resolve_version(s, session, channel, version)
    directory = cache_dir(s, channel, version)
    digests = signed_digests(s, session, channel, version, directory)
    algo, expected = flatcar.strongest(digests)
    # The images carry the sha512 of the .bz2 they came from; sha256-only
    # releases carry that instead, prefixed.
    source = expected if algo == "sha512" else f"{algo}:{expected}"
    name = flatcar.image_name(channel, version)
    known = load_record(s, channel, version, source)

    plan = flatcar.plan_upload(glance.images_named(name), name, source, known, project=glance.project)
    if plan.action == "skip":
        progress.info(f"{name} is already there ({plan.target.id}); uploaded nothing")
        return with_minimums(glance, plan.target, (known or {}).get("virtual_size"))
    for img in plan.conflicts:
        progress.info(f"leaving image {img.id} named {name!r} alone: this tool did not upload it")
    for img in plan.delete:
        progress.info(f"deleting image {img.id} ({img.status}): an unfinished or different upload of {name}")
        glance.delete(img.id)
    props = flatcar.properties(channel, version, source)
    target = plan.target or glance.create(name, [flatcar.TAG], props)
    if plan.target:
        progress.info(f"completing the upload of {name} into {target.id}")
    url = flatcar.image_url(s.FLATCAR_RELEASE_URL, channel, version)
    cache_path = directory / flatcar.IMAGE_FILE
    if via_url:
        return _via_url(s, glance, target, url, cache_path, algo, expected, known, session, channel, version, source)
    sent = _stream(glance, target, url, cache_path, algo, expected, known, session)
    save_record(s, channel, version, source, sent)
    return with_minimums(glance, _check_stored(glance, target.id, sent, name), sent.get("virtual_size"))


def with_minimums(glance, img, virtual_size=None):
    """The active image with min_disk and min_ram set, so Nova itself refuses
    a flavor that cannot hold it: min_disk from the image's virtual size
    (the qcow2 header's, else Glance's own figure), min_ram the least any
    server of this tool boots with (a node's, servers.FLAVOR_MINIMUMS)."""
    from ..model.servers import FLAVOR_MINIMUMS

    size = virtual_size or img.virtual_size
    min_disk = flatcar.min_disk_gb(size) if size else img.min_disk
    min_ram = min(ram for _, ram, _ in FLAVOR_MINIMUMS.values())
    if (img.min_disk, img.min_ram) == (min_disk, min_ram):
        return img
    if not size:
        progress.info(f"{img.name}: its virtual size is unknown here, so min_disk stays {img.min_disk}")
    updated = glance.set_minimums(img.id, min_disk, min_ram)
    progress.info(f"{img.name}: min_disk {min_disk} GB, min_ram {min_ram} MiB")
    return updated


def _stream(glance, target, url, cache_path, algo, expected, known, session):
    from ..services.imagestream import DigestMismatch, Pipeline

    for attempt in range(1, ATTEMPTS + 1):
        current = _settled(glance, target.id)
        if current is None or current.status != "queued":
            raise CloudError(f"image {target.id} is {current.status if current else 'gone'}, not queued; "
                             "re-run `inv image`")
        try:
            with Pipeline(url, cache_path, algo, expected, session) as pipe:
                glance.upload(target.id, pipe.chunks())
            return pipe.result.digests()
        except DigestMismatch:
            glance.delete(target.id)
            raise
        except CloudError as exc:
            if attempt == ATTEMPTS or not cache_path.is_file():
                raise
            progress.info(f"upload failed ({exc.reason}); retrying from {cache_path} "
                          f"(attempt {attempt + 1} of {ATTEMPTS})")
            time.sleep(RETRY_DELAY)
    raise AssertionError("unreachable")


def _settled(glance, image_id, timeout=30.0):
    """The image, once Glance has finished with a cut-off upload (it keeps
    `saving` until it notices, then discards the data: `queued`)."""
    deadline = time.monotonic() + timeout
    while True:
        img = glance.get(image_id)
        if img is None or img.status != "saving" or time.monotonic() > deadline:
            return img
        time.sleep(1.0)


def _check_stored(glance, image_id, sent, name):
    """The image is active and holds exactly the bytes sent."""
    img = glance.get(image_id)
    if img is None or img.status != "active":
        raise CloudError(f"image {image_id} ({name}) is {img.status if img else 'gone'} after the upload; "
                         "re-run `inv image`")
    stored = {"sha512": img.hash_value} if img.hash_algo == "sha512" else {"md5": img.checksum}
    for algo, value in stored.items():
        if value and value != sent[algo]:
            glance.delete(image_id)
            raise CloudError(f"image {image_id} ({name}) stored {algo} {value[:16]}..., not the "
                             f"{sent[algo][:16]}... that was sent; deleted it, re-run `inv image`")
    progress.info(f"uploaded {name} as {image_id}: {sent['size'] / 2**20:.0f} MiB, sha512 {sent['sha512'][:16]}...")
    return img


def _via_url(s, glance, target, url, cache_path, algo, expected, known, session, channel, version, source):
    """web-download of the uncompressed image; the digest to compare the
    stored image with comes from an earlier upload's record, or from
    decompressing the verified download here (no upload)."""
    from ..services.imagestream import Pipeline

    from ..services.images import web_download_offered

    if not web_download_offered(glance.import_info()):
        glance.delete(target.id)
        raise UserError("the image service here does not offer the web-download import method "
                        "(GET /v2/info/import); run `inv image` without --via-url")
    if known is None:
        progress.info("learning the digest of the decompressed image from the verified download (not uploading it)")
        with Pipeline(url, cache_path, algo, expected, session) as pipe:
            for _ in pipe.chunks():
                pass
        known = pipe.result.digests()
        save_record(s, channel, version, source, known)
    uncompressed = url[:-len(".bz2")]
    glance.web_download(target.id, uncompressed)
    with progress.waiting(f"the image service to fetch {uncompressed}", s.IMAGE_IMPORT_TIMEOUT) as wait:
        glance.wait_import(target.id, wait)
    return with_minimums(glance, _check_stored(glance, target.id, known, flatcar.image_name(channel, version)),
                         known.get("virtual_size"))


# --- list and remove ----------------------------------------------------------------

def listing(s, cloud, glance):
    ours = flatcar.uploaded(glance.tagged(flatcar.TAG), project=glance.project)

    used = None
    try:
        used = cloud.compute.image_id(s.KUBE_IMAGE)
    except UserError:
        pass
    lines = []
    for img, channel, version in ours:
        mark = "   <- inv up uses this" if img.id == used else ""
        lines.append(f"{img.name}\t{img.id}\t{img.status}{mark}")
    if not ours:
        lines.append("no Flatcar images uploaded by this tool here; run `inv image`")
    if used is None:
        lines.append(f"inv up: KUBE_IMAGE={s.KUBE_IMAGE!r} finds no image here")
    elif all(img.id != used for img, _, _ in ours):
        lines.append(f"inv up uses KUBE_IMAGE={s.KUBE_IMAGE!r} ({used}), not one of these")
    return lines


def remove_version(glance, version):
    tagged = [img for img in glance.tagged(flatcar.TAG) if img.mine(glance.project)]
    found = [img for img in tagged if img.release and img.release[1] == version]
    if not found:
        raise UserError(f"--remove {version}: no Flatcar image of that version uploaded by this tool; "
                        "see `inv image --list`")
    for img in found:
        glance.delete(img.id)
    return [f"{img.name} ({img.id})" for img in found]
