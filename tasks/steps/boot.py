"""Where the servers boot: the kind's network, the keypair and the flavors.
`inv master`, `inv nodes` and `inv up` each call prepare(), so every stage
run alone finds or makes what `inv up` would."""

import dataclasses

from .. import kinds
from ..support import lazy
from ..support.errors import ConfigError
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
