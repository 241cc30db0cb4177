"""What both cloud kinds share: the boot Target, Attach and Reach records,
the pod network choice, and the wait while Neutron still holds a resource."""

import time
from dataclasses import dataclass

from ..services.network import InUse
from ..support import progress

# Nova lets go of a deleted server's ports a little after the server is
# gone; until then Neutron (and Cloud Networks) answer 409 (NetworkInUse,
# IP allocated). One deadline for both kinds.
RELEASE_TIMEOUT = 300


@dataclass(frozen=True)
class Target:
    """Where servers boot, resolved once per run by steps/boot.prepare() (by the
    kind's prepare_network alone: no keypair or flavors yet)."""
    network_id: str
    key_name: str = ""
    subnet_id: str = ""
    security_group_id: str = ""
    external_network_id: str = ""
    # (role, flavor ID) the kind picked; a role not listed uses its setting.
    flavors: tuple = ()

    def flavor(self, s, role):
        """The flavor (ID or name) a server of `role` boots with."""
        from ..model.servers import FLAVOR_SETTINGS

        return dict(self.flavors).get(role) or s[FLAVOR_SETTINGS[role]]


@dataclass(frozen=True)
class Attach:
    """How one server joins the networks: Nova's `nics` and what is known
    before it boots. cluster_ip: the address cluster traffic uses (None:
    Nova tells once the server exists). public_ip: the address the tool
    and kubectl use when it is fixed before boot (a floating IP)."""
    nics: tuple
    cluster_ip: str = None
    public_ip: str = None
    port_id: str = ""


@dataclass(frozen=True)
class Reach:
    """How to reach one server. address: what SSH connects to (empty: not
    reachable yet); gateway: the jump host's address when `address` is
    private; cluster_ip: where the API server and kubelet serve."""
    address: str
    cluster_ip: str = ""
    gateway: str = ""
    public_ip: str = ""


KIND_NAMES = ("legacy", "openstack")


def pod_network(s, default, why):
    """(backend, why): POD_NETWORK_BACKEND when it is set (an explicit
    choice wins on every kind), else the kind's `default` for `why`."""
    if s.POD_NETWORK_BACKEND:
        return s.POD_NETWORK_BACKEND, f"POD_NETWORK_BACKEND={s.POD_NETWORK_BACKEND} ({s.source('POD_NETWORK_BACKEND')})"
    return default, why


def while_held(what, attempt, timeout=RELEASE_TIMEOUT, sleep=time.sleep):
    """attempt() until it returns, again while the cloud answers InUse (a
    port, subnet or network Nova has not let go of yet); the InUse of the
    last try once `timeout` runs out. `attempt` keeps what it removed in
    a list of its caller's, so a retry only does what is left."""
    deadline = time.monotonic() + timeout
    with progress.waiting(what, timeout) as wait:
        while True:
            try:
                return attempt()
            except InUse as exc:
                if time.monotonic() >= deadline:
                    raise
                wait.update(f"still in use ({exc.reason[:80]})")
                sleep(3)
