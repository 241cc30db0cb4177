"""The image service (Glance v2): the only module that calls it.

Plain JSON over the shared keystoneauth session (tasks/services/session.py: its
RetryingSession and API_TIMEOUT), endpoint `image` from the catalog or
IMAGE_ENDPOINT. That session retries reads and deletes on transient
failures, creates only when the answer says nothing was made (a 5xx may hide
an image that was: `inv image` finds it by name and tag on the next run);
the data upload is sent once, its body is a one-pass stream (image.py
retries it from the download cache).
"""

import re
import time
from urllib.parse import urlencode, urlsplit

from . import calls
from ..support import lazy
from ..support.errors import CloudError
from ..model.flatcar import Image

ks_adapter = lazy.module("keystoneauth1.adapter")
ks_exc = lazy.module("keystoneauth1.exceptions")



def api_root(endpoint):
    """The catalog's image endpoint without a version suffix: catalogs list
    Glance both as https://host:9292 and as https://host/v2."""
    url = endpoint.rstrip("/")
    parts = url.rsplit("/", 1)
    if len(parts) == 2 and parts[1].startswith("v2"):
        url = parts[0]
    return url


def web_download_offered(info):
    """True when GET /v2/info/import lists web-download."""
    methods = ((info or {}).get("import-methods") or {}).get("value") or []
    return "web-download" in methods


class Glance:
    def __init__(self, cloud):
        self.cloud = cloud
        self.root = api_root(cloud.endpoint("image"))
        self.api = ks_adapter.Adapter(cloud.session, endpoint_override=self.root)
        # The upload connects within API_TIMEOUT, then has no read timeout:
        # Glance answers only after it has stored the last byte.
        self.upload_timeout = (cloud.settings.API_TIMEOUT, None)

    @property
    def project(self):
        """Our project's id: images of other projects are never ours."""
        return self.cloud.tenant_id

    def _call(self, what, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ks_exc.HttpError as exc:
            # Glance answers errors as small HTML pages: say their text.
            text = getattr(getattr(exc, "response", None), "text", "") or ""
            if text.lstrip().startswith("<"):
                words = " ".join(re.sub(r"<[^>]+>", " ", text).split())
                raise CloudError(f"{what}: {words[:300]} (HTTP {exc.http_status})") from None
            calls.fail(exc, what)
        except (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure) as exc:
            raise CloudError(f"{what}: cannot reach the image service at {self.root} ({type(exc).__name__}); "
                             "re-run `inv image`") from None

    # -- reading -----------------------------------------------------------
    def _list(self, what, query):
        images = []
        url = "/v2/images?" + urlencode(dict(query, limit=200))
        while url:
            body = self._call(what, self.api.get, url).json()
            images.extend(Image.from_api(d) for d in body.get("images") or [])
            nxt = body.get("next")
            # `next` is a path with query (/v2/images?marker=...), relative to the root.
            url = urlsplit(nxt)._replace(scheme="", netloc="").geturl() if nxt else None
        return images

    def images_named(self, name):
        return self._list(f"listing images named {name!r}", {"name": name})

    def tagged(self, tag):
        return self._list(f"listing images tagged {tag}", {"tag": tag})

    def get(self, image_id):
        """The image, or None when it is gone."""
        try:
            return Image.from_api(self.api.get(f"/v2/images/{image_id}").json())
        except ks_exc.NotFound:
            return None
        except ks_exc.HttpError as exc:
            calls.fail(exc, f"reading image {image_id}")
        except (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure) as exc:
            raise CloudError(f"reading image {image_id}: cannot reach the image service ({type(exc).__name__})") from None

    def import_info(self):
        """GET /v2/info/import, or {} where the cloud has no import API."""
        try:
            return self.api.get("/v2/info/import").json()
        except ks_exc.NotFound:
            return {}
        except ks_exc.HttpError as exc:
            calls.fail(exc, "reading the image service's import methods")

    # -- writing -----------------------------------------------------------
    def create(self, name, tags, props, disk_format="qcow2", container_format="bare"):
        body = dict(props, name=name, disk_format=disk_format, container_format=container_format,
                    tags=list(tags), visibility="private")
        data = self._call(f"creating image {name!r}", self.api.post, "/v2/images", json=body).json()
        return Image.from_api(data)

    def upload(self, image_id, chunks):
        """PUT the image's data from an iterator of bytes (chunked transfer
        encoding). Glance answers when the data is stored."""
        headers = {"Content-Type": "application/octet-stream"}
        self._call(f"uploading the data of image {image_id}", self.api.put,
                   f"/v2/images/{image_id}/file", data=chunks, headers=headers, timeout=self.upload_timeout,
                   once=True)

    def set_minimums(self, image_id, min_disk, min_ram):
        """Set the image's min_disk (GB) and min_ram (MiB): Nova refuses a
        flavor below either (FlavorDiskSmallerThanMinDisk, FlavorMemoryTooSmall)."""
        import json

        ops = [{"op": "replace", "path": "/min_disk", "value": int(min_disk)},
               {"op": "replace", "path": "/min_ram", "value": int(min_ram)}]
        headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        data = self._call(f"setting min_disk and min_ram of image {image_id}", self.api.patch,
                          f"/v2/images/{image_id}", data=json.dumps(ops), headers=headers).json()
        return Image.from_api(data)

    def web_download(self, image_id, uri):
        body = {"method": {"name": "web-download", "uri": uri}}
        self._call(f"asking image {image_id} to import {uri}", self.api.post,
                   f"/v2/images/{image_id}/import", json=body)

    def delete(self, image_id):
        """True when deleted, False when it was gone already."""
        try:
            self.api.delete(f"/v2/images/{image_id}")
            return True
        except ks_exc.NotFound:
            return False
        except ks_exc.HttpError as exc:
            calls.fail(exc, f"deleting image {image_id}")
        except (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure) as exc:
            raise CloudError(f"deleting image {image_id}: cannot reach the image service ({type(exc).__name__}); "
                             "re-run") from None

    def wait_import(self, image_id, wait, interval=2.0):
        """Poll until the image is active; CloudError when the import failed
        (Glance sets it back to queued, or to killed) or `wait` expired."""
        while True:
            img = self.get(image_id)
            if img is None:
                raise CloudError(f"image {image_id} disappeared while importing")
            if img.status == "active":
                return img
            if img.status in ("killed", "deleted") or (img.status == "queued" and wait.elapsed > 10):
                raise CloudError(f"the image service could not import image {image_id} (status {img.status}); "
                                 "try again without --via-url")
            wait.update(img.status)
            if wait.expired:
                raise CloudError(f"IMAGE_IMPORT_TIMEOUT ({wait.timeout:.0f}s) ran out while image {image_id} "
                                 f"was {img.status}; re-run `inv image` or raise IMAGE_IMPORT_TIMEOUT")
            time.sleep(interval)
