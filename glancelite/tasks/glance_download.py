"""glance-download: import an image from another Glance (another region, or this one).

The caller's service catalog names the remote image service: the ``image``
endpoint of the requested region and interface. Its image must be active;
its disk_format, container_format and the properties whose names start with
one of ``[glance_download_properties] extra_properties`` are copied onto the
local image (restored if the import fails), then its data is downloaded with
the caller's credentials into staging exactly as web-download does (import
filtering, size cap, a work file linked into staging when complete) and must
be as long as the remote image says. Glance's _ImportMetadata and
_internal_plugins/glance_download.py do the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os

from taskflow import task as tf_task

from glancelite import errors, model, uri_filter
from glancelite.tasks import methods
from glancelite.tasks.plan import ImportPlan, RemoteImage
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)
S = model.ImageStatus
METADATA_LIMIT = 1 << 20  # an image's JSON is a few KiB; refuse to buffer more
# Image attributes (not properties) in a Glance image document: never copied as properties.
_ATTRIBUTES = frozenset(f.name for f in dataclasses.fields(model.Image)) | {
    "self",
    "file",
    "schema",
    "stores",
    "locations",
    "direct_url",
}


class RemoteGlanceError(errors.Invalid):
    """The remote image service cannot be found or does not give what glance-download needs."""


def find_endpoint(catalog, region: str, interface: str) -> str:
    """The URL of the ``image`` service in ``region`` for ``interface`` (public, internal, admin).

    Reads the v2 shape keystonemiddleware puts in X-Service-Catalog
    (``{"region": R, "publicURL": u}``) and the v3 shape of a token's catalog
    (``{"region_id": R, "interface": "public", "url": u}``). Regions compare
    without case, as Glance does.
    """
    wanted = region.lower()
    for service in catalog or ():
        if not isinstance(service, dict) or service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints") or ():
            if not isinstance(endpoint, dict):
                continue
            regions = {str(endpoint.get(k)).lower() for k in ("region", "region_id") if endpoint.get(k) is not None}
            if wanted not in regions:
                continue
            url = endpoint.get(f"{interface}URL")
            if url is None and str(endpoint.get("interface", "")).lower() == interface.lower():
                url = endpoint.get("url")
            if isinstance(url, str) and url:
                return url.rstrip("/")
    raise RemoteGlanceError(f"{interface} glance endpoint not found for region {region}")


def _headers(remote: RemoteImage) -> dict[str, str]:
    return dict(remote.credentials)


def image_url(env: ImportEnv, remote: RemoteImage) -> str:
    return f"{find_endpoint(remote.service_catalog, remote.region, remote.interface)}/v2/images/{remote.image_id}"


def fetch_metadata(env: ImportEnv, remote: RemoteImage) -> dict:
    """GET the remote image (import filtering applies to the remote endpoint too)."""
    url = image_url(env, remote)
    try:
        resp = uri_filter.open_checked(url, env.settings.import_filter, headers=_headers(remote))
    except errors.Invalid as exc:
        raise RemoteGlanceError(f"Cannot read image {remote.image_id} from {url}: {exc.message}") from exc
    try:
        body = resp.read(METADATA_LIMIT + 1)
    finally:
        resp.close()
    try:
        data = json.loads(body) if len(body) <= METADATA_LIMIT else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RemoteGlanceError(f"{url} did not answer with an image document")
    return data


def properties_to_copy(data: dict, prefixes) -> dict[str, str]:
    """The remote's properties named by a prefix; never os_glance* bookkeeping nor image attributes."""
    return {
        key: value
        for key, value in data.items()
        if isinstance(value, str)
        and key not in _ATTRIBUTES
        and not key.startswith("os_glance")
        and any(key.startswith(prefix) for prefix in prefixes)
    }


class ImportMetadata(tf_task.Task):
    """Read the remote image, require it active, copy its formats and selected properties.

    Provides the remote size. Revert: formats and the touched properties
    are put back as they were (LockImage's revert then sets ``queued``).
    """

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"remote-metadata-{plan.image_id}", provides="remote_size")
        self.env, self.plan = env, plan
        self._saved: tuple[dict, dict, list[str]] | None = None

    def execute(self):
        remote = self.plan.remote
        data = fetch_metadata(self.env, remote)
        if data.get("status") != S.ACTIVE:
            raise RemoteGlanceError(f"Source image status should be active instead of {data.get('status')}")
        size = data.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RemoteGlanceError(f"Size attribute of remote image {remote.image_id} could not be determined.")
        if size > self.env.settings.image_size_cap:
            raise errors.TooLarge(
                f"Remote image {remote.image_id} is {size} bytes; the image size cap is "
                f"{self.env.settings.image_size_cap} bytes."
            )
        props = properties_to_copy(data, self.env.settings.glance_download_properties)
        image = self.env.images.get_image(self.plan.image_id)
        old_values = {"disk_format": image.disk_format, "container_format": image.container_format}
        old_props = {k: image.properties[k] for k in props if k in image.properties}
        added = [k for k in props if k not in image.properties]
        self._saved = (old_values, old_props, added)
        self.env.images.update_image(
            image.id,
            expected_status=S.IMPORTING,
            values={"disk_format": data.get("disk_format"), "container_format": data.get("container_format")},
            properties_set=props,
        )
        LOG.info("image %s: glance-download of image %s (%d bytes)", image.id, remote.image_id, size)
        return size

    def revert(self, *args, **kwargs):
        if self._saved is None:
            return
        old_values, old_props, added = self._saved
        with contextlib.suppress(errors.NotFound):
            self.env.images.update_image(
                self.plan.image_id,
                values=old_values,
                properties_set=old_props,
                properties_removed=added,
            )
        self._saved = None


class DownloadRemote(methods.AcquireData):
    """Download the remote image's data into staging with the caller's credentials; its size must match.

    Provides the staged size. Revert (AcquireData's): staged file and work file removed.
    """

    def execute(self, remote_size):
        resumed = self.staged_by_an_earlier_run()
        if resumed is not None:
            return resumed
        remote = self.plan.remote
        url = f"{image_url(self.env, remote)}/file"
        work_file = self.env.work.download_path(self.plan.task_id)
        written = methods.download(self.env, self.plan, url, work_file, headers=_headers(remote))
        if written != remote_size:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(work_file)
            raise RemoteGlanceError(
                f"Task {self.plan.task_id} failed because downloaded data size {written} is different "
                f"from expected {remote_size}"
            )
        return self.env.staging.adopt(self.plan.image_id, work_file)
