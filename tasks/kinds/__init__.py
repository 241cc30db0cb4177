"""The one place that knows there are two kinds of cloud.

Each kind is a module with the same names (kind_legacy, kind_openstack):

  NAME                           'legacy' or 'openstack'
  IMAGE_UPLOAD_REFUSED           why `inv image` cannot upload here (one line), or None
  NO_IMAGE_TODO                  what to do when KUBE_IMAGE's default finds no Flatcar image
  prepare_network(s, cloud) -> Target
                                 the cluster's network (all of it: `inv network`
                                 makes what `inv up` makes), before any server;
                                 the keypair and flavors are added by prepare()
  attach(s, cloud, target, want) -> Attach
                                 the NICs a server boots with, and the addresses
                                 known before it boots (ports, floating IP)
  flavor_choice(s, cloud) -> ((role, flavor ID), ...)
                                 flavors the kind picks (by size) instead of the settings
  reach(s, cloud, found) -> [Server with .reach]
                                 where cluster traffic runs and how the tool gets in
  exposure(s) -> [str]           what is open to the world, for `inv plan`
  network_rows(s, cloud) -> [(kind, name, state)]
                                 the network resources, for `inv plan` and `inv status`
  remove_network(s, cloud, server_ids, server_exists) -> [str]
                                 `inv down`'s part: every network resource, in order
  release_endpoint(s, cloud, storage_url) -> str
                                 the object store URL the servers download from
  pod_network(s) -> (backend, why)
                                 flannel's backend (POD_NETWORK_BACKEND, else the
                                 kind's default) and why, for `inv plan`
  template_facts(s, role, attach) -> dict
                                 what the cloud-config templates need to know about
                                 the networks (the `net` namespace in templates)

Stages call `kinds.of(cloud)` and these; they never test the kind, and
nothing picks a kind by default: it is the cloud's (credentials.kind_of).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """Where servers boot, resolved once per run by prepare() (by the
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


def named(name):
    """The kind module called `name`; any other name is a bug, never the
    legacy cloud by default."""
    if name == "openstack":
        from . import openstack as kind_openstack

        return kind_openstack
    if name == "legacy":
        from . import legacy as kind_legacy

        return kind_legacy
    raise ValueError(f"cloud kind must be one of {KIND_NAMES}, got {name!r}")


def of(cloud):
    """The kind module of a Cloud (cloud.kind, from the identity API or
    CLOUD_KIND)."""
    return named(cloud.kind)


def prepare(s, cloud):
    """Where the cluster's servers boot (Target): the kind's network, the
    keypair (the same on both kinds) and the flavors the kind picks.
    `inv master`, `inv nodes` and `inv up` each call it, so every stage
    run alone finds or makes what `inv up` would."""
    import dataclasses

    from ..steps import keypairs

    kind = of(cloud)
    target = kind.prepare_network(s, cloud)
    return dataclasses.replace(target, key_name=keypairs.ensure(s, cloud), flavors=kind.flavor_choice(s, cloud))
