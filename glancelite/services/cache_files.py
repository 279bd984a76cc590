"""The image cache's files: Glance's layout in ``image_cache_dir``, shared by every worker.

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
import os
import time
import uuid

from glancelite import errors
from glancelite.store import base

HITS_XATTR = "user.glancelite.hits"
CHUNK = 1 << 20
# An incomplete file not written to for this long has lost its writer (a worker died).
STALE_WRITE_SECONDS = 120


def valid_id(image_id: str) -> bool:
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

    def _still_ours(self, path: str) -> bool:
        """False when another writer took the incomplete name over (we stalled past STALE_WRITE_SECONDS)."""
        try:
            return os.stat(path).st_ino == os.fstat(self._fh.fileno()).st_ino
        except FileNotFoundError:
            return False

    def _close(self) -> str | None:
        """Close once; the incomplete file's path while it is still ours, else None."""
        if self.done:
            return None
        self.done = True
        incomplete = self._cache.path(self.image_id, "incomplete")
        ours = self._still_ours(incomplete)
        self._fh.close()
        return incomplete if ours else None

    def commit(self) -> None:
        incomplete = self._close()
        if incomplete is not None:
            os.replace(incomplete, self._cache.path(self.image_id))
            self._cache.delete_queued(self.image_id)

    def abort(self) -> None:
        incomplete = self._close()
        if incomplete is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(incomplete)


class ImageCache:
    def __init__(self, directory: str, *, max_size: int, stall_time: int):
        self.directory = os.path.abspath(directory)
        self.max_size = max_size
        self.stall_time = stall_time
        for area in ("incomplete", "queue", "invalid"):
            os.makedirs(os.path.join(self.directory, area), exist_ok=True)

    def path(self, image_id: str, area: str | None = None) -> str:
        if not valid_id(image_id):  # ids name files: never let one name a path
            raise errors.NotFound(f"Image {image_id} not found.")
        return os.path.join(self.directory, area, image_id) if area else os.path.join(self.directory, image_id)

    def _ids(self, area: str | None = None) -> list[tuple[str, os.stat_result]]:
        folder = os.path.join(self.directory, area) if area else self.directory
        found = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file() and valid_id(entry.name):
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

    def queued_since(self) -> list[tuple[str, float]]:
        """(image id, when queued), oldest first."""
        return sorted(((image_id, st.st_mtime) for image_id, st in self._ids("queue")), key=lambda e: e[1])

    def queued(self) -> list[str]:
        return [image_id for image_id, _ in self.queued_since()]

    def is_cached(self, image_id: str) -> bool:
        return valid_id(image_id) and os.path.isfile(self.path(image_id))

    def is_queued(self, image_id: str) -> bool:
        return valid_id(image_id) and os.path.isfile(self.path(image_id, "queue"))

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
        if valid_id(image_id):
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
