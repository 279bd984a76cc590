"""The detailed health check: can this node serve, and if not, which part cannot.

Each part is checked now (no cached state) and timed: the database (one round trip), every
store (a fresh probe: its live capabilities and whether it can be reached and read), and the
stop file. The node is available only when every part is; a store that lost only WRITE_ACCESS
(read-only, full) still serves reads and counts as available, its capabilities say the rest.
With [taskflow_jobboard] the job board (one round trip to Redis) is reported too; it does not
decide availability: without it the node still serves images, only new imports wait (503).
The database's reasons are glancelite's own sentences, never the driver's text; a store's is
its probe's, as ``/v2/info/stores/detail`` shows it to admins.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from glancelite import errors
from glancelite.store.capabilities import Capability, contains, names_of
from glancelite.store.stores import StoreSet

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Check:
    available: bool
    reason: str
    latency_ms: float
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "reason": self.reason,
            "latency_ms": round(self.latency_ms, 3),
            **self.details,
        }


@dataclasses.dataclass(frozen=True)
class HealthReport:
    database: Check
    stores: dict[str, Check]
    stop_file: Check
    job_board: Check | None = None  # only with [taskflow_jobboard]

    @property
    def available(self) -> bool:
        return all(c.available for c in (self.database, self.stop_file, *self.stores.values()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "database": self.database.as_dict(),
            "stores": {store_id: check.as_dict() for store_id, check in self.stores.items()},
            "stop_file": self.stop_file.as_dict(),
            **({"job_board": self.job_board.as_dict()} if self.job_board is not None else {}),
        }


class HealthService:
    def __init__(
        self,
        *,
        ping_database: Callable[[], None],
        stores: StoreSet,
        stop_file: str | None,
        ping_job_board: Callable[[], None] | None = None,
    ):
        self.ping_database = ping_database  # one round trip; raises errors.Unavailable
        self.stores = stores
        self.stop_file = stop_file  # [healthcheck] disable_by_file_path
        self.ping_job_board = ping_job_board  # [taskflow_jobboard]; raises errors.Unavailable

    def report(self) -> HealthReport:
        return HealthReport(
            database=self._database(),
            stores={store_id: self._store(store_id) for store_id in self.stores.all_ids()},
            stop_file=self._stop_file(),
            job_board=self._job_board() if self.ping_job_board is not None else None,
        )

    def _database(self) -> Check:
        started = time.perf_counter()
        try:
            self.ping_database()
        except errors.Unavailable:
            return Check(False, "the database cannot be reached", _since(started))
        except Exception:  # anything else is a database that cannot serve either
            LOG.exception("database health check failed")
            return Check(False, "the database check failed", _since(started))
        return Check(True, "OK", _since(started))

    def _job_board(self) -> Check:
        started = time.perf_counter()
        try:
            self.ping_job_board()
        except errors.Unavailable:
            return Check(False, "the import job board cannot be reached", _since(started))
        return Check(True, "OK", _since(started))

    def _store(self, store_id: str) -> Check:
        started = time.perf_counter()
        probe = self.stores.probe_now(store_id)
        elapsed = _since(started)
        readable = contains(probe.capabilities, Capability.READ_ACCESS) and not probe.unreachable
        details = {
            "capabilities": names_of(probe.capabilities),
            "reserved": self.stores.settings_of(store_id, internal=True).reserved,
        }
        if not readable:
            return Check(False, probe.reason or "the store cannot be read", elapsed, details)
        return Check(True, probe.reason or "OK", elapsed, details)

    def _stop_file(self) -> Check:
        started = time.perf_counter()
        present = bool(self.stop_file) and os.path.exists(self.stop_file)
        if present:
            return Check(False, "the stop file exists: this node is being drained", _since(started))
        return Check(True, "OK", _since(started))


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
