"""How far a running import has got, written to its task for clients to poll.

Where a client sees it (and why there):

* ``GET /v2/tasks/{id}`` and ``GET /v2/images/{id}/tasks``: the task's ``result`` gets an
  ``import_progress`` object while the import runs::

      {"import_progress": {
          "source": {"bytes_done": 7340032, "bytes_total": 10485760},   # web-download, copy-image,
                                                                      # glance-download only
          "stores": {"fast": {"status": "done", "bytes_done": 10485760, "bytes_total": 10485760},
                     "slow": {"status": "importing", "bytes_done": 1048576, "bytes_total": 10485760},
                     "spare": {"status": "pending", "bytes_done": 0, "bytes_total": null}}}}

  and its ``message`` says the same in words ("Copied 1 of 10 MiB into slow; 1 of 3 stores done"),
  as Glance's "Copied N MiB" does. Glance's task schema declares ``result`` as
  ``["null", "object"]`` with no fixed keys and ``message`` as a string, so python-glanceclient
  (warlock validates the task against /v2/schemas/task), openstacksdk (``Task.result`` is a dict)
  and tempest (which waits on the status and checks ids, not the result's keys) read it unchanged.
  A failed import keeps its last progress, with the stores its reverts undid marked failed; a
  successful one ends with exactly Glance's result, ``{"image_id": ...}``, and message "" (the
  image is active in every store by then, and scripts compare that result as Glance writes it).
* The image's ``os_glance_importing_to_stores`` / ``os_glance_failed_import`` (Glance's
  bookkeeping, tasks/bookkeeping.py) keep saying which stores are pending and which failed.

Not an image property (say ``os_glance_import_progress``): every write would change the image
(its ``updated_at``, and a notification-free write racing the import's own bookkeeping under the
per-image lock), and the image is what clients cache and compare; the task is the record of the
job and is already rewritten as its heartbeat.

Throttled by time and bytes: a running import writes the task at most every
``[image_import_opts] import_progress_interval`` seconds, and only when a meter has moved at least
1 % of its total (64 MiB when the total is unknown) since the last write; a store starting,
finishing or failing is written at once. Whatever the throttle, the task is written at least every
``HEARTBEAT_SECONDS`` while bytes move (its heartbeat: import recovery takes over tasks whose
``updated_at`` went stale). The hot path is one addition and one clock read per chunk.

A write finding the task no longer ``processing`` (declared dead, taken over) stops the import
(steps.ImportAborted), as the heartbeat always did.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from glancelite import errors
from glancelite.store import datalog
from glancelite.tasks.bookkeeping import split_list
from glancelite.tasks.plan import FAILED_PROPERTY, ImportPlan

if TYPE_CHECKING:
    from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)

RESULT_KEY = "import_progress"
MIB = 1 << 20
HEARTBEAT_SECONDS = 5.0  # also the most [image_import_opts] import_progress_interval may be
MIN_STEP_FRACTION = 0.01  # a meter writes no more often than once per 1 % of its total...
UNKNOWN_TOTAL_STEP = 64 * MIB  # ... or once per 64 MiB when the total is not known


class StoreStatus(enum.StrEnum):
    PENDING = "pending"
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"


class Meter:
    """Bytes done of one transfer (the source, or one store); ``add`` is called per chunk."""

    def __init__(self, progress: ImportProgress, total: int | None):
        self._progress = progress
        self.total = total
        self.done = 0
        self._written_at = 0  # bytes done when the task was last written

    def set_total(self, total: int | None) -> None:
        self.total = total

    def add(self, n: int) -> None:
        self.at(self.done + n)

    def at(self, done: int) -> None:
        """The running byte count (tasks/ingest.py's progress callback)."""
        self.done = done
        self._progress.tick(self)

    def step_reached(self) -> bool:
        """Moved by 1 % of the total (64 MiB when unknown) since the task was last written."""
        step = max(1, int(self.total * MIN_STEP_FRACTION)) if self.total else UNKNOWN_TOTAL_STEP
        return self.done - self._written_at >= step

    def written(self) -> None:
        self._written_at = self.done

    def view(self) -> dict[str, Any]:
        return {"bytes_done": self.done, "bytes_total": self.total}


class ImportProgress:
    """One running import's meters, shared by its steps (parallel store imports too)."""

    def __init__(
        self,
        write: Callable[[str, dict[str, Any]], None],
        stores: tuple[str, ...],
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], Any] | None = None,
    ):
        """``write(message, result)`` records both on the task; ``interval`` is the time throttle;
        ``later(delay, fn)`` runs ``fn`` after ``delay`` seconds on another thread (a daemon Timer)."""
        self._write = write
        self.interval = min(max(interval, 0.0), HEARTBEAT_SECONDS)
        self._clock = clock
        self._later = later or _timer
        self._trailing = None  # the pending trailing write, if any
        self.source: Meter | None = None
        self.source_verb = "Downloaded"
        self.stores: dict[str, Meter] = {store_id: Meter(self, None) for store_id in stores}
        self.status: dict[str, StoreStatus] = dict.fromkeys(stores, StoreStatus.PENDING)
        self._lock = threading.Lock()
        self._last_write = clock()

    # -- what the steps call ------------------------------------------------------

    def source_meter(self, verb: str, total: int | None = None) -> Meter:
        """The acquisition (download, copy) into staging; written at once so clients see it begin."""
        self.source_verb = verb
        self.source = Meter(self, total)
        self.write_now()
        return self.source

    def store_started(self, store_id: str, total: int | None) -> Meter:
        meter = self.stores.setdefault(store_id, Meter(self, total))
        meter.set_total(total)
        meter.done = 0
        meter.written()
        self.status[store_id] = StoreStatus.IMPORTING
        self.write_now()
        return meter

    def store_ended(self, store_id: str, ok: bool) -> None:
        # A task lost by now is not this store's failure: the copy is recorded (or the step is
        # failing anyway), and the next step's compare-and-set on the task stops the import.
        self.status[store_id] = StoreStatus.DONE if ok else StoreStatus.FAILED
        self.write_now(lost_is_fatal=False)

    def mark_failed(self, store_ids) -> None:
        """Stores the flow's reverts undid (os_glance_failed_import), when the import failed."""
        for store_id in store_ids:
            if store_id in self.status:
                self.status[store_id] = StoreStatus.FAILED

    # -- throttled writes -----------------------------------------------------------

    def tick(self, meter: Meter) -> None:
        """``meter`` moved: write when both throttles allow, or when the heartbeat is due."""
        since = self._clock() - self._last_write
        if since < HEARTBEAT_SECONDS and not (since >= self.interval and meter.step_reached()):
            if meter.step_reached() and self._trailing is None:
                # Held back by the clock only: write it when the interval is up, so a transfer
                # that stalls (a source pausing) does not leave the task showing older numbers.
                self._trailing = self._later(self.interval - since, self._write_trailing)
            return
        # Another thread (a parallel store) writing right now has just recorded this meter too.
        if self._lock.acquire(blocking=False):
            try:
                self._write_locked()
            finally:
                self._lock.release()

    def _write_trailing(self) -> None:
        self._trailing = None
        with self._lock:
            try:
                self._write_locked()
            except errors.Conflict:  # the task ended or was taken over: the import's own writes say so
                pass
            except Exception:  # a database hiccup: the next write or the heartbeat tries again
                LOG.warning("could not write the progress of an import", exc_info=True)

    def cancel(self) -> None:
        trailing, self._trailing = self._trailing, None
        if trailing is not None:
            trailing.cancel()

    def write_now(self, *, lost_is_fatal: bool = True) -> None:
        with self._lock:
            try:
                self._write_locked()
            except errors.Conflict:  # ImportAborted
                if lost_is_fatal:
                    raise

    def _write_locked(self) -> None:
        # The snapshot is taken under the lock and written before it is released, so what the
        # task holds only ever grows, whichever thread writes.
        result = self.result()
        message = self.message()
        self._write(message, result)
        self._last_write = self._clock()
        for meter in self._meters():
            meter.written()

    def _meters(self) -> Iterator[Meter]:
        if self.source is not None:
            yield self.source
        yield from self.stores.values()

    # -- what clients see -----------------------------------------------------------

    def result(self) -> dict[str, Any]:
        view: dict[str, Any] = {}
        if self.source is not None:
            view["source"] = self.source.view()
        view["stores"] = {
            store_id: {"status": str(self.status[store_id]), **meter.view()} for store_id, meter in self.stores.items()
        }
        return {RESULT_KEY: view}

    def message(self) -> str:
        parts = []
        importing = [s for s, status in self.status.items() if status is StoreStatus.IMPORTING]
        if (
            not importing
            and self.source is not None
            and not any(status is not StoreStatus.PENDING for status in self.status.values())
        ):
            parts.append(f"{self.source_verb} {_mib(self.source)}")
        parts += [f"Copied {_mib(self.stores[s])} into {s}" for s in importing]
        done = sum(status is StoreStatus.DONE for status in self.status.values())
        failed = [s for s, status in self.status.items() if status is StoreStatus.FAILED]
        if len(self.status) > 1 or failed:
            parts.append(f"{done} of {len(self.status)} stores done")
        if failed:
            parts.append("failed: " + ",".join(failed))
        return "; ".join(parts)


def _timer(delay: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()
    return timer


def _mib(meter: Meter) -> str:
    if meter.total is None:
        return f"{meter.done // MIB} MiB"
    return f"{meter.done // MIB} of {meter.total // MIB} MiB"


# -- the running imports of this process, by task id --------------------------------

_running: dict[str, ImportProgress] = {}
_running_lock = threading.Lock()


def for_import(env: ImportEnv, plan: ImportPlan) -> ImportProgress:
    """The import's progress (made on first use by any of its steps; ``forget`` drops it)."""
    with _running_lock:
        progress = _running.get(plan.task_id)
        if progress is None:
            progress = ImportProgress(
                _task_writer(env, plan), plan.stores, interval=env.settings.import_progress_interval
            )
            _running[plan.task_id] = progress
        return progress


def forget(task_id: str) -> None:
    with _running_lock:
        progress = _running.pop(task_id, None)
    if progress is not None:
        progress.cancel()


def _task_writer(env: ImportEnv, plan: ImportPlan) -> Callable[[str, dict[str, Any]], None]:
    def write(message: str, result: dict[str, Any]) -> None:
        try:
            env.tasks.update_task(plan.task_id, expected_status="processing", message=message, result=result)
        except errors.Conflict as exc:
            # steps imports this module, so its exception is looked up when it is raised.
            from glancelite.tasks.steps import ImportAborted

            raise ImportAborted(f"Import task {plan.task_id} is no longer processing; stopped.") from exc

    return write


# -- the hooks in the steps -----------------------------------------------------------


def acquiring(env: ImportEnv, plan: ImportPlan, verb: str, total: int | None = None) -> Meter:
    """The meter of the bytes going into staging (web-download, copy-image, glance-download)."""
    return for_import(env, plan).source_meter(verb, total)


@contextlib.contextmanager
def to_store(env: ImportEnv, plan: ImportPlan, store_id: str, total: int | None) -> Iterator[Meter]:
    """The meter of one store's copy: importing while the block runs, done or failed after it.

    The store's data lines in the log say "import" (store/datalog.py) while it runs.
    """
    progress = for_import(env, plan)
    meter = progress.store_started(store_id, total)
    token = datalog.OPERATION.set("import")
    try:
        yield meter
    except BaseException:
        progress.store_ended(store_id, ok=False)
        raise
    finally:
        datalog.OPERATION.reset(token)
    progress.store_ended(store_id, ok=True)


def record_failure(env: ImportEnv, plan: ImportPlan) -> None:
    """A failed import's last word: the stores its reverts undid are failed in the result too."""
    with _running_lock:
        progress = _running.get(plan.task_id)
    if progress is None:
        return
    with contextlib.suppress(errors.NotFound):
        image = env.images.get_image(plan.image_id)
        progress.mark_failed(split_list(image.properties.get(FAILED_PROPERTY)))
    with contextlib.suppress(errors.Conflict, errors.NotFound):
        env.tasks.update_task(plan.task_id, expected_status="failure", result=progress.result())
