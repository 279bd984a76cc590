"""The local image cache ([DEFAULT] image_cache_dir), shared by every worker process.

State lives only in the filesystem, in Glance's layout, so every worker sees
the same cache without a table to keep in step:

    <dir>/<image_id>             a complete cached image
    <dir>/incomplete/<image_id>  being written; created with O_EXCL, so one writer per image
    <dir>/queue/<image_id>       queued for the prefetcher; its mtime is when it was queued
    <dir>/invalid/<image_id>     a write that failed, kept until a clean

A file appears under its final name only by rename, so a reader never sees a
partial image. Hits are kept in an extended attribute where the filesystem has
them; last access is the file's atime, set explicitly on each read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db import images as images_db
from glancelite.services.policy import image_target
from glancelite.store import base
from glancelite.store.streams import new_hasher

LOG = logging.getLogger(__name__)

HITS_XATTR = "user.glancelite.hits"
CHUNK = 1 << 20
# An incomplete file not written to for this long has lost its writer (a worker died).
STALE_WRITE_SECONDS = 120
# A queued image stays listed as queued for at least this long before the prefetcher
# takes it, so a client that queues and then lists sees its entry.
QUEUE_GRACE_SECONDS = 1.0
NOT_SUPPORTED = "Caching via API is not supported at this site."


def _valid_id(image_id: str) -> bool:
    try:
        uuid.UUID(image_id)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class CachedImage:
    image_id: str
    size: int
    hits: int
    last_accessed: float
    last_modified: float


class CacheWriter:
    """One image being written into the cache; ``commit`` publishes it, ``abort`` drops it."""

    def __init__(self, cache: ImageCache, image_id: str, fh):
        self._cache = cache
        self.image_id = image_id
        self._fh = fh
        self.size = 0
        self.done = False

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.size += len(data)

    def commit(self) -> None:
        if self.done:
            return
        self.done = True
        self._fh.close()
        os.replace(self._cache.path(self.image_id, "incomplete"), self._cache.path(self.image_id))
        self._cache.delete_queued(self.image_id)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._cache.path(self.image_id, "incomplete"))


class ImageCache:
    def __init__(self, directory: str, *, max_size: int, stall_time: int):
        self.directory = os.path.abspath(directory)
        self.max_size = max_size
        self.stall_time = stall_time
        for area in ("incomplete", "queue", "invalid"):
            os.makedirs(os.path.join(self.directory, area), exist_ok=True)

    def path(self, image_id: str, area: str | None = None) -> str:
        if not _valid_id(image_id):  # ids name files: never let one name a path
            raise errors.NotFound(f"Image {image_id} not found.")
        return os.path.join(self.directory, area, image_id) if area else os.path.join(self.directory, image_id)

    def _ids(self, area: str | None = None) -> list[tuple[str, os.stat_result]]:
        folder = os.path.join(self.directory, area) if area else self.directory
        found = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file() and _valid_id(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        found.append((entry.name, entry.stat()))
        return found

    # -- queries -------------------------------------------------------------------

    def cached(self) -> list[CachedImage]:
        return [
            CachedImage(
                image_id=image_id,
                size=st.st_size,
                hits=self._hits(self.path(image_id)),
                last_accessed=st.st_atime,
                last_modified=st.st_mtime,
            )
            for image_id, st in sorted(self._ids(), key=lambda item: item[1].st_mtime)
        ]

    def queued(self) -> list[str]:
        return [image_id for image_id, st in sorted(self._ids("queue"), key=lambda item: item[1].st_mtime)]

    def is_cached(self, image_id: str) -> bool:
        return _valid_id(image_id) and os.path.isfile(self.path(image_id))

    def is_queued(self, image_id: str) -> bool:
        return _valid_id(image_id) and os.path.isfile(self.path(image_id, "queue"))

    @staticmethod
    def _hits(path: str) -> int:
        try:
            return int(os.getxattr(path, HITS_XATTR))
        except (OSError, ValueError, AttributeError):
            return 0

    # -- changes -------------------------------------------------------------------

    def queue(self, image_id: str) -> bool:
        """Queue for the prefetcher; False when already cached, being cached or queued."""
        if self.is_cached(image_id) or os.path.exists(self.path(image_id, "incomplete")):
            return False
        try:
            with open(self.path(image_id, "queue"), "x"):
                pass
        except FileExistsError:
            return False
        return True

    def delete_cached(self, image_id: str) -> bool:
        try:
            os.unlink(self.path(image_id))
        except FileNotFoundError:
            return False
        return True

    def delete_queued(self, image_id: str) -> bool:
        try:
            os.unlink(self.path(image_id, "queue"))
        except FileNotFoundError:
            return False
        return True

    def forget(self, image_id: str) -> None:
        """The image is gone (deleted): drop its cached copy and its queue entry."""
        if _valid_id(image_id):
            self.delete_cached(image_id)
            self.delete_queued(image_id)

    def clear_cached(self) -> int:
        return sum(self.delete_cached(image_id) for image_id, _ in self._ids())

    def clear_queued(self) -> int:
        return sum(self.delete_queued(image_id) for image_id, _ in self._ids("queue"))

    def clean(self) -> int:
        """Remove failed writes, and unfinished ones older than image_cache_stall_time."""
        removed = 0
        older_than = time.time() - self.stall_time
        for area, limit in (("invalid", None), ("incomplete", older_than)):
            for image_id, st in self._ids(area):
                if limit is None or st.st_mtime < limit:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path(image_id, area))
                        removed += 1
        return removed

    def prune(self) -> tuple[int, int]:
        """Remove least recently used images until the cache fits image_cache_max_size."""
        entries = sorted(self.cached(), key=lambda c: c.last_accessed)
        total = sum(c.size for c in entries)
        files = pruned = 0
        for entry in entries:
            if total <= self.max_size:
                break
            if self.delete_cached(entry.image_id):
                files += 1
                pruned += entry.size
            total -= entry.size
        return files, pruned

    # -- data ----------------------------------------------------------------------

    def open_stream(self, image_id: str, offset: int = 0, length: int | None = None) -> base.DataStream | None:
        """The cached image as a DataStream (sendfile-able), or None if not cached; counts a hit."""
        path = self.path(image_id)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            return None
        st = os.fstat(fh.fileno())
        self._record_hit(path, st)
        offset = min(offset, st.st_size)
        remaining = st.st_size - offset if length is None else max(0, min(length, st.st_size - offset))
        fh.seek(offset)
        return base.DataStream(_chunks(fh, remaining), size=st.st_size, length=remaining, file=fh, on_close=fh.close)

    def _record_hit(self, path: str, st: os.stat_result) -> None:
        with contextlib.suppress(OSError):
            os.utime(path, (time.time(), st.st_mtime))
        with contextlib.suppress(OSError, AttributeError):
            os.setxattr(path, HITS_XATTR, str(self._hits(path) + 1).encode())

    def begin_write(self, image_id: str) -> CacheWriter | None:
        """A writer for the image, or None when it is cached or another writer has it."""
        if self.is_cached(image_id):
            return None
        incomplete = self.path(image_id, "incomplete")
        for _ in range(2):
            try:
                return CacheWriter(self, image_id, open(incomplete, "xb"))
            except FileExistsError:
                try:
                    if time.time() - os.stat(incomplete).st_mtime < STALE_WRITE_SECONDS:
                        return None
                    os.unlink(incomplete)  # its writer died: take over
                except FileNotFoundError:
                    pass
        return None


def _chunks(fh, remaining: int):
    while remaining > 0:
        data = fh.read(min(CHUNK, remaining))
        if not data:
            return
        remaining -= len(data)
        yield data


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

    def __init__(self, cache: ImageCache, engine, stores, interval: float):
        self.cache = cache
        self.engine = engine
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
        for image_id, st in sorted(self.cache._ids("queue"), key=lambda item: item[1].st_mtime):
            if self._stop.is_set():
                break
            if st.st_mtime <= cutoff and self.fetch(image_id):
                fetched += 1
        return fetched

    def fetch(self, image_id: str) -> bool:
        """Copy one image from its stores into the cache; True when it is cached now."""
        try:
            image = images_db.get_image(self.engine, image_id)
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

    def __init__(self, engine, policy, cache: ImageCache | None, prefetcher: Prefetcher | None = None):
        self.engine = engine
        self.policy = policy
        self.cache = cache
        self.prefetcher = prefetcher

    def _enforce(self, ctx: RequestContext, rule: str, image: model.Image | None = None) -> ImageCache:
        target = image_target(image) if image is not None else {"project_id": ctx.project_id}
        self.policy.enforce(ctx, rule, target)
        # COMPAT: Glance checks the policy first, then answers 404 when the site has no cache.
        if self.cache is None:
            raise errors.NotFound(NOT_SUPPORTED)
        return self.cache

    def _image(self, image_id: str) -> model.Image | None:
        if not _valid_id(image_id):
            return None
        try:
            return images_db.get_image(self.engine, image_id)
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

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()


def build(settings, engine, policy, stores) -> CacheService:
    """The cache service for the settings: a real cache and a running prefetcher when image_cache_dir is set."""
    if not settings.image_cache_dir:
        return CacheService(engine, policy, None)
    cache = ImageCache(
        settings.image_cache_dir, max_size=settings.image_cache_max_size, stall_time=settings.image_cache_stall_time
    )
    prefetcher = Prefetcher(cache, engine, stores, settings.cache_prefetcher_interval)
    prefetcher.start()
    return CacheService(engine, policy, cache, prefetcher)
