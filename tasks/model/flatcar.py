"""Flatcar release facts and image decisions. Pure: no network, no cloud.

Flatcar's release server keeps, per channel, one folder per version:

  <FLATCAR_RELEASE_URL with {channel}>/amd64-usr/current/version.txt
  <...>/amd64-usr/<version>/flatcar_production_openstack_image.img.bz2
  <...>/amd64-usr/<version>/flatcar_production_openstack_image.img.bz2.DIGESTS.asc

The .DIGESTS.asc is the DIGESTS file clear-signed by the Flatcar image
signing key (openpgp.py checks it); only the signed text is parsed here.
"""

import re
import struct
from dataclasses import dataclass

from ..support.errors import UserError

CHANNELS = ("stable", "beta", "alpha", "lts")
BOARD = "amd64-usr"
IMAGE_FILE = "flatcar_production_openstack_image.img.bz2"
DIGESTS_SUFFIX = ".DIGESTS.asc"
NAME_PREFIX = "Flatcar Container Linux"
# Marks images this tool uploaded: a Glance tag, and a property (Nova's
# image listing, which `inv up` reads, shows properties but not tags).
TAG = "kube-rackspace"
PROPERTY_SOURCE = "kube_rackspace_source_sha512"
# Digests we accept from a DIGESTS file, strongest first (MD5 and SHA1 are
# published too, and not enough on their own).
STRONG = ("sha512", "sha256")

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_NAME = re.compile(rf"^{NAME_PREFIX} (?P<channel>[a-z]+) (?P<version>\d+\.\d+\.\d+)$")


def channel_url(template, channel):
    """The channel's folder of boards: FLATCAR_RELEASE_URL with {channel}."""
    return template.replace("{channel}", channel).rstrip("/") + "/" + BOARD


def version_url(template, channel):
    return f"{channel_url(template, channel)}/current/version.txt"


def image_url(template, channel, version):
    return f"{channel_url(template, channel)}/{version}/{IMAGE_FILE}"


def digests_url(template, channel, version):
    return image_url(template, channel, version) + DIGESTS_SUFFIX


def check_version(version, origin="--version"):
    if not _VERSION.match(version or ""):
        raise UserError(f"{origin}: {version!r} is not a Flatcar version like 4230.2.1")
    return version


def parse_version_txt(text, origin):
    """FLATCAR_VERSION from a channel's version.txt (shell KEY=value lines)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "FLATCAR_VERSION":
            return check_version(value.strip().strip('"'), origin)
    raise UserError(f"{origin} names no FLATCAR_VERSION; check FLATCAR_RELEASE_URL")


def parse_digests(text, filename, origin):
    """{'sha512': hex, ...} for `filename` from a (signed) DIGESTS text:
    sections `# SHA512 HASH` followed by `<hex>  <file>` lines. At least one
    of STRONG must be there."""
    found = {}
    algo = None
    for line in text.splitlines():
        line = line.strip()
        header = re.fullmatch(r"#\s*([A-Za-z0-9]+)\s+HASH", line)
        if header:
            algo = header.group(1).lower()
            continue
        words = line.split()
        if algo and len(words) == 2 and words[1].lstrip("*") == filename and re.fullmatch(r"[0-9a-fA-F]+", words[0]):
            found[algo] = words[0].lower()
    lengths = {"sha512": 128, "sha256": 64}
    strong = {a: v for a, v in found.items() if a in STRONG and len(v) == lengths[a]}
    if not strong:
        raise UserError(f"{origin} holds no SHA512 or SHA256 digest of {filename}; check FLATCAR_RELEASE_URL")
    return strong


def strongest(digests):
    """(algorithm, hex) of the best digest we have for a file."""
    for algo in STRONG:
        if algo in digests:
            return algo, digests[algo]
    raise ValueError("no strong digest")


# --- images in the cloud -----------------------------------------------------

def image_name(channel, version):
    return f"{NAME_PREFIX} {channel} {version}"


def properties(channel, version, source_sha512):
    """What goes on the image besides name and formats: the properties
    OpenStack clouds (and Rackspace's own images) use, and our marks."""
    return {
        "os_distro": "flatcar",
        "os_version": version,
        "hw_qemu_guest_agent": "yes",
        "img_config_drive": "optional",
        "os_type": "linux",
        "flatcar_channel": channel,
        PROPERTY_SOURCE: source_sha512,
    }


# qcow2's header: magic, then the guest disk's size in bytes at offset 24
# (big-endian u64; QEMU docs/interop/qcow2.txt).
QCOW2_MAGIC = b"QFI\xfb"
GiB = 1 << 30


def qcow2_virtual_size(head):
    """The virtual disk size from the first bytes of a qcow2 image, or None
    when `head` is not a qcow2 header."""
    if len(head) < 32 or not head.startswith(QCOW2_MAGIC):
        return None
    return struct.unpack(">Q", head[24:32])[0]


def min_disk_gb(virtual_size):
    """Glance's min_disk (GB, which Nova compares as GiB) for an image of
    `virtual_size` bytes: a root disk smaller than the image cannot hold
    it (Flatcar grows its ROOT partition into the rest at first boot).
    Nova's API checks a flavor against the image's file size and min_disk
    only, not its virtual size (nova/compute/api.py
    _validate_flavor_image_nostatus); the compute host finds out later."""
    return -(-int(virtual_size) // GiB) if virtual_size else 0


def version_key(version):
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class Image:
    """What we need of a Glance image (GET /v2/images)."""
    id: str
    name: str
    status: str
    tags: tuple = ()
    checksum: str = ""          # md5 of the stored bytes
    hash_algo: str = ""         # os_hash_algo (sha512 by default)
    hash_value: str = ""        # os_hash_value
    source: str = ""            # PROPERTY_SOURCE
    created: str = ""
    owner: str = ""             # project id
    min_disk: int = 0           # GB
    min_ram: int = 0            # MiB
    virtual_size: int = 0       # bytes, when Glance has worked it out

    @classmethod
    def from_api(cls, d):
        return cls(id=d["id"], name=d.get("name") or "", status=(d.get("status") or "").lower(),
                   tags=tuple(d.get("tags") or ()), checksum=d.get("checksum") or "",
                   hash_algo=d.get("os_hash_algo") or "", hash_value=d.get("os_hash_value") or "",
                   source=d.get(PROPERTY_SOURCE) or "", created=d.get("created_at") or "",
                   owner=d.get("owner") or "", min_disk=int(d.get("min_disk") or 0),
                   min_ram=int(d.get("min_ram") or 0), virtual_size=int(d.get("virtual_size") or 0))

    @property
    def ours(self):
        return TAG in self.tags

    def mine(self, project):
        """Ours and this project's: another project's public image with
        our tag is never reused nor deleted."""
        return self.ours and (not project or self.owner == project)

    @property
    def release(self):
        """(channel, version) from the name, or None."""
        match = _NAME.match(self.name)
        return (match.group("channel"), match.group("version")) if match else None


def stored_matches(image, source_sha512, known=None):
    """Does an active image hold the verified release? `known` holds the
    digests of the decompressed image when this machine has seen them
    ({'md5', 'sha512', ...}); then the image's own checksum must agree too."""
    if image.status != "active" or image.source != source_sha512:
        return False
    if known:
        if image.hash_algo and image.hash_algo in known:
            return image.hash_value == known[image.hash_algo]
        if image.checksum and "md5" in known:
            return image.checksum == known["md5"]
    return True


@dataclass
class UploadPlan:
    action: str                 # "skip", "upload" (into `target`, or a new image)
    target: Image | None = None
    delete: list = None         # [Image]: ours, same name, not usable (killed, stuck, other bytes)
    conflicts: list = None      # [Image]: same name, not ours


def plan_upload(images, name, source_sha512, known=None, project=None):
    """What `inv image` does about `name`, given the images of that name.

    - ours and active with the verified release: skip;
    - ours and `queued` (created, no data: an upload that was cut off): upload
      into it, so a re-run completes the import without a second image;
    - ours in any other state, or active with other bytes: deleted first;
    - not ours: left alone, and a new image is made beside it (Glance names
      are not unique) only when none of ours is usable."""
    same = [img for img in images if img.name == name and img.status not in ("deleted", "pending_delete")]
    ours = sorted((img for img in same if img.mine(project)), key=lambda img: (img.created, img.id))
    conflicts = [img for img in same if not img.mine(project)]
    for img in ours:
        if stored_matches(img, source_sha512, known):
            return UploadPlan("skip", img, delete=[], conflicts=conflicts)
    queued = [img for img in ours if img.status == "queued"]
    target = queued[0] if queued else None
    delete = [img for img in ours if img is not target]
    return UploadPlan("upload", target, delete=delete, conflicts=conflicts)


def uploaded(images, channel=None, project=None):
    """Our active images, newest version first: [(Image, channel, version)]."""
    found = []
    for img in images:
        rel = img.release
        if img.mine(project) and img.status == "active" and rel and (channel is None or rel[0] == channel):
            found.append((img, rel[0], rel[1]))
    return sorted(found, key=lambda t: (version_key(t[2]), t[0].created), reverse=True)


def default_image(nova_images, channel="stable"):
    """The image KUBE_IMAGE's default resolves to, from Nova's image list
    (dicts with id, name, status, metadata): the newest active image this
    tool uploaded for `channel`, or None (then the cloud's own image by the
    default name is used)."""
    best = None
    for d in nova_images:
        meta = d.get("metadata") or {}
        match = _NAME.match(d.get("name") or "")
        if not match or match.group("channel") != channel or (d.get("status") or "").upper() != "ACTIVE":
            continue
        if meta.get("os_distro") != "flatcar" or not meta.get(PROPERTY_SOURCE):
            continue
        key = version_key(match.group("version"))
        if best is None or key > best[0]:
            best = (key, d["id"])
    return best[1] if best else None
