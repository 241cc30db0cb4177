"""tasks/model/pki.py: the cluster CA, bootstrap token, admin certificate and
kubeconfig, checked against openssl and a real TLS handshake."""

import base64
import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tasks.model import pki
from tasks.support.errors import UserError


def _openssl(*args, stdin=None):
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed for these tests (apt-get install -y openssl)")
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


def test_discovery_hash_matches_the_documented_openssl_pipeline(material):
    pubkey = _openssl("x509", "-pubkey", "-noout", stdin=material.ca_cert_pem.encode())
    der = _openssl("rsa", "-pubin", "-outform", "der", stdin=pubkey)
    digest = _openssl("dgst", "-sha256", "-hex", stdin=der).decode().split("=")[-1].strip()
    assert pki.discovery_hash(material.ca_cert_pem) == f"sha256:{digest}"
    assert material.discovery_hash == f"sha256:{digest}"


def test_discovery_hash_differs_per_ca(material):
    other = pki.generate()
    assert other.discovery_hash != material.discovery_hash


def test_ca_is_a_ca_named_like_kubeadms(material):
    cert = x509.load_pem_x509_certificate(material.ca_cert_pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    key = serialization.load_pem_private_key(material.ca_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_admin_certificate_verifies_against_the_ca(material, tmp_path):
    (tmp_path / "ca.crt").write_text(material.ca_cert_pem)
    (tmp_path / "admin.crt").write_text(material.admin_cert_pem)
    out = _openssl("verify", "-purpose", "sslclient", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "admin.crt"))
    assert out.decode().strip().endswith(": OK")
    assert pki.issued_by(material.admin_cert_pem, material.ca_cert_pem)
    assert not pki.issued_by(material.admin_cert_pem, pki.generate().ca_cert_pem)


def test_admin_certificate_is_a_cluster_admin_client(material):
    cert = x509.load_pem_x509_certificate(material.admin_cert_pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kube-rackspace-admin"
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_bootstrap_tokens_have_kubeadms_format_and_differ():
    tokens = {pki.new_bootstrap_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(pki.TOKEN_RE.match(t) for t in tokens)


def test_repr_shows_no_secret(material):
    text = repr(material)
    assert material.ca_key_pem not in text
    assert material.admin_key_pem not in text
    assert material.bootstrap_token not in text


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_creates_private_files_once_and_reuses_them(tmp_path):
    state = tmp_path / "state" / "cluster"
    first = pki.ensure(state)
    assert _mode(state) == 0o700
    for name in pki.FILES.values():
        assert _mode(state / name) == 0o600, name
    before = {name: (state / name).stat().st_mtime_ns for name in pki.FILES.values()}
    second = pki.ensure(state)
    assert second == first
    assert before == {name: (state / name).stat().st_mtime_ns for name in pki.FILES.values()}


def test_ensure_tightens_loose_permissions(tmp_path):
    state = tmp_path / "cluster"
    pki.ensure(state)
    state.chmod(0o755)
    (state / "ca.key").chmod(0o644)
    pki.ensure(state)
    assert _mode(state) == 0o700
    assert _mode(state / "ca.key") == 0o600


def test_ensure_refuses_a_ca_without_its_key(tmp_path):
    state = tmp_path / "cluster"
    pki.ensure(state)
    (state / "ca.key").unlink()
    with pytest.raises(UserError, match="ca.key is missing"):
        pki.ensure(state)


def test_ensure_rejects_a_garbled_token(tmp_path):
    state = tmp_path / "cluster"
    pki.ensure(state)
    (state / "bootstrap-token").write_text("not-a-token\n")
    with pytest.raises(UserError, match="bootstrap-token"):
        pki.ensure(state)


def test_ensure_renews_only_an_expiring_admin_certificate(tmp_path):
    state = tmp_path / "cluster"
    first = pki.ensure(state)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=pki.ADMIN_DAYS - 10)
    renewed = pki.ensure(state, now=later)
    assert renewed.admin_cert_pem != first.admin_cert_pem
    assert (renewed.ca_cert_pem, renewed.ca_key_pem, renewed.bootstrap_token) == \
        (first.ca_cert_pem, first.ca_key_pem, first.bootstrap_token)
    assert pki.issued_by(renewed.admin_cert_pem, renewed.ca_cert_pem)
    assert (state / "admin.crt").read_text() == renewed.admin_cert_pem


def test_ensure_replaces_an_admin_certificate_from_another_ca(tmp_path):
    state = tmp_path / "cluster"
    first = pki.ensure(state)
    stranger = pki.generate()
    (state / "admin.crt").write_text(stranger.admin_cert_pem)
    (state / "admin.key").write_text(stranger.admin_key_pem)
    fixed = pki.ensure(state)
    assert fixed.ca_cert_pem == first.ca_cert_pem
    assert pki.issued_by(fixed.admin_cert_pem, first.ca_cert_pem)


# --- the kubeconfig against a real TLS server --------------------------------

def _server_cert(material, address):
    ca_key = serialization.load_pem_private_key(material.ca_key_pem.encode(), password=None)
    ca = x509.load_pem_x509_certificate(material.ca_cert_pem.encode())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
            cert.public_bytes(serialization.Encoding.PEM).decode())


def test_admin_kubeconfig_authenticates_with_tls_verified(material, tmp_path):
    """An API-server-like TLS endpoint signed by the cluster CA that demands
    a client certificate from that CA accepts the kubeconfig's credentials,
    and the client verifies the server by the kubeconfig's CA alone."""
    text = pki.admin_kubeconfig("rackspace_test", "https://127.0.0.1:6443", material)
    config = yaml.safe_load(text)
    assert config["current-context"] == "rackspace_test"
    cluster = config["clusters"][0]["cluster"]
    assert "insecure-skip-tls-verify" not in cluster
    user = config["users"][0]["user"]
    ca_pem = base64.b64decode(cluster["certificate-authority-data"])
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    (tmp_path / "client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp_path / "client.key").write_bytes(base64.b64decode(user["client-key-data"]))
    os.chmod(tmp_path / "client.key", 0o600)

    server_key, server_cert = _server_cert(material, "127.0.0.1")
    (tmp_path / "server.key").write_text(server_key)
    (tmp_path / "server.crt").write_text(server_cert)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    server_ctx.load_verify_locations(cadata=material.ca_cert_pem)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen = {}

    def serve():
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client_ctx.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    with socket.create_connection(listener.getsockname(), timeout=10) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(2) == b"ok"
    thread.join(10)
    listener.close()
    subject = dict(item[0] for item in seen["peer"]["subject"])
    assert subject == {"organizationName": "system:masters", "commonName": "kube-rackspace-admin"}


def test_kubeconfig_is_rejected_by_a_server_of_another_ca(material, tmp_path):
    other = pki.generate()
    server_key, server_cert = _server_cert(other, "127.0.0.1")
    (tmp_path / "server.key").write_text(server_key)
    (tmp_path / "server.crt").write_text(server_cert)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cadata=material.ca_cert_pem)
    with socket.create_connection(listener.getsockname(), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(10)
    listener.close()
