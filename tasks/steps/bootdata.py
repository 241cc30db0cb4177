"""The seam between the cloud stages and the cloud-config: the user data one
server boots with, as the bytes Nova gets (before base64).

`BootData(s, release, kind).user_data(role, index, master_ip)` gathers the facts a
server needs (userdata.ClusterFacts: the release temp URL, sha256 and version, the
cluster key, the PKI from the state dir, and for nodes their index and the
master's Cloud Network address) and hands them to userdata.render / encode.
`kind` is the cloud kind's NAME (kinds.of(cloud).NAME): always given, never
assumed.
"""

import dataclasses
import threading

from ..model import names
from ..support.errors import UserError


def lazy_release(s, cloud):
    """A function returning publish.publish(s, cloud), called at most once and
    only when a server is really created: a re-run that creates nothing
    neither hashes nor uploads the tarball."""
    lock = threading.Lock()
    box = []

    def get():
        with lock:
            if not box:
                from . import publish

                box.append(publish.publish(s, cloud))
            return box[0]
    return get


class BootData:
    """User data for the servers of one run. The facts every server shares
    (release, cluster key, PKI) are gathered once, at the first server that
    needs them; thread-safe, so node creates can render in parallel."""

    def __init__(self, s, release, kind):
        self.s = s
        self.kind = kind
        self._release = release
        self._lock = threading.Lock()
        self._base = None

    def base_facts(self):
        from ..model import pki, sshkeys, userdata

        with self._lock:
            if self._base is None:
                s, release = self.s, self._release
                if callable(release):
                    release = release()
                version = release.version or (s.KUBE_VERSION if s.KUBE_VERSION != "stable" else None)
                if not version:
                    raise UserError(f"cannot tell which Kubernetes version {release.container}/"
                                    f"{release.object_name} holds; set KUBE_VERSION to it (e.g. v1.31.4)")
                material = pki.ensure(names.state_dir(s), token_ttl=s.BOOTSTRAP_TOKEN_TTL)
                self._base = userdata.ClusterFacts.from_pki(
                    material, kube_version=version, release_url=release.url,
                    release_sha256=release.sha256, ssh_public_key=sshkeys.ensure_local(s).public_key)
            return self._base

    def use_token(self, record):
        """Render with the pki.TokenRecord `record` instead of the recorded
        token (`inv plan` previews a renewal it does not make)."""
        base = self.base_facts()
        with self._lock:
            self._base = dataclasses.replace(base, bootstrap_token=record.token,
                                             bootstrap_token_expires=record.expires_text)

    def facts(self, role, index, master_ip, attach=None):
        """`attach` (kinds.Attach) carries what the cloud kind knows before
        boot: the template facts come from the kind, never from a test of it."""
        from .. import kinds

        net = kinds.named(self.kind).template_facts(self.s, role, attach)
        if role == "node":
            return dataclasses.replace(self.base_facts(), master_ip=master_ip, node_index=index, net=net)
        return dataclasses.replace(self.base_facts(), net=net)

    def user_data(self, role, index, master_ip, attach=None):
        """Bytes for Nova's user_data, gzipped when large (cloudservers adds
        the base64 and checks the 64 KiB limit again)."""
        from ..model import userdata

        text = userdata.render(role, self.s, self.facts(role, index, master_ip, attach))
        return userdata.encode(text, names.master_name(self.s) if role == "master" else names.node_name(self.s, index))


def user_data(s, role, index, release, master_ip, attach, kind):
    """One server's user data (BootData for many)."""
    return BootData(s, release, kind).user_data(role, index, master_ip, attach)
