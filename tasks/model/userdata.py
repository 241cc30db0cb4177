"""What the servers run: the cloud-config user data of the master and nodes.

`render(role, s, facts)` is pure: settings and cluster facts in, the
`#cloud-config` text out, from the Jinja2 templates in cloud-config/
(StrictUndefined: a missing value is an error, never an empty string).
`encode(text, role)` turns it into the bytes given to Nova as user_data.

The servers bootstrap with kubeadm (see README, "Why kubeadm"). Secrets go
only where they are needed: the master gets the CA key and the bootstrap
token; a node gets the token and the CA's public key hash; nobody gets the
admin key or any cloud credential.
"""

import base64
import gzip
import ipaddress
import functools
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import jinja2

from . import layout, names
from ..support.errors import UserError

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "cloud-config"

# Nova rejects user_data whose base64 form exceeds 65535 bytes.
MAX_USER_DATA = 65535
# Above this much text, gzip it: coreos-cloudinit inflates gzip user data
# (it checks the gzip magic before parsing).
GZIP_ABOVE = 16 * 1024

# kubeadm config v1beta4 (used here) arrived in Kubernetes 1.31, which is
# also the first kubeadm that needs no crictl on the host.
MIN_MINOR = 31

IMAGE_REPOSITORY = "registry.k8s.io"

# Pinned downloads that are not part of the Kubernetes release. The CNI
# plugins (bridge, host-local, portmap, loopback) are what flannel's own
# plugin delegates to; Flatcar does not ship them.
CNI_PLUGINS = SimpleNamespace(
    version="v1.6.2",
    url="https://github.com/containernetworking/plugins/releases/download/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz",
    sha256="b8e811578fb66023f90d2e238d80cec3bdfca4b44049af74c374d4fae0f9c090",
)
FLANNEL = SimpleNamespace(
    version="v0.26.7",
    image="ghcr.io/flannel-io/flannel:v0.26.7",
    cni_plugin_image="ghcr.io/flannel-io/flannel-cni-plugin:v1.6.2-flannel1",
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^v1\.(\d+)\.(\d+)(-[0-9A-Za-z.]+)?$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass(frozen=True)
class ClusterFacts:
    """What a server's user data needs beyond the settings.

    kube_version    the release the tarball holds, resolved (never 'stable')
    release_url     temp URL of the tarball in Cloud Files (secret-ish)
    release_sha256  hex sha256 of that tarball, computed locally from the
                    file that was uploaded
    ssh_public_key  the cluster key (OpenSSH public key line)
    ca_cert_pem, ca_key_pem, bootstrap_token, discovery_hash
                    from pki.ensure(); ca_key_pem is used for the master only
    master_ip       the master's Cloud Network IPv4 (nodes only: from Nova's
                    addresses of the master, the one inside NOVA_NETWORK)
    bootstrap_token_expires
                    RFC 3339 UTC time the token expires (pki.TokenRecord)
    node_index      1..NUM_NODES (nodes only)
    net             the cloud kind's network facts (public address known
                    before boot, the shell function that finds the cluster
                    address, flannel's backend)
    """

    kube_version: str
    release_url: str = field(repr=False)
    release_sha256: str
    ssh_public_key: str
    ca_cert_pem: str
    ca_key_pem: str = field(repr=False)
    bootstrap_token: str = field(repr=False)
    discovery_hash: str
    master_ip: str = None
    node_index: int = 0
    bootstrap_token_expires: str = ""
    # The cloud kind's template facts (kind_*.template_facts): the `net`
    # namespace of the templates. Required: no kind is assumed.
    net: dict = field(default=None, compare=False)

    @classmethod
    def from_pki(cls, material, **kwargs):
        """Facts with the PKI fields taken from a pki.ClusterPKI."""
        return cls(ca_cert_pem=material.ca_cert_pem, ca_key_pem=material.ca_key_pem,
                   bootstrap_token=material.bootstrap_token, discovery_hash=material.discovery_hash,
                   bootstrap_token_expires=material.bootstrap_token_expires, **kwargs)


def _shell(value):
    return shlex.quote(str(value))


def _curl_quote(value):
    # Inside double quotes in a curl config file, \ and " are escaped.
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


@functools.lru_cache(maxsize=None)
def _environment():
    # Built once per process: templates compile once however many nodes render.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shell"] = _shell
    env.filters["curl_quote"] = _curl_quote
    env.filters["tojson"] = lambda v: json.dumps(v)
    return env


def ip_regex(network):
    """An anchored regex matching exactly the dotted IPv4 addresses inside
    `network` (an ipaddress.IPv4Network), for flannel's --iface-regex."""
    network = ipaddress.IPv4Network(network)
    octets = str(network.network_address).split(".")
    whole, rest = divmod(network.prefixlen, 8)
    parts = [re.escape(o) for o in octets[:whole]]
    if whole < 4:
        if rest:
            low = int(octets[whole])
            numbers = [str(n) for n in range(low, low + 2 ** (8 - rest))]
            parts.append("(" + "|".join(numbers) + ")")
        else:
            parts.append("[0-9]+")
        parts += ["[0-9]+"] * (3 - whole)
    return "^" + r"\.".join(parts) + "$"


def _check_facts(role, facts, kind_facts=True):
    match = _VERSION.match(facts.kube_version or "")
    if not match:
        raise UserError(f"Kubernetes version {facts.kube_version!r} is not a release like v1.31.4; "
                        "set KUBE_VERSION to one (or resolve 'stable' before rendering)")
    if int(match.group(1)) < MIN_MINOR:
        raise UserError(f"KUBE_VERSION {facts.kube_version} is too old: kube-rackspace needs v1.{MIN_MINOR} "
                        "or later (kubeadm config v1beta4)")
    if not _SHA256.match(facts.release_sha256 or ""):
        raise ValueError("release_sha256 must be 64 lowercase hex digits")
    if not _HASH.match(facts.discovery_hash or ""):
        raise ValueError("discovery_hash must look like sha256:<64 hex digits>")
    if not _TOKEN.match(facts.bootstrap_token or ""):
        raise ValueError("bootstrap_token must match [a-z0-9]{6}.[a-z0-9]{16}")
    if role == "master" and not _RFC3339_UTC.match(facts.bootstrap_token_expires or ""):
        raise ValueError("bootstrap_token_expires must be a UTC time like 2030-01-02T03:04:05Z")
    if kind_facts and not facts.net:
        raise ValueError("net must hold the cloud kind's template facts (kind_*.template_facts)")
    if not re.match(r"^https?://", facts.release_url or ""):
        raise ValueError("release_url must be an http(s) URL")
    if role == "node":
        ipaddress.IPv4Address(facts.master_ip)  # ValueError when missing or malformed
        if facts.node_index < 1:
            raise ValueError("a node's index starts at 1")


def context(role, s, facts):
    """The values the templates see (exposed for tests)."""
    service = s.SERVICE_CLUSTER_IP_RANGE
    dns_kubeadm_ip = service.network_address + 10
    cluster = {key: s[key] for key in (
        "INSTANCE_PREFIX", "NUM_NODES", "KUBE_NETWORK", "SERVICE_CLUSTER_IP_RANGE", "NOVA_NETWORK",
        "DNS_SERVER_IP", "DNS_DOMAIN", "ENABLE_CLUSTER_DNS")}
    return {
        "role": role,
        "hostname": names.master_name(s) if role == "master" else names.node_name(s, facts.node_index),
        "layout": SimpleNamespace(**layout.template_values()),
        "cluster": SimpleNamespace(**cluster),
        "facts": facts,
        "master_ip": facts.master_ip if role == "node" else None,
        "kubernetes_service_ip": service.network_address + 1,
        "dns_kubeadm_ip": dns_kubeadm_ip,
        "dns_service_patch": bool(s.ENABLE_CLUSTER_DNS) and s.DNS_SERVER_IP != dns_kubeadm_ip,
        "publicnet_id": names.PUBLICNET,
        "servicenet_id": names.SERVICENET,
        "image_repository": IMAGE_REPOSITORY,
        "cni": CNI_PLUGINS,
        "flannel": SimpleNamespace(**vars(FLANNEL), iface_regex=ip_regex(s.NOVA_NETWORK)),
        "firewall": SimpleNamespace(nodeports=bool(s.PUBLIC_NODEPORTS)),
        "net": SimpleNamespace(**(facts.net or {})),
    }


def render(role, s, facts):
    """The #cloud-config text for a server of `role` ('master' or 'node')."""
    if role not in layout.ROLES:
        raise ValueError(f"role must be one of {layout.ROLES}, got {role!r}")
    _check_facts(role, facts)
    template = _environment().get_template(f"{role}.yaml.j2")
    return template.render(**context(role, s, facts))


def kubeadm_config(role, s, facts):
    """The kubeadm config file the server of `role` gets (the same template
    and values its user data writes to layout.KUBEADM_CONFIG), with the
    placeholders its bootstrap script fills at boot still in it."""
    if role not in layout.ROLES:
        raise ValueError(f"role must be one of {layout.ROLES}, got {role!r}")
    # The kubeadm configs hold no kind-specific network facts, so the
    # preflight check renders them before the cloud kind is known.
    _check_facts(role, facts, kind_facts=False)
    return _environment().get_template(f"addons/kubeadm-{role}.yaml.j2").render(**context(role, s, facts))


def encode(text, role="server"):
    """The bytes to pass to Nova as user_data (Nova base64-encodes them):
    gzip-compressed when the text is large. Raises UserError when even that
    is over Nova's limit."""
    data = text.encode()
    if len(data) > GZIP_ABOVE:
        # mtime=0: the same text always gives the same bytes.
        data = gzip.compress(data, compresslevel=9, mtime=0)
    size = len(base64.b64encode(data))
    if size > MAX_USER_DATA:
        raise UserError(f"the {role} user data is {size} bytes base64-encoded, over Nova's limit of "
                        f"{MAX_USER_DATA}; shorten what cloud-config/ puts in it")
    return data


def decode(data):
    """Inverse of encode() (for tests and debugging)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode()
