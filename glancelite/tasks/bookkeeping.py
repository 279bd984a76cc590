"""Import bookkeeping on the image, and the lock every read-modify-write of it takes.

``os_glance_importing_to_stores`` and ``os_glance_failed_import`` say which target
stores an import is still writing and which it failed (Glance's properties).
``image_writes(image_id)`` serialises, per image, the import's read-modify-writes of the
image: these properties, the first checksum, the activation.

Home: tasks, the lowest layer all its callers reach: the import steps, the import
service (an import that never starts) and crash recovery (one whose worker died).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from glancelite import errors
from glancelite.tasks.plan import FAILED_PROPERTY, IMPORTING_PROPERTY

if TYPE_CHECKING:
    from glancelite.tasks.steps import ImportEnv


class ImageLocks:
    """One re-entrant lock per image id, kept only while a thread holds or waits for it.

    Store imports of one task may run in parallel ([image_import_opts] max_parallel_stores):
    their read-modify-write of the image (bookkeeping properties, first checksum, activation)
    is serialised per image, so imports of different images never wait for each other. Keyed
    by image, not task: a task taking over a dead task's lock writes the same image. Across
    processes the image's import lock (os_glance_import_task) keeps one task its only writer.
    """

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, list[int]]] = {}

    @contextlib.contextmanager
    def __call__(self, image_id: str):
        with self._guard:
            lock, users = self._locks.setdefault(image_id, (threading.RLock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[image_id]


image_writes = ImageLocks()


def split_list(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def update_bookkeeping(env: ImportEnv, image_id: str, *, importing=(), done=(), failed=(), unfail=()) -> None:
    """Adjust os_glance_importing_to_stores / os_glance_failed_import (the lock makes us the only writer)."""
    with image_writes(image_id), contextlib.suppress(errors.NotFound):
        image = env.images.get_image(image_id)
        props = image.properties
        now_importing = [s for s in split_list(props.get(IMPORTING_PROPERTY)) if s not in done]
        now_importing += [s for s in importing if s not in now_importing]
        now_failed = [s for s in split_list(props.get(FAILED_PROPERTY)) if s not in unfail]
        now_failed += [s for s in failed if s not in now_failed]
        env.images.update_image(
            image_id,
            properties_set={IMPORTING_PROPERTY: ",".join(now_importing), FAILED_PROPERTY: ",".join(now_failed)},
        )
