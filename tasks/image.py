"""inv image: bring a verified Flatcar OpenStack image into the image
service (steps/image.py)."""

from invoke import task

from .support import lazy
from .support.errors import UserError

# Loaded when a task runs, not by `inv --list` (see tasks/support/lazy.py).
_cloud = lazy.module("tasks.services.session")
credentials = lazy.module("tasks.services.credentials")
flatcar = lazy.module("tasks.model.flatcar")
images = lazy.module("tasks.steps.image")
kinds = lazy.module("tasks.kinds")
settings = lazy.module("tasks.model.settings")


@task(help={"channel": "Flatcar channel: stable (default: FLATCAR_CHANNEL), beta, alpha, lts",
            "version": "a Flatcar version like 4230.2.1 (default: the channel's current one)",
            "list": "list the Flatcar images this tool uploaded, and which one `inv up` uses",
            "remove": "delete the image of this version that this tool uploaded",
            "via_url": "let the cloud download the image itself (web-download import), sparing your upload"})
def image(c, channel=None, version=None, list_=False, remove=None, via_url=False):
    """Import a verified Flatcar OpenStack image into this region's image service."""
    s = settings.load(flags={"FLATCAR_CHANNEL": channel})
    refused = kinds.named(credentials.load(s).kind).IMAGE_UPLOAD_REFUSED
    if refused:
        raise UserError(refused)
    cloud = _cloud.Cloud(s)
    glance = cloud.images
    if list_:
        for line in images.listing(s, cloud, glance):
            print(line)
        return
    if remove:
        removed = images.remove_version(glance, flatcar.check_version(remove, "--remove"))
        print(f"removed {', '.join(removed)}")
        return
    result = images.ensure(s, glance, version=version, via_url=via_url)
    print(f"{result.name}  {result.id}")
