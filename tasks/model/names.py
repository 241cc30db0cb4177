"""Every name and tag the cluster owns, derived from the settings.

All derive from INSTANCE_PREFIX, so two clusters with different prefixes can
share one account and never touch each other's resources.
"""

from pathlib import Path

RELEASE_TARBALL = "kubernetes-server-linux-amd64.tar.gz"

# The legacy cloud's two networks every server gets, by their fixed IDs.
PUBLICNET = "00000000-0000-0000-0000-000000000000"
SERVICENET = "11111111-1111-1111-1111-111111111111"

# Server metadata keys. `up`, `status` and `down` select servers by name AND
# by these, so a server someone else named alike is never touched.
META_CLUSTER = "kube-rackspace-cluster"
META_ROLE = "kube-rackspace-role"
META_INDEX = "kube-rackspace-index"


def master_name(s):
    return f"{s.INSTANCE_PREFIX}-master"


def node_name(s, index):
    return f"{s.INSTANCE_PREFIX}-node-{index}"


def node_names(s):
    return [node_name(s, i) for i in range(1, s.NUM_NODES + 1)]


def server_metadata(s, role, index=0):
    return {META_CLUSTER: s.INSTANCE_PREFIX, META_ROLE: role, META_INDEX: str(index)}


def is_cluster_server(s, server_name, metadata):
    """True for a server this cluster created: its name has our prefix and its
    metadata names our cluster."""
    return (metadata or {}).get(META_CLUSTER) == s.INSTANCE_PREFIX and server_name.startswith(f"{s.INSTANCE_PREFIX}-")


def network_label(s):
    return s.NOVA_NETWORK_LABEL or f"{s.INSTANCE_PREFIX}-pool-net"


def subnet_name(s):
    return f"{network_label(s)}-subnet"


def router_name(s):
    return f"{s.INSTANCE_PREFIX}-router"


def security_group_name(s):
    return f"{s.INSTANCE_PREFIX}-cluster"


def port_name(server_name):
    return f"{server_name}-port"


def neutron_tag(s):
    """The Neutron tag on everything this cluster creates on OpenStack;
    `down` removes only what carries it AND our name."""
    return f"{META_CLUSTER}={s.INSTANCE_PREFIX}"


def keypair_name(s):
    return f"{s.INSTANCE_PREFIX}-{s.SSH_KEY_NAME}"


def private_key_path(s):
    return Path.home() / ".ssh" / s.SSH_KEY_NAME


def public_key_path(s):
    return Path.home() / ".ssh" / f"{s.SSH_KEY_NAME}.pub"


def container(s):
    # An application credential (or clouds.yaml) leaves OS_USERNAME empty;
    # the container is the project's then, and INSTANCE_PREFIX keeps apart
    # the objects of its clusters.
    if s.CLOUDFILES_CONTAINER:
        return s.CLOUDFILES_CONTAINER
    return f"kubernetes-releases-{s.OS_USERNAME}" if s.OS_USERNAME else "kubernetes-releases"


def object_prefix(s):
    return s.CONTAINER_PREFIX or s.INSTANCE_PREFIX


def release_object(s):
    return f"{object_prefix(s)}/{RELEASE_TARBALL}"


def state_dir(s):
    """Per-cluster state: CA, tokens, kubeconfig, known_hosts (mode 0700)."""
    return Path(s.KUBE_STATE_DIR) / s.INSTANCE_PREFIX


def kube_context(s):
    return f"rackspace_{s.INSTANCE_PREFIX}"
