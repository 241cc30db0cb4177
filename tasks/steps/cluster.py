"""Which servers are this cluster's now, and how to reach them."""

from .. import kinds
from ..model import servers


def find_cluster(s, cloud):
    """servers.cluster_servers of what Nova lists for this cluster now, each
    with how to reach it (kinds: ports and floating IPs on OpenStack)."""
    listed = cloud.compute.list_servers(s.INSTANCE_PREFIX)
    return kinds.of(cloud).reach(s, cloud, servers.cluster_servers(s, listed))
