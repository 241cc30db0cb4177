"""OpenPGP signature checks with gpgv (Debian package gpgv, GnuPG's
verify-only tool).

Why gpgv: it is GnuPG's own verifier, patched by Debian's security team,
already installed on nearly every Debian system (apt uses it); it keeps no
state, trusts exactly the keys in the file it is handed, and reports the
signing key's primary fingerprint in machine-readable status lines, which
is what the pin is checked against.

gpgv 2.2 reads binary keyrings only, so the armored key file is
de-armored here (base64 with its CRC-24 checked) into a temporary file.
"""

import base64
import os
import shutil
import subprocess
import tempfile

from ..support.errors import UserError

GPGV = "gpgv"


class BadSignature(UserError):
    """The signature does not check out against the pinned key."""


def _crc24(data):
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text, origin):
    """The binary packets of an ASCII-armored public key block."""
    lines = text.strip().splitlines()
    try:
        start = lines.index("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        end = lines.index("-----END PGP PUBLIC KEY BLOCK-----", start)
    except ValueError:
        raise UserError(f"{origin} is not an armored OpenPGP public key; check FLATCAR_KEY_FILE") from None
    body = lines[start + 1:end]
    # Armor headers end at the first empty line.
    if "" in body:
        body = body[body.index("") + 1:]
    checksum = None
    if body and body[-1].startswith("="):
        checksum = body.pop()[1:]
    try:
        data = base64.b64decode("".join(body), validate=True)
    except ValueError:
        raise UserError(f"{origin}: the key block is not valid base64; check FLATCAR_KEY_FILE") from None
    if checksum is not None and base64.b64decode(checksum) != _crc24(data).to_bytes(3, "big"):
        raise UserError(f"{origin}: the key block's checksum does not match; the file is damaged")
    return data


def status_fingerprints(status_text):
    """Primary-key fingerprints of the VALIDSIG lines in gpgv's status output."""
    found = []
    for line in status_text.splitlines():
        words = line.split()
        if len(words) >= 12 and words[:2] == ["[GNUPG:]", "VALIDSIG"]:
            found.append(words[11].upper())
    return found


def normalize_fingerprint(value):
    return "".join(value.split()).upper()


def verify(signature_path, key_path, fingerprint, data_path=None, what=None):
    """Check a signature with gpgv against the key file, and that the key
    that made it has the pinned primary fingerprint. A clear-signed file
    (data_path None) returns the signed text, and only that text: anything
    around the signed part is dropped. A detached signature checks
    data_path and returns its text."""
    what = what or os.path.basename(signature_path)
    if shutil.which(GPGV) is None:
        raise UserError("gpgv not found: install it (Debian: apt-get install gpgv) to check Flatcar's signatures")
    try:
        key_text = open(key_path).read()
    except OSError as exc:
        raise UserError(f"cannot read the signing key {key_path} ({exc.strerror}); check FLATCAR_KEY_FILE") from None
    pinned = normalize_fingerprint(fingerprint)
    with tempfile.TemporaryDirectory(prefix="kube-rackspace-gpgv-") as tmp:
        keyring = os.path.join(tmp, "keyring.gpg")
        with open(keyring, "wb") as f:
            f.write(dearmor(key_text, key_path))
        output = os.path.join(tmp, "signed.txt")
        cmd = [GPGV, "--homedir", tmp, "--status-fd", "1", "--keyring", keyring]
        if data_path is None:
            cmd += ["--output", output, str(signature_path)]
        else:
            cmd += [str(signature_path), str(data_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        fingerprints = status_fingerprints(proc.stdout)
        if proc.returncode != 0 or not fingerprints:
            reason = _reason(proc.stdout)
            raise BadSignature(f"{what}: bad OpenPGP signature ({reason}); nothing was uploaded")
        if any(fp != pinned for fp in fingerprints):
            raise BadSignature(f"{what}: signed by key {fingerprints[0]}, not the pinned FLATCAR_KEY_FINGERPRINT "
                               f"{pinned}; nothing was uploaded")
        with open(output if data_path is None else data_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def _reason(status_text):
    for line in status_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "[GNUPG:]":
            if words[1] == "BADSIG":
                return "the signature does not match the signed text"
            if words[1] == "NO_PUBKEY":
                return f"made by key {words[2]}, which is not in the key file"
            if words[1] == "NODATA":
                return "no signature found"
    return "gpgv could not verify it"
