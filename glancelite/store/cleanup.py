"""Removals a failed ``add`` could not do because its backend stopped answering, retried later.

A driver removes its partial data before an ``add`` error leaves it (base.py). When the error
*is* the backend going away (a Swift proxy killed mid-upload, a frozen Ceph OSD), that removal
fails too, and the segments or the half-written RBD image would stay behind with no location
referring to them. ``PendingRemovals`` keeps such removals and runs them again from a
background thread, with growing pauses, until the backend answers; after ``give_up_after``
seconds it logs what is left, and ``glancelite-manage store audit`` lists it as orphans (its
``--remove-orphans-older-than`` removes them). What is kept lives in this process only: a
worker that dies takes its list with it, and the audit is the net below.

A new ``add`` of the same image runs the pending removal of that image first (``settle``),
so a retried upload never meets its own leftovers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from glancelite import errors
from glancelite.store import base

LOG = logging.getLogger(__name__)

# Seconds between attempts: quick while a restart is likely, then a minute apart.
DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
GIVE_UP_AFTER = 3600.0


class PendingRemovals:
    """Removals ``remove()`` to retry until they succeed; keyed by image id (one per image)."""

    def __init__(
        self,
        store_id: str,
        *,
        delays: tuple[float, ...] = DELAYS,
        give_up_after: float = GIVE_UP_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store_id = store_id
        self.delays, self.give_up_after, self.clock = delays, give_up_after, clock
        self._pending: dict[str, tuple[str, Callable[[], None], float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def defer(self, key: str, what: str, remove: Callable[[], None]) -> None:
        """Retry ``remove`` (which raises while it cannot finish; StoreNotFound counts as done)."""
        LOG.warning("store %s: could not remove %s now; retrying in the background", self.store_id, what)
        with self._lock:
            self._pending[key] = (what, remove, self.clock())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"pending-removals-{self.store_id}", daemon=True)
                self._thread.start()

    def pending(self) -> list[str]:
        """What is still to remove (for logs and tests)."""
        with self._lock:
            return [what for what, _, _ in self._pending.values()]

    def settle(self, key: str) -> bool:
        """Run the pending removal of ``key`` now; True when none is left (False: it failed again)."""
        with self._lock:
            entry = self._pending.get(key)
        if entry is None:
            return True
        return self._attempt(key, entry)

    def _attempt(self, key: str, entry: tuple[str, Callable[[], None], float]) -> bool:
        what, remove, _ = entry
        try:
            remove()
        except base.StoreNotFound:
            pass  # gone already (removed by someone else, or with the backend's memory): done
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; the next attempt decides
            message = exc.message if isinstance(exc, errors.GlanceliteError) else f"{type(exc).__name__}: {exc}"
            LOG.info("store %s: removal of %s failed again: %s", self.store_id, what, message)
            return False
        with self._lock:
            if self._pending.get(key) is entry:
                del self._pending[key]
        LOG.warning("store %s: removed %s, left by an upload that failed earlier", self.store_id, what)
        return True

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                self._wake.wait(self.delays[min(attempt, len(self.delays) - 1)])
                entries = list(self._pending.items())
            attempt += 1
            now = self.clock()
            for key, entry in entries:
                if self._attempt(key, entry):
                    continue
                if now - entry[2] > self.give_up_after:
                    with self._lock:
                        if self._pending.get(key) is entry:
                            del self._pending[key]
                    LOG.error(
                        "store %s: gave up removing %s; glancelite-manage store audit lists it as an orphan",
                        self.store_id,
                        entry[0],
                    )
