"""The cluster's secrets, made on the laptop: CA, bootstrap token, admin
client certificate, and the admin kubeconfig built from them.

Made locally so that the nodes need nothing from the master but its address
(they check it by the CA's public key hash) and so the admin kubeconfig works,
with TLS verified, the moment the API server answers.

RSA 2048 for the CA and the admin key: it is what kubeadm itself generates
by default, so the whole cluster PKI is one algorithm, and every tool that
inspects a kubeadm CA (`openssl rsa -pubin`, the documented way to compute
the discovery hash) works on it as documented.

Pure functions, plus `ensure(state_dir)` which creates the files once (mode
0600 in a 0700 directory) and reuses them afterwards.
"""

import base64
import datetime
import hashlib
import os
import re
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..support.errors import UserError

CA_NAME = "kubernetes"  # kubeadm's own CA common name
ADMIN_NAME = "kube-rackspace-admin"
ADMIN_GROUP = "system:masters"
CA_DAYS = 3650
ADMIN_DAYS = 365
# Renew the admin certificate when it has less than this left.
ADMIN_RENEW_DAYS = 30

TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
# The bootstrap token's file: `token: ...` and `expires: <RFC 3339 UTC>`.
TOKEN_FILE = "bootstrap-token"
DEFAULT_TOKEN_TTL = 86400
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits

FILES = {
    "ca_cert_pem": "ca.crt",
    "ca_key_pem": "ca.key",
    "admin_cert_pem": "admin.crt",
    "admin_key_pem": "admin.key",
}


@dataclass(frozen=True)
class ClusterPKI:
    """PEM text of the CA and admin pair, and the bootstrap token. repr()
    shows none of the secrets."""

    ca_cert_pem: str
    ca_key_pem: str = field(repr=False)
    admin_cert_pem: str
    admin_key_pem: str = field(repr=False)
    bootstrap_token: str = field(repr=False)
    bootstrap_token_expires: str = ""    # RFC 3339, UTC

    @property
    def discovery_hash(self):
        return discovery_hash(self.ca_cert_pem)

    @property
    def token_id(self):
        return self.bootstrap_token.split(".", 1)[0]


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def new_ca(now=None):
    """A self-signed CA as kubeadm would make it: (key_pem, cert_pem)."""
    now = now or _now()
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A little slack for servers whose clock is behind the laptop's.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                     content_commitment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), _cert_pem(cert)


def new_admin(ca_key_pem, ca_cert_pem, now=None):
    """A client certificate in group system:masters signed by the CA:
    (key_pem, cert_pem)."""
    now = now or _now()
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                                 x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=ADMIN_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     content_commitment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _key_pem(key), _cert_pem(cert)


def new_bootstrap_token():
    """A kubeadm bootstrap token, [a-z0-9]{6}.[a-z0-9]{16}."""
    pick = lambda n: "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


@dataclass(frozen=True)
class TokenRecord:
    """A bootstrap token and when it expires (aware UTC datetime; None for a
    token recorded before tokens expired, which counts as expired)."""

    token: str = field(repr=False)
    expires: datetime.datetime = None

    @property
    def token_id(self):
        return self.token.split(".", 1)[0]

    @property
    def expires_text(self):
        """RFC 3339 in UTC, as the bootstrap-token Secret's `expiration`."""
        return self.expires.strftime("%Y-%m-%dT%H:%M:%SZ") if self.expires else ""

    def stale(self, now, margin):
        """True when the token has expired or expires within `margin` seconds."""
        return self.expires is None or self.expires - now <= datetime.timedelta(seconds=margin)


def new_token_record(ttl, now=None):
    """A fresh token that expires `ttl` seconds from now (whole seconds)."""
    now = (now or _now()).replace(microsecond=0)
    return TokenRecord(new_bootstrap_token(), now + datetime.timedelta(seconds=ttl))


def parse_token_record(text, origin):
    """The TokenRecord in a token file's text; UserError naming `origin`
    when it is not one."""
    problem = f"{origin} does not hold a bootstrap token ([a-z0-9]{{6}}.[a-z0-9]{{16}}); remove it to make a new one"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(problem) from None
    if isinstance(doc, str):
        # The format before tokens expired: the token alone, made with ttl 0s.
        doc = {"token": doc}
    if not isinstance(doc, dict) or not TOKEN_RE.match(str(doc.get("token", ""))):
        raise UserError(problem)
    expires = doc.get("expires")
    if isinstance(expires, datetime.datetime):   # YAML reads an unquoted timestamp as one
        expires = expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires.tzinfo is None else \
            expires.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if expires is not None:
        try:
            expires = datetime.datetime.strptime(str(expires), "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise UserError(f"{origin}: expires must be a UTC time like 2030-01-02T03:04:05Z; "
                            "remove the file to make a new token") from None
    return TokenRecord(doc["token"], expires)


def token_record_text(record):
    return f"token: {record.token}\nexpires: \"{record.expires_text}\"\n"


def read_token(state_dir):
    """The recorded TokenRecord, or None when there is none."""
    path = Path(state_dir) / TOKEN_FILE
    if not path.is_file():
        return None
    return parse_token_record(path.read_text(), path)


def write_token(state_dir, record):
    """Record the token in the state dir, mode 0600."""
    state_dir = Path(state_dir)
    _private_dir(state_dir)
    _write_private(state_dir / TOKEN_FILE, token_record_text(record))


def discovery_hash(ca_cert_pem):
    """What `kubeadm join --discovery-token-ca-cert-hash` expects: sha256 of
    the CA's DER-encoded SubjectPublicKeyInfo (RFC 7469)."""
    cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def issued_by(cert_pem, ca_cert_pem):
    """True when cert_pem was signed by the CA of ca_cert_pem."""
    try:
        x509.load_pem_x509_certificate(cert_pem.encode()).verify_directly_issued_by(
            x509.load_pem_x509_certificate(ca_cert_pem.encode()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _expires_soon(cert_pem, now):
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return cert.not_valid_after_utc - now < datetime.timedelta(days=ADMIN_RENEW_DAYS)


def generate(now=None):
    """A complete new ClusterPKI (in memory)."""
    ca_key, ca_cert = new_ca(now)
    admin_key, admin_cert = new_admin(ca_key, ca_cert, now)
    token = new_token_record(DEFAULT_TOKEN_TTL, now)
    return ClusterPKI(ca_cert, ca_key, admin_cert, admin_key, token.token, token.expires_text)


# --- the state directory ------------------------------------------------------

def _write_private(path, text):
    """Write atomically with mode 0600 from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _private_dir(path):
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def ensure(state_dir, now=None, token_ttl=DEFAULT_TOKEN_TTL):
    """The cluster's PKI from `state_dir`, creating what is missing (a
    missing token is made valid for `token_ttl` seconds).

    Made once and reused: the CA is in the servers' user data, so replacing
    it under a running cluster would lock its nodes out. The admin
    certificate is renewed when it nears expiry or no longer matches the
    CA; the token is renewed by tokens.ensure_fresh, which decides whether
    the cluster must learn it, not here."""
    state_dir = Path(state_dir)
    now = now or _now()
    _private_dir(state_dir)
    paths = {attr: state_dir / name for attr, name in FILES.items()}
    found = {attr: p.read_text() for attr, p in paths.items() if p.is_file()}

    ca_parts = [a for a in ("ca_cert_pem", "ca_key_pem") if a in found]
    if len(ca_parts) == 1:
        present, missing = ("ca.crt", "ca.key") if "ca_cert_pem" in found else ("ca.key", "ca.crt")
        raise UserError(
            f"{state_dir / missing} is missing but {state_dir / present} exists: restore it, "
            f"or remove {state_dir} and recreate the cluster (inv down, then inv up)")
    if not ca_parts:
        found["ca_key_pem"], found["ca_cert_pem"] = new_ca(now)
    token = read_token(state_dir)
    if token is None:
        token = new_token_record(token_ttl, now)
        write_token(state_dir, token)
    admin_ok = ("admin_cert_pem" in found and "admin_key_pem" in found
                and issued_by(found["admin_cert_pem"], found["ca_cert_pem"])
                and not _expires_soon(found["admin_cert_pem"], now))
    if not admin_ok:
        found["admin_key_pem"], found["admin_cert_pem"] = new_admin(found["ca_key_pem"], found["ca_cert_pem"], now)

    for attr, path in paths.items():
        if not path.is_file() or path.read_text() != found[attr]:
            _write_private(path, found[attr])
        path.chmod(0o600)
    (state_dir / TOKEN_FILE).chmod(0o600)
    return ClusterPKI(**{attr: found[attr] for attr in FILES}, bootstrap_token=token.token,
                      bootstrap_token_expires=token.expires_text)


# --- admin kubeconfig -------------------------------------------------------

def _b64(text):
    return base64.b64encode(text.encode()).decode()


def admin_kubeconfig(context, server_url, material):
    """kubeconfig text for the admin: cluster, user and context all named
    `context` (names.kube_context), the CA inline so TLS is verified."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server_url,
            "certificate-authority-data": _b64(material.ca_cert_pem)}}],
        "users": [{"name": context, "user": {
            "client-certificate-data": _b64(material.admin_cert_pem),
            "client-key-data": _b64(material.admin_key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)
