"""
Release mirror: serves, like https://dl.k8s.io does,
  /release/stable.txt
  /<version>/kubernetes/server/linux/amd64/kubernetes-server-linux-amd64.tar.gz
  /<version>/kubernetes/server/linux/amd64/kubernetes-server-linux-amd64.tar.gz.sha256
for a small, real tarball (kubernetes/server/bin/<binary> shell scripts).
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import tarfile
import threading

BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
            "kube-proxy", "kubelet", "kubectl", "kubeadm")
TARBALL = "kubernetes-server-linux-amd64.tar.gz"


def build(root, version):
    d = os.path.join(root, version, "kubernetes", "server", "linux", "amd64")
    os.makedirs(d, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("kubernetes", "kubernetes/server",
                     "kubernetes/server/bin"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for b in BINARIES:
            data = ("#!/bin/sh\necho '%s %s (testcloud)'\n"
                    % (b, version)).encode()
            info = tarfile.TarInfo("kubernetes/server/bin/" + b)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
        data = (version + "\n").encode()
        info = tarfile.TarInfo("kubernetes/version")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
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
