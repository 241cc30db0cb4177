"""The local SSH key pair: ~/.ssh/SSH_KEY_NAME and its .pub, as ssh-keygen
lays them out, and the fingerprint Nova reports for a public key.

`fingerprint` and `generate` are pure; `ensure_local` reads or writes the
two files.
"""

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from . import names
from ..support.errors import UserError

RSA_BITS = 4096
COMMENT = "kube-rackspace"


def fingerprint(public_key):
    """Nova's keypair fingerprint: colon hex of the MD5 of the base64-decoded
    key blob (the second field of an OpenSSH public key line)."""
    fields = public_key.strip().split()
    if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-")):
        raise ValueError("not an OpenSSH public key line")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except binascii.Error:
        raise ValueError("the key data is not valid base64") from None
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate(key_type):
    """A new key pair: (OpenSSH private key bytes, public key line)."""
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    return private, _public_line(key)


def _public_line(private_key):
    public = private_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                   serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} {COMMENT}"


@dataclass(frozen=True)
class LocalKey:
    private_path: object
    public_path: object
    public_key: str          # the .pub line
    fingerprint: str
    created: bool


def ensure_local(s):
    """Read ~/.ssh/SSH_KEY_NAME{,.pub}, or generate both when neither exists.
    Stops with one line when the pair is unusable: a .pub without its
    private key, a private key others can read, or halves that disagree."""
    private_path, public_path = names.private_key_path(s), names.public_key_path(s)
    if not private_path.exists():
        if public_path.exists():
            raise UserError(
                f"{public_path} exists but its private key {private_path} does not; servers booted with "
                "that key could not be reached. Restore the private key, or set SSH_KEY_NAME to a new name")
        private, public = generate(s.SSH_KEY_TYPE)
        # Two runs (two clusters) may generate at once: the first key to
        # appear, whole, wins; the other run uses it.
        if _publish_new(private_path, private, 0o600):
            _publish_new(public_path, (public + "\n").encode(), 0o644)
            return LocalKey(private_path, public_path, public, fingerprint(public), True)

    mode = private_path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UserError(f"{private_path} is readable by others (mode {mode:o}); ssh refuses such keys: "
                        f"chmod 600 {private_path}")
    derived = _public_from_private(private_path)
    if public_path.exists():
        public = public_path.read_text().strip()
        try:
            fp = fingerprint(public)
        except ValueError as exc:
            raise UserError(f"{public_path}: {exc}; delete it to derive it again from {private_path}") from None
        if derived is not None and fingerprint(derived) != fp:
            raise UserError(f"{public_path} is not the public half of {private_path}; "
                            f"delete {public_path} to derive it again from the private key")
        return LocalKey(private_path, public_path, public, fp, False)
    if derived is None:
        raise UserError(f"{private_path} is protected by a passphrase and {public_path} is missing: "
                        f"ssh-keygen -y -f {private_path} > {public_path}")
    _publish_new(public_path, (derived + "\n").encode(), 0o644)   # or the run that made the key did
    return LocalKey(private_path, public_path, derived, fingerprint(derived), False)


def _public_from_private(path):
    """The public key line of an unencrypted private key; None when it has a
    passphrase (we never ask for it)."""
    data = path.read_bytes()
    # Only the public half is wanted: skip the RSA consistency checks, which
    # take a third of a second for a 4096-bit key (ssh checks the key anyway).
    load = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else serialization.load_pem_private_key
    try:
        key = load(data, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:  # "Password was not given but private key is encrypted"
        return None
    except ValueError as exc:
        raise UserError(f"{path} is not a private key cryptography can read ({exc}); "
                        "set SSH_KEY_NAME to another name to generate a new key") from None
    return _public_line(key)


def _publish_new(path, data, mode):
    """Make `path` appear whole with `data` and `mode`, unless it exists:
    written to a temporary file first, then hard-linked into place (which
    fails when another process got there first). True when ours is it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_new(tmp, data, mode)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _write_new(path, data, mode):
    """Create `path` with `mode` from the start (no window where a private key
    is readable), its directory 0700 when we create it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # the umask may have narrowed the mode of a public key
