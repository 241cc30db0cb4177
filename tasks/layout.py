"""Where things live on the servers: unit names, paths, the API port, and
the post-boot checks that look at them.

The one place these names are written down. The cloud-config templates get
them from here (userdata.render passes them in as `layout`), and the
lifecycle's post-boot checks run the commands of `checks(role, ...)` over
SSH, so a renamed unit or moved file cannot leave the two disagreeing.
Pure data and tiny functions: no I/O.
"""

import shlex
from dataclasses import dataclass

API_PORT = 6443

# Flatcar's /usr is read-only; /opt/bin is the conventional place for
# binaries a machine adds (and is on the default PATH of Flatcar's shell).
BIN_DIR = "/opt/bin"
# containerd's CRI plugin looks for CNI plugins here (its default bin_dir).
CNI_BIN_DIR = "/opt/cni/bin"

# Our own files: scripts world-readable, configuration root-only because the
# kubeadm config holds the bootstrap token and the release URL its signature.
LIB_DIR = "/opt/kube-rackspace"
CONF_DIR = "/etc/kube-rackspace"
STATE_DIR = "/var/lib/kube-rackspace"

FETCH_SCRIPT = f"{LIB_DIR}/fetch-release.sh"
BOOTSTRAP_SCRIPT = f"{LIB_DIR}/bootstrap.sh"
ADDRESSES_SCRIPT = f"{LIB_DIR}/addresses.sh"
# curl --config file holding the temp URL, so it never shows in `ps`.
RELEASE_CURLRC = f"{CONF_DIR}/release.curlrc"
RELEASE_ENV = f"{CONF_DIR}/release.env"
KUBEADM_CONFIG = f"{CONF_DIR}/kubeadm.yaml"
ADDONS_DIR = f"{CONF_DIR}/addons"
FLANNEL_MANIFEST = f"{ADDONS_DIR}/kube-flannel.yaml"
KUBE_DNS_SERVICE = f"{ADDONS_DIR}/kube-dns-service.yaml"
# The CA as the laptop made it; the master installs it into PKI_DIR.
CA_SOURCE_DIR = f"{CONF_DIR}/pki"
# Addresses found at boot (written by the bootstrap unit, sourced by scripts).
ADDRESSES_ENV = f"{STATE_DIR}/addresses.env"
# Holds the sha256 of the release that is installed in BIN_DIR.
RELEASE_MARKER = f"{STATE_DIR}/release.sha256"
# Written last by the bootstrap unit: cloud-config's work is finished.
DONE_MARKER = f"{STATE_DIR}/bootstrap.done"

PKI_DIR = "/etc/kubernetes/pki"
CA_CERT = f"{PKI_DIR}/ca.crt"
CA_KEY = f"{PKI_DIR}/ca.key"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
# The kubelet default under /usr is read-only on Flatcar.
VOLUME_PLUGIN_DIR = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec/"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"

# The config drive: Flatcar mounts it read-only here on OpenStack.
CONFIG_DRIVE_LABEL = "config-2"
CONFIG_DRIVE_MOUNT = "/media/configdrive"
NETWORK_DATA = "openstack/latest/network_data.json"

UNIT_CONTAINERD = "containerd.service"
UNIT_RELEASE = "kube-release.service"
UNIT_BOOTSTRAP = "kube-bootstrap.service"
UNIT_KUBELET = "kubelet.service"

ROLES = ("master", "node")


@dataclass(frozen=True)
class Check:
    """One post-boot check: run `argv` on the server (as root: prefix sudo
    for a non-root SSH_USER); exit status 0 means passed. On failure, show
    the journal of `unit`."""

    name: str
    argv: tuple
    unit: str

    def command(self, sudo=False):
        """The shell command line to send over SSH."""
        return shlex.join(("sudo", "-n") + self.argv if sudo else self.argv)


def _active(unit):
    return Check(f"{unit} is active", ("systemctl", "is-active", "--quiet", unit), unit)


def checks(role, servicenet_ip=None):
    """The checks for a server of `role`, in the order to run them. The
    master's need its ServiceNet address, the one the API server serves on."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    found = [_active(UNIT_RELEASE), _active(UNIT_BOOTSTRAP), _active(UNIT_KUBELET)]
    if role == "master":
        if not servicenet_ip:
            raise ValueError("the master's checks need its ServiceNet address")
        found += [
            Check("API server is ready",
                  ("curl", "--silent", "--show-error", "--fail", "--max-time", "10",
                   "--cacert", CA_CERT, f"https://{servicenet_ip}:{API_PORT}/readyz"),
                  UNIT_KUBELET),
            Check("nodes are registered",
                  (f"{BIN_DIR}/kubectl", "--kubeconfig", ADMIN_CONF, "get", "nodes", "-o", "json"),
                  UNIT_BOOTSTRAP),
        ]
    return found


def template_values():
    """Everything above, by name, for the templates."""
    return {name: value for name, value in globals().items()
            if name.isupper() and isinstance(value, (str, int, tuple))}


def drain_commands(node, timeout):
    """argv of the master's commands that take `node` out of the cluster
    before its server goes: cordon, drain (evicting its pods, for at most
    `timeout` seconds), delete the Node object."""
    kubectl = (f"{BIN_DIR}/kubectl", "--kubeconfig", ADMIN_CONF)
    return [
        ("cordon", kubectl + ("cordon", node)),
        ("drain", kubectl + ("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                             f"--timeout={timeout}s")),
        ("delete", kubectl + ("delete", "node", node, "--ignore-not-found")),
    ]
