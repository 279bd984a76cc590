"""The two reserved file stores an import works in, and who owns a running task.

- StagingArea: ``os_glance_staging_store`` (or ``node_staging_uri``); an
  image's staged data is the file ``<dir>/<image_id>``, as in Glance. Written,
  sized, linked in and deleted only through the StoreSet and the file driver, so a
  half-written stage is only ever a hidden ``.partial-*`` file and a staged file
  is always complete.
- WorkArea: ``os_glance_tasks_store`` (or ``[task] work_dir``): downloads in
  progress (``<task_id>.download``; copy-image out of a file store on the same file system
  links the image's file there instead of copying it), an import plugin's output while it is
  written (``<task_id>.scratch``) and one owner marker per task
  (``<task_id>.owner``: host, pid and process start time of the worker that
  runs it). The marker lets any worker tell a live task from one whose
  process died (crash recovery, import-lock takeover).

Home: the store layer; both areas are reserved file stores reached through the StoreSet.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from glancelite.model import Location
from glancelite.processes import current_owner, owner_alive  # noqa: F401  (re-exported for tasks)
from glancelite.settings import StoreSettings
from glancelite.store.base import DataStream, Readable, StoredObject, StoreNotFound
from glancelite.store.drivers.file import link_open_file
from glancelite.store.stores import StoreSet


def _datadir(store: StoreSettings) -> str:
    return os.path.realpath(store.options["filesystem_store_datadir"])


class StagingArea:
    """The staging store seen by image id. Every write, size, link and delete goes through the
    StoreSet (its capability check, its metrics) to the file driver: a staging store is just a store."""

    def __init__(self, stores: StoreSet, store_id: str):
        self.stores = stores
        self.store_id = store_id
        self.dir = _datadir(stores.settings_of(store_id, internal=True))

    def path(self, image_id: str) -> str:
        """The staged file, for tools that read a path (the image conversion plugin's qemu-img)."""
        return os.path.join(self.dir, image_id)

    def location(self, image_id: str) -> Location:
        """Where the image's data is (or would be) staged."""
        return Location(url=f"file://{self.path(image_id)}", metadata={"store": self.store_id})

    def size(self, image_id: str) -> int | None:
        """Bytes staged for the image, None when nothing is."""
        location = self.stores.locate(self.store_id, image_id, internal=True)
        if location is None:
            return None
        try:
            return self.stores.get_size(location)
        except StoreNotFound:
            return None

    def write(self, image_id: str, reader: Readable, size: int | None) -> StoredObject:
        """Stage everything ``reader`` yields; Duplicate (409) if data is already staged."""
        return self.stores.write(self.store_id, image_id, reader, size, internal=True)

    def adopt(self, image_id: str, work_file: str) -> int:
        """Move a finished work file into staging (never replacing); returns its size."""
        return self.stores.adopt(self.store_id, image_id, work_file, internal=True).size

    def replace(self, image_id: str, work_file: str) -> int:
        """Put a finished work file in place of the image's staged data; returns its size."""
        return self.stores.replace(self.location(image_id), image_id, work_file).size

    def open(self, image_id: str) -> DataStream:
        return self.stores.read(self.location(image_id), image_id=image_id)

    def delete(self, image_id: str) -> bool:
        """Remove the staged data; False when there was none."""
        try:
            self.stores.delete(self.location(image_id), image_id=image_id)
        except StoreNotFound:
            return False
        return True


class WorkArea:
    def __init__(self, stores: StoreSet, store_id: str):
        self.dir = _datadir(stores.settings_of(store_id, internal=True))
        os.makedirs(self.dir, exist_ok=True)

    def download_path(self, task_id: str) -> str:
        return os.path.join(self.dir, f"{task_id}.download")

    def link_whole_file(self, stream: DataStream, work_file: str) -> bool:
        """Make ``work_file`` the very file ``stream`` reads (a hard link, no copy) when the stream is
        a whole local file on this area's file system (copy-image out of a file store); False when
        it is not, and the caller copies. An existing ``work_file`` raises FileExistsError."""
        if stream.whole_file is None:
            return False
        try:
            link_open_file(stream.whole_file, work_file)
        except FileExistsError:
            raise
        except OSError:  # another file system, no /proc: copy
            return False
        return True

    def scratch_path(self, task_id: str) -> str:
        """Where an import plugin writes its output before it replaces the staged data."""
        return os.path.join(self.dir, f"{task_id}.scratch")

    def _marker(self, task_id: str) -> str:
        return os.path.join(self.dir, f"{task_id}.owner")

    def claim(self, task_id: str) -> None:
        """Record this process as the task's owner."""
        tmp = self._marker(task_id) + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(current_owner(), fh)
        os.replace(tmp, self._marker(task_id))

    def owner(self, task_id: str) -> dict | None:
        try:
            with open(self._marker(task_id)) as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def owner_alive(self, task_id: str) -> bool | None:
        owner = self.owner(task_id)
        return None if owner is None else owner_alive(owner)

    def release(self, task_id: str) -> None:
        """Remove every working file of the task (marker included)."""
        for path in (
            self._marker(task_id),
            self._marker(task_id) + ".tmp",
            self.download_path(task_id),
            self.scratch_path(task_id),
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def task_ids(self) -> set[str]:
        """Tasks that have working files here."""
        ids = set()
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.dir):
                stem, dot, ext = name.partition(".")
                if dot and ext in ("owner", "download", "owner.tmp", "scratch"):
                    ids.add(stem)
        return ids

    def age(self, task_id: str) -> float:
        """Seconds since the task's newest working file changed (0 when it has none)."""
        newest = 0.0
        for path in (self._marker(task_id), self.download_path(task_id), self.scratch_path(task_id)):
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, os.stat(path).st_mtime)
        return max(0.0, time.time() - newest) if newest else 0.0
