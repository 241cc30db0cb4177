"""
Release mirror: serves, like https://dl.k8s.io does,
  /release/stable.txt
  /<version>/kubernetes/server/linux/amd64/kubernetes-server-linux-amd64.tar.gz
  /<version>/kubernetes/server/linux/amd64/kubernetes-server-linux-amd64.tar.gz.sha256
for a small, real tarball (kubernetes/server/bin/<binary> shell scripts; kubeadm
answers `config validate` as kubeadm does: kubeadm_config.py).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import sys
import tarfile
import threading

BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
            "kube-proxy", "kubelet", "kubectl", "kubeadm")
TARBALL = "kubernetes-server-linux-amd64.tar.gz"


def kubeadm_script(version, body=None):
    """The test release's kubeadm: a Python script run by this Python,
    answering `config validate --config F` as kubeadm does (see
    kubeadm_config.py). `body`: other Python code instead of that (a
    kubeadm that refuses everything, say)."""
    here = os.path.dirname(os.path.abspath(__file__))
    body = body or ("sys.path.insert(0, %r)\nimport kubeadm_config\n"
                    "sys.exit(kubeadm_config.main(sys.argv[1:], %r))\n" % (here, version))
    return ("#!%s\nimport sys\n%s" % (sys.executable, body)).encode()


def server_tarball(fileobj, version, binaries=None):
    """Write a small, real kubernetes-server-linux-amd64.tar.gz to `fileobj`:
    kubernetes/version and kubernetes/server/bin/<binary>. `binaries`
    {name: bytes or None}: the content of those binaries instead of the
    usual stubs (None: left out)."""
    binaries = binaries or {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("kubernetes", "kubernetes/server",
                     "kubernetes/server/bin"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for b in BINARIES:
            if b in binaries:
                data = binaries[b]
                if data is None:
                    continue
            elif b == "kubeadm":
                data = kubeadm_script(version)
            else:
                data = ("#!/bin/sh\necho '%s %s (testcloud)'\n"
                        % (b, version)).encode()
            info = tarfile.TarInfo("kubernetes/server/bin/" + b)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
        data = (version + "\n").encode()
        info = tarfile.TarInfo("kubernetes/version")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    # The same bytes from every mirror (gzip's header time fixed): a
    # download cache shared by the tests keeps one copy per version.
    fileobj.write(gzip.compress(buf.getvalue(), mtime=0))


def build(root, version):
    d = os.path.join(root, version, "kubernetes", "server", "linux", "amd64")
    os.makedirs(d, exist_ok=True)
    buf = io.BytesIO()
    server_tarball(buf, version)
    blob = buf.getvalue()
    with open(os.path.join(d, TARBALL), "wb") as f:
        f.write(blob)
    with open(os.path.join(d, TARBALL + ".sha256"), "w") as f:
        f.write(hashlib.sha256(blob).hexdigest())
    os.makedirs(os.path.join(root, "release"), exist_ok=True)
    with open(os.path.join(root, "release", "stable.txt"), "w") as f:
        f.write(version + "\n")
    return hashlib.sha256(blob).hexdigest()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass


class ReleaseMirror:
    def __init__(self, root, version):
        self.root, self.version = root, version
        self.sha256 = build(root, version)
        handler = functools.partial(_Quiet, directory=root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       name="release-mirror", daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# --- Flatcar-like channel -----------------------------------------------------
# Laid out as Flatcar's release server is (FLATCAR_RELEASE_URL =
# <base>/flatcar/{channel}):
#   /flatcar/<channel>/amd64-usr/current/version.txt
#   /flatcar/<channel>/amd64-usr/<version>/flatcar_production_openstack_image.img{,.bz2}
#   /flatcar/<channel>/amd64-usr/<version>/flatcar_production_openstack_image.img.bz2.DIGESTS{,.asc}
# The image is a real (small) qcow2 made by qemu-img, so Glance's format
# check accepts it; DIGESTS.asc is clear-signed by a test key made here
# (no one's identity: "kube-rackspace test key", no passphrase).

FLATCAR_IMAGE = "flatcar_production_openstack_image.img"


def make_test_key(gnupghome):
    """A new signing key in `gnupghome`: (fingerprint, armored public key)."""
    import subprocess
    os.makedirs(gnupghome, mode=0o700, exist_ok=True)
    env = dict(os.environ, GNUPGHOME=gnupghome)
    subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
                    "kube-rackspace test key <test@invalid>", "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True)
    out = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True,
                         capture_output=True, text=True).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    armored = subprocess.run(["gpg", "--batch", "--armor", "--export", fpr], env=env, check=True,
                             capture_output=True, text=True).stdout
    return fpr, armored


def clearsign(gnupghome, text):
    import subprocess
    return subprocess.run(["gpg", "--batch", "--quiet", "--clearsign"], input=text, env=dict(
        os.environ, GNUPGHOME=gnupghome), check=True, capture_output=True, text=True).stdout


def make_qcow2(path, size="64M", payload=b""):
    """A real qcow2 file (qemu-img create), with `payload` written into its
    guest data when given (qemu-img convert from a raw file)."""
    import subprocess
    if payload:
        raw = path + ".raw"
        with open(raw, "wb") as f:
            f.write(payload)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path], check=True,
                       capture_output=True)
        os.unlink(raw)
    else:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, size], check=True, capture_output=True)


def publish_flatcar(root, channel, version, image_path, gnupghome, current=True, digests=None,
                    bz2_path=None):
    """Put `image_path` (a qcow2) on the mirror as Flatcar `version`.
    `digests` overrides the DIGESTS text (for tests of bad digests);
    `bz2_path` gives a ready .bz2 (the benchmark's, compressed in parallel)."""
    import bz2
    import shutil
    d = os.path.join(root, "flatcar", channel, "amd64-usr", version)
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(image_path, os.path.join(d, FLATCAR_IMAGE))
    target = os.path.join(d, FLATCAR_IMAGE + ".bz2")
    if bz2_path:
        shutil.copyfile(bz2_path, target)
    else:
        with open(image_path, "rb") as src, bz2.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    sums = {}
    for algo in ("md5", "sha1", "sha512"):
        h = hashlib.new(algo)
        with open(target, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        sums[algo] = h.hexdigest()
    text = digests if digests is not None else "".join(
        f"# {algo.upper()} HASH\n{sums[algo]}  {FLATCAR_IMAGE}.bz2\n" for algo in ("md5", "sha1", "sha512"))
    with open(target + ".DIGESTS", "w") as f:
        f.write(text)
    with open(target + ".DIGESTS.asc", "w") as f:
        f.write(clearsign(gnupghome, text))
    if current:
        cur = os.path.join(root, "flatcar", channel, "amd64-usr", "current")
        os.makedirs(cur, exist_ok=True)
        with open(os.path.join(cur, "version.txt"), "w") as f:
            f.write(f"FLATCAR_BUILD=0\nFLATCAR_BRANCH=0\nFLATCAR_PATCH=0\nFLATCAR_VERSION={version}\n"
                    f"FLATCAR_VERSION_ID={version}\nFLATCAR_BUILD_ID=\"\"\nFLATCAR_SDK_VERSION={version}\n")
    return sums["sha512"]


class FlatcarMirror:
    """A signed Flatcar-like channel on a release mirror's root."""

    def __init__(self, root, base_url, channel="stable", version="4230.2.1"):
        self.root, self.channel, self.version = root, channel, version
        # Beside the served root, not in it: the mirror serves only public files.
        self.gnupghome = root.rstrip("/") + "-gnupg"
        self.fingerprint, armored = make_test_key(self.gnupghome)
        self.key_file = os.path.join(root, "flatcar-test-key.asc")
        with open(self.key_file, "w") as f:
            f.write(armored)
        self.release_url = base_url + "/flatcar/{channel}"
        self.image = os.path.join(root, "flatcar-test.qcow2")
        make_qcow2(self.image)
        self.sha512 = publish_flatcar(root, channel, version, self.image, self.gnupghome)

    def env(self):
        return {"FLATCAR_RELEASE_URL": self.release_url, "FLATCAR_KEY_FILE": self.key_file,
                "FLATCAR_KEY_FINGERPRINT": self.fingerprint}
