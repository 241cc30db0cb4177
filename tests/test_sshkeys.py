"""The local key pair and Nova's fingerprint (pure parts and files in a tmp
HOME; ssh-keygen, the real tool, is the reference)."""

import stat
import subprocess

import pytest

from tasks.model import names, settings, sshkeys
from tasks.support.errors import UserError


def load(**flags):
    return settings.load(environ={}, flags={k: str(v) for k, v in flags.items()})


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def ssh_keygen_md5(path):
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1].removeprefix("MD5:")


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_fingerprint_is_what_ssh_keygen_reports_as_md5(tmp_path, key_type):
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(tmp_path / "k")], check=True)
    public = (tmp_path / "k.pub").read_text()
    assert sshkeys.fingerprint(public) == ssh_keygen_md5(tmp_path / "k.pub")


@pytest.mark.parametrize("line", ["", "ssh-rsa", "not-a-key AAAA", "ssh-rsa !!!notbase64"])
def test_fingerprint_rejects_what_is_no_public_key(line):
    with pytest.raises(ValueError):
        sshkeys.fingerprint(line)


def test_generates_rsa_4096_by_default_as_ssh_keygen_lays_it_out(home):
    s = load()
    key = sshkeys.ensure_local(s)
    private, public = home / ".ssh" / "id_kubernetes", home / ".ssh" / "id_kubernetes.pub"
    assert key.created and key.private_path == private and key.public_path == public
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / ".ssh").stat().st_mode) == 0o700
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(private)], check=True, capture_output=True,
                         text=True).stdout
    assert out.startswith("4096 ") and out.rstrip().endswith("(RSA)")
    # ssh-keygen derives the same public half from the private key we wrote
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], check=True, capture_output=True,
                             text=True).stdout.split()[:2]
    assert public.read_text().split()[:2] == derived
    assert key.fingerprint == ssh_keygen_md5(public)


def test_ed25519_when_asked_and_reused_on_the_next_run(home):
    s = load(SSH_KEY_TYPE="ed25519", SSH_KEY_NAME="k2")
    first = sshkeys.ensure_local(s)
    assert first.public_key.startswith("ssh-ed25519 ")
    again = sshkeys.ensure_local(s)
    assert not again.created and again.fingerprint == first.fingerprint
    assert names.private_key_path(s).read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")


def test_a_key_made_by_ssh_keygen_is_used_as_it_is(home):
    (home / ".ssh").mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / ".ssh" / "id_kubernetes")],
                   check=True)
    key = sshkeys.ensure_local(load())
    assert not key.created and key.fingerprint == ssh_keygen_md5(home / ".ssh" / "id_kubernetes.pub")


def test_missing_public_half_is_derived_from_the_private_key(home):
    s = load()
    made = sshkeys.ensure_local(s)
    names.public_key_path(s).unlink()
    again = sshkeys.ensure_local(s)
    assert again.fingerprint == made.fingerprint and names.public_key_path(s).exists()


def test_public_key_without_its_private_key_stops(home):
    s = load()
    sshkeys.ensure_local(s)
    names.private_key_path(s).unlink()
    with pytest.raises(UserError, match="id_kubernetes.pub exists but its private key"):
        sshkeys.ensure_local(s)


def test_halves_of_different_pairs_stop(home):
    s = load(SSH_KEY_TYPE="ed25519")
    sshkeys.ensure_local(s)
    _, other = sshkeys.generate("ed25519")
    names.public_key_path(s).write_text(other + "\n")
    with pytest.raises(UserError, match="is not the public half"):
        sshkeys.ensure_local(s)


def test_private_key_readable_by_others_stops(home):
    s = load(SSH_KEY_TYPE="ed25519")
    sshkeys.ensure_local(s)
    names.private_key_path(s).chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        sshkeys.ensure_local(s)


def test_passphrase_key_without_public_half_says_how_to_make_it(home):
    (home / ".ssh").mkdir(mode=0o700)
    private = home / ".ssh" / "id_kubernetes"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-pass", "-f", str(private)], check=True)
    (home / ".ssh" / "id_kubernetes.pub").unlink()
    with pytest.raises(UserError, match="ssh-keygen -y"):
        sshkeys.ensure_local(load())


def test_a_key_another_run_made_meanwhile_wins_whole(tmp_path):
    # Two `inv up` of two clusters generate ~/.ssh/id_kubernetes at once: the
    # first key to appear is kept, and never seen half-written.
    path = tmp_path / "ssh" / "id_kubernetes"
    assert sshkeys._publish_new(path, b"first", 0o600)
    assert not sshkeys._publish_new(path, b"second", 0o600)
    assert path.read_bytes() == b"first" and (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["id_kubernetes"]
