"""What booting the master and booting the nodes share. Where the servers
boot (the kind's network, the keypair and the flavors): `inv master`,
`inv nodes` and `inv up` each call prepare(), so every stage run alone finds
or makes what `inv up` would. Then the image, one server's create request,
the deletion of failed ones, and a list that rides out Nova's outages."""

import dataclasses

from .. import kinds
from ..model import servers
from ..support import lazy, progress
from ..support.errors import CloudError, ConfigError
from . import keypairs

cloudservers = lazy.module("tasks.services.compute")


def prepare(s, cloud):
    """The Target: the kind's network (prepare_network), the keypair (the
    same on both kinds; made here, not by a kind) and the flavors the kind
    picks."""
    kind = kinds.of(cloud)
    target = kind.prepare_network(s, cloud)
    return dataclasses.replace(target, key_name=keypairs.ensure(s, cloud), flavors=kind.flavor_choice(s, cloud))


def image_id(s, cloud, nova):
    """KUBE_IMAGE's ID; when its default finds no Flatcar image, one line
    that says what to do on this cloud kind (the kind's NO_IMAGE_TODO)."""
    try:
        return nova.image_id(s.KUBE_IMAGE)
    except cloudservers.ImageNotFound as exc:
        raise ConfigError(f"{exc.reason}; {kinds.of(cloud).NO_IMAGE_TODO}") from None


def create_request(s, nova, target, want, user_data, attach):
    """The full create request of one wanted server (pure but for the
    image/flavor look-ups, which the CloudServers object caches); its NICs
    are the cloud kind's (kinds.Attach)."""
    from ..services.compute import CreateRequest

    return CreateRequest(
        name=want.name, image_id=nova.image_id(s.KUBE_IMAGE),
        flavor_id=nova.flavor_id(want.role, target.flavor(s, want.role)), key_name=target.key_name,
        nics=attach.nics, metadata=servers.metadata(s, want), user_data=user_data)


def delete_failed(nova, plan):
    """ERROR servers (and duplicates) go before their replacements are made."""
    for srv in plan.delete:
        why = f"in {srv.status}" + (f" ({srv.fault})" if srv.fault else "") if srv.status in servers.FAILED \
            else "a duplicate"
        progress.info(f"deleting {srv.name} ({srv.id}): {why}")
        nova.delete_server(srv)
    return {srv.id for srv in plan.delete}


def check_plan(plan):
    if plan.conflicts:
        raise CloudError(servers.conflict_message(plan.conflicts))


def list_servers_through_outages(nova, s, wait):
    """One list request; when Nova keeps failing after its retries, show it
    in the wait and return None, so the wait polls on until its timeout."""
    from ..services.compute import Unavailable

    try:
        return nova.list_servers(s.INSTANCE_PREFIX)
    except Unavailable as exc:
        wait.update(f"Cloud Servers failing: {exc.reason}")
        return None
