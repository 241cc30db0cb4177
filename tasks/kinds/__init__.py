"""The one place that knows there are two kinds of cloud.

Each kind is a module with the same names (kinds/legacy.py, kinds/openstack.py;
what they share is kinds/base.py):

  NAME                           'legacy' or 'openstack'
  IMAGE_UPLOAD_REFUSED           why `inv image` cannot upload here (one line), or None
  NO_IMAGE_TODO                  what to do when KUBE_IMAGE's default finds no Flatcar image
  prepare_network(s, cloud) -> Target
                                 the cluster's network (all of it: `inv network`
                                 makes what `inv up` makes), before any server;
                                 the keypair and flavors are added by steps/boot.prepare()
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

from .base import KIND_NAMES, Attach, Reach, Target, pod_network  # noqa: F401  (stages use kinds.Target...)


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
