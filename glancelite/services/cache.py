"""The local image cache ([DEFAULT] image_cache_dir): the cache API's use cases and the prefetcher.

State lives only in the filesystem (services/cache_files.py), so every worker
sees the same cache without a table to keep in step.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db.repositories import ImageRepository
from glancelite.services.cache_files import (  # noqa: F401 (re-exported)
    STALE_WRITE_SECONDS,
    CachedImage,
    CacheWriter,
    ImageCache,
    valid_id,
)
from glancelite.services.image_access import ImageAccess
from glancelite.services.policy import Policy
from glancelite.settings import Settings
from glancelite.store import base
from glancelite.store.stores import StoreSet
from glancelite.store.streams import new_hasher

LOG = logging.getLogger(__name__)

# A queued image stays listed as queued for at least this long before the prefetcher
# takes it, so a client that queues and then lists sees its entry.
QUEUE_GRACE_SECONDS = 1.0
NOT_SUPPORTED = "Caching via API is not supported at this site."


def tee_into_cache(stream: base.DataStream, writer: CacheWriter, image: model.Image) -> base.DataStream:
    """A stream that also writes what it yields into the cache; published only if complete and intact."""
    md5 = new_hasher("md5")

    def chunks():
        for chunk in stream:
            if not writer.done:
                try:
                    writer.write(chunk)
                    md5.update(chunk)
                except OSError as exc:  # a full cache disk must not fail the download
                    LOG.warning("image %s: cache write failed: %s", image.id, exc)
                    writer.abort()
            yield chunk
        if not writer.done:
            if writer.size == image.size and (not image.checksum or md5.hexdigest() == image.checksum):
                writer.commit()
            else:
                writer.abort()

    def close():
        try:
            stream.close()
        finally:
            writer.abort()  # no-op after a commit

    return base.DataStream(chunks(), size=stream.size, length=stream.length, on_close=close)


class Prefetcher:
    """Caches queued images, one run every ``interval`` seconds, on a daemon thread per worker.

    Workers share the queue; the O_EXCL incomplete file decides which one fetches an image.
    """

    def __init__(self, cache: ImageCache, images: ImageRepository, stores: StoreSet, interval: float):
        self.cache = cache
        self.images = images
        self.stores = stores
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cache-prefetcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                LOG.exception("cache prefetcher run failed")

    def run_once(self) -> int:
        fetched = 0
        cutoff = time.time() - QUEUE_GRACE_SECONDS
        for image_id, queued_at in self.cache.queued_since():
            if self._stop.is_set():
                break
            if queued_at <= cutoff and self.fetch(image_id):
                fetched += 1
        return fetched

    def fetch(self, image_id: str) -> bool:
        """Copy one image from its stores into the cache; True when it is cached now."""
        try:
            image = self.images.get_image(image_id)
        except errors.NotFound:
            image = None
        if image is None or image.status != model.ImageStatus.ACTIVE:
            LOG.info("not caching image %s: it is not an active image any more", image_id)
            self.cache.delete_queued(image_id)
            return False
        writer = self.cache.begin_write(image_id)
        if writer is None:
            return self.cache.is_cached(image_id)
        locations = [loc for loc in image.locations if loc.status == "active"]
        try:
            for location in self.stores.sort_locations(locations):
                try:
                    stream = self.stores.read(location)
                except errors.GlanceliteError as exc:
                    LOG.warning("image %s: cannot read a location to cache it: %s", image_id, exc.message)
                    continue
                with tee_into_cache(stream, writer, image) as teed:
                    for _ in teed:
                        pass
                if self.cache.is_cached(image_id):
                    LOG.info("image %s cached", image_id)
                    return True
                writer = self.cache.begin_write(image_id)
                if writer is None:
                    return self.cache.is_cached(image_id)
            return False
        finally:
            if writer is not None:
                writer.abort()


class CacheService:
    """The cache API's use cases (admin only by default). ``cache`` is None without image_cache_dir."""

    def __init__(
        self,
        images: ImageRepository,
        access: ImageAccess,
        policy: Policy,
        cache: ImageCache | None,
        prefetcher: Prefetcher | None = None,
        *,
        serves_downloads: bool = False,
    ):
        self.images = images
        self.access = access
        self.policy = policy
        self.cache = cache
        self.prefetcher = prefetcher
        # COMPAT: Glance serves and fills the cache on downloads only with its ``cache`` filter,
        # i.e. a paste flavor with "caching" or "cachemanagement"; image_cache_dir alone gives
        # the cache API and the prefetcher.
        self.download_cache = cache if serves_downloads else None

    def _enforce(self, ctx: RequestContext, rule: str, image: model.Image | None = None) -> ImageCache:
        target = self.access.target(ctx, image) if image is not None else {"project_id": ctx.project_id}
        self.policy.enforce(ctx, rule, target)
        # COMPAT: Glance checks the policy first, then answers 404 when the site has no cache.
        if self.cache is None:
            raise errors.NotFound(NOT_SUPPORTED)
        return self.cache

    def _image(self, image_id: str) -> model.Image | None:
        if not valid_id(image_id):
            return None
        try:
            return self.images.get_image(image_id)
        except errors.NotFound:
            return None

    def state(self, ctx: RequestContext) -> dict:
        cache = self._enforce(ctx, "cache_list")
        return {
            "cached_images": [dataclasses.asdict(entry) for entry in cache.cached()],
            "queued_images": cache.queued(),
        }

    def queue(self, ctx: RequestContext, image_id: str) -> None:
        image = self._image(image_id)
        if image is None:
            raise errors.NotFound(f"Image {image_id} not found.")
        cache = self._enforce(ctx, "cache_image", image)
        if image.status != model.ImageStatus.ACTIVE:
            raise errors.Invalid("Only images with status active can be targeted for queueing")
        cache.queue(image_id)

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        image = self._image(image_id)
        if image is None and not (
            self.cache is not None and (self.cache.is_cached(image_id) or self.cache.is_queued(image_id))
        ):
            raise errors.NotFound(f"Image {image_id} not found.")
        self._enforce(ctx, "cache_delete", image).forget(image_id)

    def clear(self, ctx: RequestContext, target: str) -> dict:
        cache = self._enforce(ctx, "cache_delete")
        target = (target or "").strip().lower()
        if target not in ("", "cache", "queue"):
            raise errors.Invalid("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.")
        result = {}
        if target in ("", "cache"):
            result["cache_deleted"] = cache.clear_cached()
        if target in ("", "queue"):
            result["queue_deleted"] = cache.clear_queued()
        return result

    def clean(self, ctx: RequestContext) -> dict:
        cache = self._enforce(ctx, "cache_clean")
        return {"total_files_cleaned": cache.clean()}

    def prune(self, ctx: RequestContext) -> dict:
        cache = self._enforce(ctx, "cache_prune")
        files, size = cache.prune()
        return {"total_files_pruned": files, "total_bytes_pruned": size}

    def forget(self, image_id: str) -> None:
        """The image was deleted: its cached copy and queue entry go too."""
        if self.cache is not None:
            self.cache.forget(image_id)

    def start(self) -> None:
        """Start the prefetcher, when there is one (the composition root does, once everything is built)."""
        if self.prefetcher is not None:
            self.prefetcher.start()

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()


def build(
    settings: Settings, images: ImageRepository, access: ImageAccess, policy: Policy, stores: StoreSet
) -> CacheService:
    """The cache service for the settings: a real cache and a prefetcher when image_cache_dir is set."""
    if not settings.image_cache_dir:
        return CacheService(images, access, policy, None)
    cache = ImageCache(
        settings.image_cache_dir, max_size=settings.image_cache_max_size, stall_time=settings.image_cache_stall_time
    )
    prefetcher = Prefetcher(cache, images, stores, settings.cache_prefetcher_interval)
    flavor = settings.auth_flavor or ""
    return CacheService(
        images, access, policy, cache, prefetcher, serves_downloads=flavor.endswith(("caching", "cachemanagement"))
    )
