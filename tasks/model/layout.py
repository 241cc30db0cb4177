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
SANDBOX_SCRIPT = f"{LIB_DIR}/containerd-sandbox.sh"
BOOTSTRAP_SCRIPT = f"{LIB_DIR}/bootstrap.sh"
ADDRESSES_SCRIPT = f"{LIB_DIR}/addresses.sh"
FIREWALL_SCRIPT = f"{LIB_DIR}/firewall.sh"
# The host firewall's nftables rules (loaded by FIREWALL_SCRIPT).
FIREWALL_RULES = f"{CONF_DIR}/firewall.nft"
# nftables table of the host firewall.
FIREWALL_TABLE = "kube_rackspace"
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
# Ours, around `kubeadm init`: STARTED before each attempt, DONE only after
# one succeeded. kubeadm's own files cannot tell: it writes admin.conf long
# before the bootstrap token, the join RBAC and the add-ons.
INIT_STARTED_MARKER = f"{STATE_DIR}/kubeadm-init.started"
INIT_DONE_MARKER = f"{STATE_DIR}/kubeadm-init.done"

KUBERNETES_DIR = "/etc/kubernetes"
PKI_DIR = f"{KUBERNETES_DIR}/pki"
# containerd: Flatcar's config (read-only), our copy of it with the sandbox
# image kubeadm expects, and the drop-in that points containerd at the copy
# (Flatcar's containerd.service reads $CONTAINERD_CONFIG).
FLATCAR_CONTAINERD_CONFIG = "/usr/share/containerd/config.toml"
CONTAINERD_CONFIG = f"{CONF_DIR}/containerd.toml"
CONTAINERD_DROPIN = "/etc/systemd/system/containerd.service.d/10-kube-rackspace.conf"
CA_CERT = f"{PKI_DIR}/ca.crt"
CA_KEY = f"{PKI_DIR}/ca.key"
ADMIN_CONF = f"{KUBERNETES_DIR}/admin.conf"
KUBELET_CONF = f"{KUBERNETES_DIR}/kubelet.conf"
# The kubelet default under /usr is read-only on Flatcar.
VOLUME_PLUGIN_DIR = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec/"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"

# The config drive: Flatcar mounts it read-only here on OpenStack.
CONFIG_DRIVE_LABEL = "config-2"
CONFIG_DRIVE_DEVICE = f"/dev/disk/by-label/{CONFIG_DRIVE_LABEL}"
CONFIG_DRIVE_MOUNT = "/media/configdrive"
NETWORK_DATA = "openstack/latest/network_data.json"
# Interfaces are found here by MAC address, never by name: Flatcar's systemd
# names them predictably (enX0 on Xen, ens3 on virtio...), not eth0.
SYS_CLASS_NET = "/sys/class/net"
# Scratch space of the scripts (tmpfs): the filled-in kubeadm config, and
# where the config drive is mounted when Flatcar has not.
RUN_DIR = "/run/kube-rackspace"

UNIT_CONTAINERD = "containerd.service"
UNIT_RELEASE = "kube-release.service"
UNIT_BOOTSTRAP = "kube-bootstrap.service"
UNIT_KUBELET = "kubelet.service"
UNIT_FIREWALL = "kube-firewall.service"

# Flannel's CNI bridge on every server (the pods of this host); named in the
# flannel CNI config and trusted by the host firewall.
POD_BRIDGE = "cni0"
# flannel's vxlan device: flannel.<VNI>, VNI 1 unless net-conf.json sets one
# (flannel-io/flannel v0.26.7 pkg/backend/vxlan/vxlan.go: defaultVNI = 1,
# name fmt.Sprintf("flannel.%d", cfg.VNI)).
FLANNEL_VXLAN_DEVICE = "flannel.1"
SSH_PORT = 22
# The Kubernetes default NodePort range (kube-apiserver --service-node-port-range).
NODEPORTS = (30000, 32767)

# Starts the units below without waiting for them (systemctl start --no-block).
UNIT_START = "kube-start.service"
# Flatcar's reboot manager: it reboots after an update unless told not to.
UNIT_LOCKSMITHD = "locksmithd.service"

# Units whose start job can last minutes: the release download retries until
# it succeeds, the bootstrap runs kubeadm, and the kubelet is ordered after the
# release. coreos-cloudinit waits for the job of every `command: start` it
# issues. On Flatcar's OpenStack image it runs as oem-cloudinit.service
# (--oem=ec2-compat, no start timeout; flatcar/init): multi-user.target would
# wait for the cluster. On other images (legacy Rackspace) it runs as
# user-configdrive.service, killed after 10 minutes (TimeoutSec=10min in
# coreos-cloudinit's units/). So these are only enabled and started by
# UNIT_START with --no-block, never by `command: start` (README, "What a real
# boot taught us").
LONG_UNITS = (UNIT_RELEASE, UNIT_BOOTSTRAP, UNIT_KUBELET)

ROLES = ("master", "node")


@dataclass(frozen=True)
class Check:
    """One post-boot check: run `argv` on the server (as root: prefix sudo
    for a non-root SSH_USER); exit status 0 means passed, and when `expect`
    names one of remote's output readers (EXPECT), its output must satisfy
    it too. On failure, show the output of `diagnose` when set, else the
    journal of `unit`; `hint`, with {server} filled in, is printed as a line
    of its own: what the failure most likely means and where to read on."""

    name: str
    argv: tuple
    unit: str
    expect: str = ""
    diagnose: tuple = ()
    hint: str = ""

    def command(self, sudo=False):
        """The shell command line to send over SSH."""
        return _sudo(self.argv, sudo)

    def diagnose_command(self, sudo=False):
        return _sudo(self.diagnose, sudo) if self.diagnose else ""


def _sudo(argv, sudo):
    return shlex.join(("sudo", "-n") + argv if sudo else argv)


# What remote reads in a check's output, by Check.expect: every expected
# node is Ready; flannel's pod runs and is Ready on every expected node;
# every CoreDNS pod is Ready; dig printed an address.
EXPECT = ("nodes", "flannel", "coredns", "dns")

# Where the pods are found: flannel's DaemonSet (cloud-config/addons/
# kube-flannel.yaml.j2) and kubeadm's CoreDNS Deployment, whose pods carry
# k8s-app=kube-dns like the kube-dns Service that selects them.
FLANNEL_NAMESPACE = "kube-flannel"
FLANNEL_SELECTOR = "app=flannel"
COREDNS_NAMESPACE = "kube-system"
COREDNS_SELECTOR = "k8s-app=kube-dns"
# The name every cluster DNS must answer: the API server's Service, which
# exists from `kubeadm init` on. (kubernetes.default.svc.DNS_DOMAIN)
DNS_PROBE_NAME = "kubernetes.default.svc"
# dig is part of Flatcar's base image: coreos-base/coreos's RDEPEND lists
# net-dns/bind (BIND 9.18, which installs dig, host and nslookup; named's
# users are package.provided, not installed): flatcar/scripts
# sdk_container/src/third_party/coreos-overlay/coreos-base/coreos/coreos-0.0.1.ebuild
# and profiles/coreos/targets/generic/package.provided at tag stable-4593.2.5
# (9fd32ab8279a7feaa82113d7408e50ba6232dc94). Called by name: /usr/bin is on
# the PATH of an SSH command. Two tries of 2 s: a lost UDP packet is retried,
# and the check itself is retried until BOOT_TIMEOUT.
DIG = ("dig", "+short", "+time=2", "+tries=2")
POD_NETWORK_HINT = ("pods on {server} cannot reach pods on other nodes: POD_NETWORK_BACKEND={backend}; "
                    "see README")


@dataclass(frozen=True)
class ClusterDNS:
    """What the DNS check asks: `server` (DNS_SERVER_IP) for the API
    server's name in `domain` (DNS_DOMAIN); `backend` is flannel's, named in
    the hint when the query is not answered."""

    server: str
    domain: str
    backend: str

    def name(self):
        return f"{DNS_PROBE_NAME}.{self.domain}."


def _active(unit):
    return Check(f"{unit} is active", ("systemctl", "is-active", "--quiet", unit), unit)


def _kubectl(*args):
    return (f"{BIN_DIR}/kubectl", "--kubeconfig", ADMIN_CONF) + args


def _pods(namespace, selector, output):
    return _kubectl("get", "pods", "--namespace", namespace, "--selector", selector, "-o", output)


def dns_check(dns):
    """From this server, the Service IP of the cluster DNS answers: the
    query goes through kube-proxy's rules to a CoreDNS pod, on this server
    or, over the pod network, on another."""
    return Check("cluster DNS answers", DIG + (f"@{dns.server}", dns.name(), "A"), UNIT_KUBELET,
                 expect="dns", diagnose=("ip", "route", "show"),
                 hint=POD_NETWORK_HINT.replace("{backend}", dns.backend))


def checks(role, cluster_ip=None, dns=None):
    """The checks for a server of `role`, in the order to run them. The
    master's need its Cloud Network address, the one the API server
    advertises (and its certificate names). `dns`: a ClusterDNS when
    ENABLE_CLUSTER_DNS is on (CoreDNS and the query through the pod
    network are checked), else None."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    found = [_active(UNIT_RELEASE), _active(UNIT_BOOTSTRAP), _active(UNIT_KUBELET)]
    if role == "master":
        if not cluster_ip:
            raise ValueError("the master's checks need its Cloud Network address")
        found += [
            Check("API server is ready",
                  ("curl", "--silent", "--show-error", "--fail", "--max-time", "10",
                   "--cacert", CA_CERT, f"https://{cluster_ip}:{API_PORT}/readyz"),
                  UNIT_KUBELET),
            Check("nodes are registered", _kubectl("get", "nodes", "-o", "json"), UNIT_BOOTSTRAP,
                  expect="nodes"),
            Check("flannel runs on every node", _pods(FLANNEL_NAMESPACE, FLANNEL_SELECTOR, "json"),
                  UNIT_BOOTSTRAP, expect="flannel",
                  diagnose=_pods(FLANNEL_NAMESPACE, FLANNEL_SELECTOR, "wide")),
        ]
        if dns is not None:
            found.append(Check("CoreDNS is ready", _pods(COREDNS_NAMESPACE, COREDNS_SELECTOR, "json"),
                               UNIT_BOOTSTRAP, expect="coredns",
                               diagnose=_pods(COREDNS_NAMESPACE, COREDNS_SELECTOR, "wide")))
    if dns is not None:
        found.append(dns_check(dns))
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
