"""inv image: Flatcar release facts, the signature check (real gpgv, a test
key made here), the streaming pipeline against the test cloud's release
mirror, and the image decisions."""

import bz2
import hashlib
import os

import pytest

from tasks.model import flatcar, openpgp, settings
from tasks.support.errors import UserError
from tasks.model.flatcar import Image
from tasks.services.imagestream import DigestMismatch, Pipeline, decompress_chunks
from tests.testcloud import release_mirror
from tests.harness import run_inv

FLATCAR_FPR = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A"
SOURCE = "ab" * 64


# --- release facts ----------------------------------------------------------------

def test_release_urls_follow_the_release_server_layout():
    base = "https://{channel}.release.flatcar-linux.net"
    assert flatcar.version_url(base, "stable") == \
        "https://stable.release.flatcar-linux.net/amd64-usr/current/version.txt"
    assert flatcar.image_url(base, "beta", "4230.1.0") == \
        "https://beta.release.flatcar-linux.net/amd64-usr/4230.1.0/flatcar_production_openstack_image.img.bz2"
    assert flatcar.digests_url("http://127.0.0.1:1/flatcar/{channel}/", "lts", "4081.3.4") == \
        "http://127.0.0.1:1/flatcar/lts/amd64-usr/4081.3.4/flatcar_production_openstack_image.img.bz2.DIGESTS.asc"


def test_version_txt():
    text = "FLATCAR_BUILD=4230\nFLATCAR_BRANCH=2\nFLATCAR_PATCH=1\nFLATCAR_VERSION=4230.2.1\nFLATCAR_VERSION_ID=4230.2.1\n"
    assert flatcar.parse_version_txt(text, "v.txt") == "4230.2.1"
    with pytest.raises(UserError, match="names no FLATCAR_VERSION.*FLATCAR_RELEASE_URL"):
        flatcar.parse_version_txt("<html>404</html>", "v.txt")
    with pytest.raises(UserError, match="not a Flatcar version"):
        flatcar.parse_version_txt("FLATCAR_VERSION=current\n", "v.txt")


@pytest.mark.parametrize("text,expected", [
    (f"# MD5 HASH\n{'a' * 32}  {flatcar.IMAGE_FILE}\n# SHA1 HASH\n{'b' * 40}  {flatcar.IMAGE_FILE}\n"
     f"# SHA512 HASH\n{'C' * 128}  {flatcar.IMAGE_FILE}\n", {"sha512": "c" * 128}),
    # Other files' lines are ignored; sha256 is enough alone.
    (f"# SHA256 HASH\n{'d' * 64}  other.bin\n{'e' * 64}  {flatcar.IMAGE_FILE}\n", {"sha256": "e" * 64}),
])
def test_digests_parse(text, expected):
    assert flatcar.parse_digests(text, flatcar.IMAGE_FILE, "D") == expected


def test_digests_without_a_strong_hash_are_refused():
    weak = f"# MD5 HASH\n{'a' * 32}  {flatcar.IMAGE_FILE}\n# SHA512 HASH\n{'c' * 127}  {flatcar.IMAGE_FILE}\n"
    with pytest.raises(UserError, match="no SHA512 or SHA256 digest"):
        flatcar.parse_digests(weak, flatcar.IMAGE_FILE, "D")


def test_settings_defaults_pin_flatcars_key():
    s = settings.load(environ={})
    assert s.FLATCAR_KEY_FINGERPRINT == FLATCAR_FPR
    assert s.FLATCAR_CHANNEL == "stable"
    with pytest.raises(UserError, match="FLATCAR_KEY_FINGERPRINT .*40 hex"):
        settings.load(environ={"FLATCAR_KEY_FINGERPRINT": "E25D9AED0593B34A"})
    with pytest.raises(UserError, match="FLATCAR_CHANNEL"):
        settings.load(environ={"FLATCAR_CHANNEL": "edge"})


# --- signatures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    home = str(tmp_path_factory.mktemp("signer") / "gnupg")
    fpr, armored = release_mirror.make_test_key(home)
    key = tmp_path_factory.mktemp("key") / "test.asc"
    key.write_text(armored)
    return home, fpr, key


def test_shipped_key_is_flatcars_and_verifies_nothing_forged(tmp_path, signer):
    from tasks.steps import image
    home, fpr, _ = signer
    signed = tmp_path / "D.asc"
    signed.write_text(release_mirror.clearsign(home, "# SHA512 HASH\n"))
    # Signed by a key not in the shipped file: refused, though the pin is Flatcar's.
    with pytest.raises(openpgp.BadSignature, match="not in the key file"):
        openpgp.verify(signed, image.SHIPPED_KEY, FLATCAR_FPR)
    assert openpgp.dearmor(image.SHIPPED_KEY.read_text(), "k")[:1] == b"\x99"


def test_clearsigned_digests_verify_and_only_the_signed_text_is_returned(tmp_path, signer):
    home, fpr, key = signer
    text = f"# SHA512 HASH\n{'c' * 128}  {flatcar.IMAGE_FILE}\n"
    signed = release_mirror.clearsign(home, text)
    path = tmp_path / "D.asc"
    # Text around the signed block must not be taken for signed text.
    path.write_text(f"{'d' * 128}  {flatcar.IMAGE_FILE}\n" + signed + f"# SHA512 HASH\n{'e' * 128}  x\n")
    assert openpgp.verify(path, key, fpr.lower()) == text


def test_a_changed_digest_fails_the_signature(tmp_path, signer):
    home, fpr, key = signer
    signed = release_mirror.clearsign(home, f"# SHA512 HASH\n{'c' * 128}  {flatcar.IMAGE_FILE}\n")
    path = tmp_path / "D.asc"
    path.write_text(signed.replace("c" * 128, "0" + "c" * 127))
    with pytest.raises(openpgp.BadSignature, match="does not match the signed text"):
        openpgp.verify(path, key, fpr)


def test_a_key_other_than_the_pinned_one_is_refused(tmp_path, signer):
    home, fpr, key = signer
    path = tmp_path / "D.asc"
    path.write_text(release_mirror.clearsign(home, "x\n"))
    with pytest.raises(openpgp.BadSignature, match=f"not the pinned FLATCAR_KEY_FINGERPRINT {FLATCAR_FPR}"):
        openpgp.verify(path, key, FLATCAR_FPR)


def test_detached_signature(tmp_path, signer):
    import subprocess
    home, fpr, key = signer
    data = tmp_path / "D"
    data.write_text("payload\n")
    subprocess.run(["gpg", "--batch", "--quiet", "--armor", "--detach-sign", "-o", str(tmp_path / "D.sig"),
                    str(data)], env=dict(os.environ, GNUPGHOME=home), check=True)
    assert openpgp.verify(tmp_path / "D.sig", key, fpr, data_path=data) == "payload\n"
    data.write_text("payload!\n")
    with pytest.raises(openpgp.BadSignature):
        openpgp.verify(tmp_path / "D.sig", key, fpr, data_path=data)


def test_damaged_key_file_is_named(signer):
    _, _, key = signer
    lines = key.read_text().splitlines()
    body = next(i for i, line in enumerate(lines) if line and not line.startswith("-") and ":" not in line)
    lines[body] = lines[body][:-4] + ("AAAA" if not lines[body].endswith("AAAA") else "BBBB")
    with pytest.raises(UserError, match="checksum does not match"):
        openpgp.dearmor("\n".join(lines), "k.asc")
    with pytest.raises(UserError, match="not an armored OpenPGP public key.*FLATCAR_KEY_FILE"):
        openpgp.dearmor("hello", "k.asc")


# --- the pipeline ---------------------------------------------------------------

def test_decompress_handles_several_streams_and_small_pieces():
    data = os.urandom(3000) + bytes(5 << 20)
    packed = bz2.compress(data[:2000]) + bz2.compress(data[2000:])
    pieces = [packed[i:i + 777] for i in range(0, len(packed), 777)]
    out = list(decompress_chunks(pieces))
    assert b"".join(out) == data
    assert max(len(p) for p in out) <= 1 << 20
    with pytest.raises(OSError):
        list(decompress_chunks([packed[:-10]]))


@pytest.fixture
def mirror(tmp_path):
    m = release_mirror.ReleaseMirror(str(tmp_path / "mirror"), "v1.31.4")
    # Random data over several bzip2 blocks (900 kB each), zeros in between.
    payload = os.urandom(3 << 20) + bytes(2 << 20) + os.urandom(100_000)
    image = str(tmp_path / "image.qcow2")
    release_mirror.make_qcow2(image, payload=payload)
    m.gnupghome = str(tmp_path / "gnupg")
    m.fpr, _ = release_mirror.make_test_key(m.gnupghome)
    m.sha512 = release_mirror.publish_flatcar(m.root, "stable", "4230.2.1", image, m.gnupghome)
    m.image_bytes = open(image, "rb").read()
    m.image_path = image
    m.url = flatcar.image_url(m.base_url + "/flatcar/{channel}", "stable", "4230.2.1")
    yield m
    m.stop()


def consume(chunks):
    return b"".join(chunks)


def qemu_virtual_size(path):
    """The virtual size as qemu-img itself reads it."""
    import json
    import subprocess

    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["virtual-size"]


@pytest.mark.parametrize("size", ["64M", "1G", "13212057600"])
def test_qcow2_virtual_size_is_what_qemu_img_reads(tmp_path, size):
    """13212057600 bytes: Flatcar stable's OpenStack image (25804800 blocks
    of 512, flatcar/scripts disk_util with layout "vm"): min_disk 13 GB."""
    path = tmp_path / "disk.qcow2"
    release_mirror.make_qcow2(str(path), size=size)
    head = path.read_bytes()[:32]
    assert flatcar.qcow2_virtual_size(head) == qemu_virtual_size(path)
    assert flatcar.min_disk_gb(flatcar.qcow2_virtual_size(head)) == {"64M": 1, "1G": 1, "13212057600": 13}[size]


def test_a_header_that_is_not_qcow2_has_no_virtual_size():
    assert flatcar.qcow2_virtual_size(b"\x00" * 64) is None
    assert flatcar.qcow2_virtual_size(b"QFI\xfb") is None
    assert flatcar.min_disk_gb(0) == 0


def test_pipeline_streams_the_verified_image_and_keeps_the_download(tmp_path, mirror):
    import requests
    cache = tmp_path / "cache" / flatcar.IMAGE_FILE
    with Pipeline(mirror.url, cache, "sha512", mirror.sha512, requests.Session()) as pipe:
        got = consume(pipe.chunks())
    assert got == mirror.image_bytes
    assert got[:4] == b"QFI\xfb"      # qcow2 magic
    assert pipe.result.virtual_size == qemu_virtual_size(mirror.image_path)
    assert pipe.result.sha512 == hashlib.sha512(got).hexdigest()
    assert pipe.result.md5 == hashlib.md5(got).hexdigest()
    assert cache.is_file() and not cache.with_name(cache.name + ".part").exists()
    # Another region: from the cache, with the mirror gone.
    mirror.stop()
    with Pipeline(mirror.url, cache, "sha512", mirror.sha512, None) as pipe:
        assert consume(pipe.chunks()) == mirror.image_bytes
    assert pipe.result.from_cache


def test_a_bad_digest_withholds_the_last_chunk_and_deletes_the_download(tmp_path, mirror):
    import requests
    cache = tmp_path / "cache" / flatcar.IMAGE_FILE
    received = []
    with pytest.raises(DigestMismatch, match="does not match the signed DIGESTS.*deleted the download"):
        with Pipeline(mirror.url, cache, "sha512", "0" * 128, requests.Session()) as pipe:
            for chunk in pipe.chunks():
                received.append(chunk)
    assert len(b"".join(received)) < len(mirror.image_bytes)
    assert not cache.exists() and not cache.with_name(cache.name + ".part").exists()


def test_a_changed_cached_file_is_caught_too(tmp_path, mirror):
    import requests
    cache = tmp_path / "cache" / flatcar.IMAGE_FILE
    with Pipeline(mirror.url, cache, "sha512", mirror.sha512, requests.Session()) as pipe:
        consume(pipe.chunks())
    data = bytearray(cache.read_bytes())
    data[-20] ^= 1
    cache.write_bytes(bytes(data))
    with pytest.raises(UserError):
        with Pipeline(mirror.url, cache, "sha512", mirror.sha512, None) as pipe:
            consume(pipe.chunks())
    assert not cache.exists()


def test_a_failed_upload_still_completes_the_download(tmp_path, mirror, monkeypatch):
    import requests
    from tasks.services import imagestream
    # Small chunks and queues, so the download is still running when the upload fails.
    monkeypatch.setattr(imagestream, "CHUNK", 16 << 10)
    monkeypatch.setattr(imagestream, "DEPTH", 1)
    cache = tmp_path / "cache" / flatcar.IMAGE_FILE

    class UploadBroke(Exception):
        pass
    with pytest.raises(UploadBroke):
        with Pipeline(mirror.url, cache, "sha512", mirror.sha512, requests.Session()) as pipe:
            next(pipe.chunks())
            raise UploadBroke()
    assert cache.is_file()
    assert hashlib.sha512(cache.read_bytes()).hexdigest() == mirror.sha512


# --- image decisions ------------------------------------------------------------

def img(id_, status="active", tags=(flatcar.TAG,), source=SOURCE, name="Flatcar Container Linux stable 4230.2.1",
        owner="mine", **kw):
    return Image(id=id_, name=name, status=status, tags=tags, source=source, owner=owner, **kw)


@pytest.mark.parametrize("images,known,action,target,delete", [
    ([], None, "upload", None, []),
    ([img("a")], None, "skip", "a", []),
    # The checksum Glance computed must agree with what this machine sent.
    ([img("a", hash_algo="sha512", hash_value="f" * 128)], {"sha512": "f" * 128}, "skip", "a", []),
    ([img("a", hash_algo="sha512", hash_value="f" * 128)], {"sha512": "e" * 128}, "upload", None, ["a"]),
    # A cut-off upload leaves the image queued: the re-run fills it.
    ([img("q", status="queued")], None, "upload", "q", []),
    ([img("k", status="killed"), img("s", status="saving")], None, "upload", None, ["k", "s"]),
    # Another release's bytes under this name: replaced.
    ([img("o", source="cd" * 64)], None, "upload", None, ["o"]),
    # Not ours: never deleted, never reused; nor is another project's image with our tag.
    ([img("x", tags=())], None, "upload", None, []),
    ([img("p", owner="other-project"), img("pq", status="queued", owner="other-project")], None, "upload", None, []),
])
def test_plan_upload(images, known, action, target, delete):
    plan = flatcar.plan_upload(images, "Flatcar Container Linux stable 4230.2.1", SOURCE, known, project="mine")
    assert plan.action == action
    assert (plan.target.id if plan.target else None) == target
    assert [i.id for i in plan.delete] == delete
    assert [i.id for i in plan.conflicts] == [i.id for i in images if not i.mine("mine")]


def test_properties_and_name():
    assert flatcar.image_name("stable", "4230.2.1") == "Flatcar Container Linux stable 4230.2.1"
    props = flatcar.properties("stable", "4230.2.1", SOURCE)
    assert props["os_distro"] == "flatcar" and props["os_version"] == "4230.2.1"
    assert props["hw_qemu_guest_agent"] == "yes" and props["img_config_drive"] == "optional"


def test_default_image_is_the_newest_of_ours_in_the_channel():
    def nova(id_, name, status="ACTIVE", ours=True):
        meta = {"os_distro": "flatcar", flatcar.PROPERTY_SOURCE: SOURCE} if ours else {"os_distro": "flatcar"}
        return {"id": id_, "name": name, "status": status, "metadata": meta}
    images = [nova("old", "Flatcar Container Linux stable 4081.2.0"),
              nova("new", "Flatcar Container Linux stable 4230.2.1"),
              nova("later-but-saving", "Flatcar Container Linux stable 4230.2.9", status="SAVING"),
              nova("beta", "Flatcar Container Linux beta 4300.1.0"),
              nova("theirs", "Flatcar Container Linux stable 9999.2.0", ours=False),
              nova("nine", "Flatcar Container Linux stable 9.2.0")]   # newer as a string only
    assert flatcar.default_image(images) == "new"
    assert flatcar.default_image(images, "beta") == "beta"
    assert flatcar.default_image([nova("x", "Flatcar Container Linux (Stable)")]) is None


# --- the command line -----------------------------------------------------------

def test_legacy_rackspace_is_told_in_one_line(cloud_env):
    proc = run_inv(["image"], cloud_env, check=False)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "Identity v2.0" in lines[0] and "VHD" in lines[0] and "README" in lines[0]
    assert "Traceback" not in proc.stdout


def test_up_without_a_flatcar_image_stops_before_creating_anything(test_cloud, cloud_env, tmp_path):
    # KUBE_IMAGE left at its default: neither in the environment nor the env file.
    env = {k: v for k, v in cloud_env.items() if k != "KUBE_IMAGE"}
    env_file = tmp_path / "cloud.env"
    env_file.write_text("".join(line + "\n" for line in open(cloud_env["KUBE_ENV_FILE"]).read().splitlines()
                                if not line.startswith("KUBE_IMAGE=")))
    env["KUBE_ENV_FILE"] = str(env_file)
    run_inv(["build", "--release"], env)
    before = test_cloud.request_counts()
    proc = run_inv(["up"], env, check=False)
    assert proc.returncode == 1, proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert "no Flatcar image" in last and "KUBE_IMAGE" in last and "Traceback" not in proc.stdout
    # The test cloud is legacy Rackspace: `inv image` cannot help there (kind_legacy.NO_IMAGE_TODO).
    assert "Flatcar on legacy Rackspace" in last and "run `inv image`" not in last
    prefix = env["INSTANCE_PREFIX"]
    assert not [k for k in test_cloud.keypairs() if prefix in str(k)]
    assert not [s for s in test_cloud.servers() if prefix in str(s)]
    after = test_cloud.request_counts()
    assert after.get("network") == before.get("network")   # no network made (nor looked up)
