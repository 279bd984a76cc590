"""Image data use cases: upload (PUT /file), download (GET /file), delete from one store.

Every byte goes in through the one ingest path (tasks/ingest.py: hashing reader,
limits, capability check, record, clean-up). An upload that fails for any reason,
the client going away included, leaves the image ``queued`` and no data in
any store.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

from glancelite import errors, model, processes
from glancelite.context import RequestContext
from glancelite.db.repositories import ImageRepository, LocationRepository, MemberRepository
from glancelite.services.cache import tee_into_cache
from glancelite.services.cache_files import ImageCache
from glancelite.services.image_access import ImageAccess
from glancelite.services.notifier import Notifier
from glancelite.services.policy import Policy
from glancelite.services.quotas import Quotas
from glancelite.settings import Settings
from glancelite.store import base
from glancelite.store.stores import StoreSet
from glancelite.tasks.events import failure_reason
from glancelite.tasks.ingest import Ingest

LOG = logging.getLogger(__name__)

S = model.ImageStatus
# Hidden image property: the process an upload runs in, while the image is saving.
UPLOAD_OWNER = "os_glance_upload_owner"
# Seconds between tries to return a failed upload's image to queued while the database is away.
RESET_RETRY_FIRST, RESET_RETRY_MAX = 1.0, 10.0


@dataclasses.dataclass(frozen=True)
class ByteRange:
    """A resolved range: ``offset`` and ``length`` within an image of ``total`` bytes."""

    offset: int
    length: int
    total: int


@dataclasses.dataclass
class Download:
    image: model.Image
    stream: base.DataStream
    byte_range: ByteRange | None  # None: the whole image


class ImageDataService:
    def __init__(
        self,
        settings: Settings,
        *,
        images: ImageRepository,
        locations: LocationRepository,
        members: MemberRepository,
        access: ImageAccess,
        policy: Policy,
        stores: StoreSet,
        quotas: Quotas,
        cache: ImageCache | None,
        notifier: Notifier,
        ingest: Ingest,
    ):
        self.settings = settings
        self.ingest = ingest  # the one path into a store: hash, limits, write, record, clean up
        self.images = images
        self.locations = locations
        self.members = members  # who may read the data in stores keeping ACLs
        self.access = access  # who may see and act on which image, decided once
        self.policy = policy
        self.stores = stores
        self.quotas = quotas  # keystone unified limits
        # The image cache when downloads are served from it (CacheService.download_cache), else None.
        self.cache = cache
        self.notifier = notifier  # image.prepare, image.upload, image.activate, image.send
        self._pending_resets: set[str] = set()  # images of failed uploads waiting for the database
        self._pending_lock = threading.Lock()

    # -- upload ----------------------------------------------------------------------

    def upload(
        self,
        context: RequestContext,
        image_id: str,
        body: base.Readable,
        *,
        size: int | None,
        store_id: str | None = None,
    ) -> model.Image:
        """Stream ``body`` into a store and make the image active; ``size`` None means unknown."""
        self.quotas.check_size_total(context)
        # COMPAT: Glance resolves the store before looking at the image; single-store ignores the header.
        target = self.stores.validate_target(store_id if self.settings.multi_store else None)
        image = self.access.visible_image(context, image_id)
        self.policy.enforce(context, "upload_image", self.access.target(context, image))
        if image.status != S.QUEUED:
            raise errors.Conflict(f"Image status transition from {image.status} to saving is not allowed")
        if not image.disk_format or not image.container_format:
            raise errors.Invalid("Properties disk_format, container_format must be set prior to saving data.")
        self.quotas.check_uploading(context)
        # The uploading process is recorded so a worker that starts after it was killed can
        # return the image to queued (recover_dead_uploads); hidden from the API.
        saving = self.images.update_image(
            image_id,
            expected_status=S.QUEUED,
            values={"status": S.SAVING},
            properties_set={UPLOAD_OWNER: json.dumps(processes.current_owner())},
        )
        # Glance's order: the saving status is saved (image.update), then set_data reports
        # image.prepare, and image.upload and image.activate once the data is in.
        self.notifier.image("image.update", saving)
        self.notifier.image("image.prepare", saving, backend=target if self.settings.multi_store else None)

        try:
            uploaded = self.ingest.write(
                target,
                image_id,
                body,
                size=size,
                owner=image.owner,
                formats=(image.disk_format, image.container_format),
                context=context,
                record=lambda ingested: self.ingest.record_data(
                    image_id, ingested, expected_status=S.SAVING, properties_removed=(UPLOAD_OWNER,)
                ),
            )
        except BaseException as exc:
            self._back_to_queued(image_id, exc)
            if isinstance(exc, Exception):
                self.notifier.upload_failed(image_id, failure_reason(exc))
            raise
        for event_type in ("image.upload", "image.activate", "image.update"):
            self.notifier.image(event_type, uploaded)
        return uploaded

    def _back_to_queued(self, image_id: str, cause: BaseException) -> None:
        LOG.info("upload of image %s failed (%s); back to queued", image_id, type(cause).__name__)
        try:
            self.images.back_to_queued(image_id, (S.SAVING,), properties_removed=(UPLOAD_OWNER,))
        except errors.Unavailable:
            # The database went away under the upload (usually why it failed). The image
            # would stay saving under an owner that is alive, which start-up recovery never
            # touches, so this process keeps trying until the database is back.
            self._reset_when_database_returns(image_id)

    def _reset_when_database_returns(self, image_id: str) -> None:
        with self._pending_lock:
            if image_id in self._pending_resets:
                return
            self._pending_resets.add(image_id)
        LOG.warning("image %s stays saving until the database is back; retrying in the background", image_id)

        def retry() -> None:
            delay = RESET_RETRY_FIRST
            while True:
                time.sleep(delay)
                try:
                    self.images.back_to_queued(image_id, (S.SAVING,), properties_removed=(UPLOAD_OWNER,))
                except errors.Unavailable:
                    delay = min(delay * 2, RESET_RETRY_MAX)
                    continue
                except Exception:
                    LOG.exception("could not return image %s to queued after its failed upload", image_id)
                else:
                    LOG.info("image %s back to queued now that the database answers", image_id)
                with self._pending_lock:
                    self._pending_resets.discard(image_id)
                return

        # A daemon thread: if this process ends first, the next worker's recover_dead_uploads does it.
        threading.Thread(target=retry, name=f"reset-{image_id}", daemon=True).start()

    def recover_dead_uploads(self) -> list[str]:
        """Images left in ``saving`` by a process of this host that died mid-upload go back to queued (at start)."""
        recovered = []
        for image in self.images.images_with_property(UPLOAD_OWNER, status=S.SAVING):
            # The image and its properties come from two statements: on PostgreSQL each sees the
            # data committed when it runs, so an upload that ended in between shows no owner.
            try:
                owner = json.loads(image.properties.get(UPLOAD_OWNER))
            except (ValueError, TypeError):  # TypeError: no owner (None)
                continue
            if not isinstance(owner, dict):
                continue
            if processes.owner_alive(owner) is False:
                self._back_to_queued(image.id, RuntimeError("its uploading process died"))
                recovered.append(image.id)
        return recovered

    # -- download --------------------------------------------------------------------

    def download(
        self, context: RequestContext, image_id: str, resolve_range=None, prefer: list[str] | None = None
    ) -> Download | None:
        """Open the image's data in the first store (by weight) that can serve it.

        None when the image has no data (no locations, or every store lost it):
        Glance answers 204 No Content then.

        ``resolve_range(total) -> ByteRange | None`` turns the request's range into
        numbers once the size is known (raises 416 itself).
        """
        image = self.access.visible_image(context, image_id)
        target = self.access.target(context, image)
        self.policy.enforce(context, "download_image", target)
        if prefer:
            self.policy.enforce(context, "download_from_store", target)
        if image.status == S.DEACTIVATED and not (context.is_admin or self.policy.is_admin(context)):
            raise errors.Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        locations = [loc for loc in image.locations if loc.status == "active"]
        if not locations:
            return None
        byte_range = resolve_range(image.size or 0) if resolve_range else None
        offset, length = (byte_range.offset, byte_range.length) if byte_range else (0, None)
        if self.cache is not None:
            cached = self.cache.open_stream(image_id, offset, length)
            if cached is not None:
                return Download(
                    image=image, stream=self.notifier.counting_send(cached, image, context), byte_range=byte_range
                )
        failures: list[errors.GlanceliteError] = []
        for location in self._ordered(locations, prefer):
            try:
                stream = self.stores.read(location, offset, length, context=context, image_id=image_id)
            except (base.StoreNotFound, base.StoreUnavailable) as exc:
                LOG.warning("image %s: location unreadable, trying the next one: %s", image_id, exc.message)
                failures.append(exc)
                continue
            if self.cache is not None and byte_range is None and image.status == S.ACTIVE:
                stream = self._into_cache(image, stream)
            stream = self.notifier.counting_send(stream, image, context)  # image.send when it is closed
            return Download(image=image, stream=stream, byte_range=byte_range)
        if all(isinstance(f, base.StoreNotFound) for f in failures):
            return None
        raise next(f for f in failures if not isinstance(f, base.StoreNotFound))

    def _into_cache(self, image: model.Image, stream: base.DataStream) -> base.DataStream:
        """A whole-image download also fills the cache, unless another request already is."""
        writer = self.cache.begin_write(image.id)
        return stream if writer is None else tee_into_cache(stream, writer, image)

    def _ordered(self, locations: list[model.Location], prefer: list[str] | None) -> list[model.Location]:
        ordered = self.stores.sort_locations(locations)
        if not prefer:
            return ordered
        rank = {store_id: i for i, store_id in enumerate(prefer)}
        return sorted(ordered, key=lambda loc: rank.get((loc.metadata or {}).get("store"), len(rank)))

    def check_prefer(self, prefer: list[str]) -> list[str]:
        if not self.settings.multi_store:
            raise errors.Invalid(
                "Store selection for download is not available when multiple backends are not enabled."
            )
        for store_id in prefer:
            if store_id not in self.stores.public_ids():
                raise errors.Invalid(f"Store '{store_id}' is not configured.")
        return prefer

    # -- delete from one store ---------------------------------------------------------

    def delete_from_store(self, context: RequestContext, store_id: str, image_id: str) -> None:
        if not self.settings.multi_store:
            raise errors.NotFound("Multi backend is not supported at this site.")
        if store_id not in self.stores.public_ids():
            raise errors.Conflict(f"The selected store {store_id} is not available on this node.")
        try:
            image = self.access.visible_image(context, image_id)
        except errors.NotFound:
            raise errors.NotFound(f"Failed to find image {image_id}") from None
        target = self.access.target(context, image)
        self.policy.enforce(context, "get_image_location", target)
        self.policy.enforce(context, "delete_image_location", target)
        if image.status != S.ACTIVE:
            raise errors.Conflict("It's not allowed to remove image data from store if image status is not 'active'")
        locations = [loc for loc in image.locations if loc.status == "active"]
        if len(locations) == 1:
            raise errors.Forbidden(
                "Cannot delete image data from the only store containing it. Consider deleting the image instead."
            )
        matching = [loc for loc in locations if self.stores.holder_of(loc) == store_id]
        if not matching:
            raise errors.NotFound(f"Image {image_id} is not stored in store {store_id}.")
        for location in matching:
            self.stores.delete_location(location, context=context, image_id=image_id)
            if location.id is not None:
                self.locations.remove_location(image_id, location.id)
