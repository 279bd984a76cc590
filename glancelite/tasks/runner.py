"""The one import executor of a process, and the stop file.

Spec-lite "Introduce Glance Taskflow stopfile feature" (proposed for Glance,
never implemented there): a process keeps ONE executor for every import job
instead of one per request, so its size ([taskflow_executor] max_workers)
bounds the work a node does, and a node can be drained: while the file at
[healthcheck] disable_by_file_path exists the runner takes no new job
(``Unavailable`` -> 503 with Retry-After, so a balancer or client retries
elsewhere) but lets running jobs finish; removing the file resumes work with
no restart. /healthcheck answers 503 from the same file at the same time.

taskflow binds an engine to one flow, so "one engine" means one engine
*kind* (serial or parallel, [taskflow_executor] engine_mode) loaded per job
on the shared executors: ``_jobs`` runs each engine, ``_atoms`` runs the
atoms of parallel engines.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Protocol

from glancelite import errors
from glancelite.context import carrying_log_context
from glancelite.tasks.plan import ImportPlan

LOG = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30


class FlowFactory(Protocol):
    """Turns a plan into a taskflow flow and settles the task when it ends."""

    def build(self, plan: ImportPlan): ...

    def started(self, plan: ImportPlan) -> None: ...

    def failed(self, plan: ImportPlan, exc: BaseException) -> None: ...

    def finished(self, plan: ImportPlan) -> None: ...

    def ended(self, plan: ImportPlan, outcome: str, seconds: float) -> None:
        """After ``finished``: "succeeded", "reverted" (failed, every step undone) or "failed"."""


@contextlib.contextmanager
def _eventlet_kept_out():
    """Import with eventlet looking absent (futurist and taskflow take it only when they find it).

    eventlet is installed only because oslo.service requires it; glancelite runs OS threads. Its
    import re-runs threading's module set-up (eventlet.patcher.original), which gives the importing
    thread a new shutdown lock: imported from a request thread, that thread never counts as ended,
    and the worker hangs at exit until gunicorn kills it. It also costs ~35 MiB a worker. Where
    eventlet is already loaded (oslo.messaging, for notifications, imports it at start-up in the
    main thread) there is nothing to keep out."""
    if "eventlet" in sys.modules:
        yield
        return
    sys.modules["eventlet"] = None  # `import eventlet` raises ImportError while this is here
    try:
        yield
    finally:
        if sys.modules.get("eventlet", False) is None:
            del sys.modules["eventlet"]


@functools.cache
def _executor_class():
    """futurist's thread pool, loaded when the first import job runs (not at start, to keep every
    worker small) and possibly in a request thread, so without eventlet."""
    with _eventlet_kept_out():
        import futurist

    class LogContextExecutor(futurist.ThreadPoolExecutor):
        """Each job and atom runs under the log context of whoever submitted it: the request that
        started the import (none for a recovery at start-up)."""

        def submit(self, fn, *args, **kwargs):
            return super().submit(carrying_log_context(fn), *args, **kwargs)

    return LogContextExecutor


@functools.cache
def _engines():
    """taskflow's engines, loaded as _executor_class is; the action engine too, which stevedore
    would otherwise import by name later, in a job thread."""
    with _eventlet_kept_out():
        from taskflow import engines
        from taskflow.engines.action_engine import engine as _action_engines  # noqa: F401

    return engines


class Runner:
    def __init__(self, *, max_workers: int = 10, engine_mode: str = "parallel", stop_file: str | None = None):
        if engine_mode not in ("serial", "parallel"):
            raise ValueError(f"engine_mode must be serial or parallel, not {engine_mode!r}")
        self.max_workers = max_workers
        self.engine_mode = engine_mode
        self.stop_file = stop_file
        # The executors (and futurist, taskflow's engines) come with the first job.
        self._jobs = None
        self._atoms = None
        self._lock = threading.Lock()
        self._executors_lock = threading.Lock()  # apart: submit() creates them holding _lock
        self._running: dict[str, futures.Future] = {}
        self._closed = False
        self.pid = os.getpid()
        self.before_shutdown: list[Callable[[], None]] = []

    # -- the stop file -------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return bool(self.stop_file) and os.path.exists(self.stop_file)

    def check_accepting(self) -> None:
        """Raise Unavailable (503 + Retry-After) when this node must not start new jobs."""
        if self._closed:
            raise errors.Unavailable(
                "This node is shutting down and starts no new import; retry on another node.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if self.draining:
            raise errors.Unavailable(
                f"This node is being drained (stop file {self.stop_file} exists) and starts no new "
                "import; imports already running will finish. Retry later or on another node.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    # -- jobs ----------------------------------------------------------------------

    def submit(self, plan: ImportPlan, flows: FlowFactory) -> futures.Future:
        """Queue one import job; refuses (Unavailable) while draining or closed."""
        return self.track(plan.task_id, self._run, plan, flows)

    def track(self, task_id: str, fn: Callable, *args) -> futures.Future:
        """Run ``fn(*args)`` as the job of ``task_id`` on the job executor (the job board's conductor
        runs the jobs it claims here too, so max_workers and a drained stop cover them)."""
        with self._lock:
            self.check_accepting()
            future = self._executors()[0].submit(fn, *args)
            self._running[task_id] = future
        future.add_done_callback(lambda _f: self._forget(task_id))
        return future

    def _executors(self):
        """(jobs, atoms) executors, created on first use; atoms is None for the serial engine."""
        with self._executors_lock:
            if self._jobs is None:
                executor = _executor_class()
                self._jobs = executor(max_workers=self.max_workers)
                self._atoms = executor(max_workers=self.max_workers) if self.engine_mode == "parallel" else None
            return self._jobs, self._atoms

    def _forget(self, task_id: str) -> None:
        with self._lock:
            self._running.pop(task_id, None)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def _run(self, plan: ImportPlan, flows: FlowFactory) -> None:
        execute(plan, flows, lambda: self._load(flows.build(plan)))

    def engine_options(self) -> dict:
        """The executor every engine of this process runs its atoms with (none for the serial engine)."""
        atoms = self._executors()[1]
        return {"executor": atoms} if atoms is not None else {}

    def run_flow(self, flow, store: dict | None = None) -> None:
        """Run a flow on the shared executors (every job, and tests, come through here)."""
        self._load(flow, store).run()

    def _load(self, flow, store: dict | None = None):
        return _engines().load(flow, store=store or {}, engine=self.engine_mode, **self.engine_options())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the jobs running now; True when all finished in time."""
        with self._lock:
            pending = list(self._running.values())
        done, not_done = futures.wait(pending, timeout=timeout)
        return not not_done

    def shutdown(self, wait: bool = True) -> None:
        """Take no new job; with ``wait`` let the running ones finish (a drained stop)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for hook in self.before_shutdown:
            hook()  # the job board's conductor stops claiming before the executor stops
        with self._executors_lock:
            jobs, atoms = self._jobs, self._atoms
        if jobs is not None:
            jobs.shutdown(wait=wait)
        if atoms is not None:
            atoms.shutdown(wait=wait)
        _forget_process_runner(self)


def execute(
    plan: ImportPlan,
    flows: FlowFactory,
    load_engine: Callable[[], object],
    *,
    transient: Callable[[BaseException], bool] = lambda _exc: False,
) -> None:
    """Run one import job's engine and settle its task: the one path of the in-process executor and
    of the job board's conductors. An exception ``transient`` accepts (the flow's persistence is
    away) propagates without settling: the job is resumed later, here or on another node."""
    started = time.monotonic()
    outcome = "succeeded"
    engine = None
    bookkeeping: list[tuple[str, Callable[[], None]]] = []
    try:
        flows.started(plan)
        engine = load_engine()
        engine.run()
    except BaseException as exc:
        if transient(exc):
            raise
        from taskflow import states

        # taskflow ends a flow REVERTED when every step that ran was undone, FAILURE when a revert failed.
        reverted = engine is not None and engine.storage.get_flow_state() == states.REVERTED
        outcome = "reverted" if reverted else "failed"
        LOG.warning("import task %s of image %s failed: %s", plan.task_id, plan.image_id, exc)
        bookkeeping.append(("record the failure of", functools.partial(flows.failed, plan, exc)))
    bookkeeping.append(("clean up after", functools.partial(flows.finished, plan)))
    left = _settle(plan, bookkeeping)
    if left:
        # The database went away (usually why the task failed): the task would stay
        # processing and the image locked under an owner that is alive, which no
        # start-up recovery touches, so this process keeps trying until it answers.
        _settle_in_background(plan, left)
    flows.ended(plan, outcome, time.monotonic() - started)


# Seconds between tries of a task's bookkeeping while the database is away.
SETTLE_RETRY_FIRST, SETTLE_RETRY_MAX = 1.0, 10.0


def _settle(plan: ImportPlan, steps: list[tuple[str, Callable[[], None]]]) -> list[tuple[str, Callable[[], None]]]:
    """Run a finished task's bookkeeping in order; what is left when the database (or a store) is away."""
    for index, (what, step) in enumerate(steps):
        try:
            step()
        except errors.Unavailable as exc:
            LOG.warning("could not %s task %s now (%s); retrying", what, plan.task_id, exc.message)
            return steps[index:]
        except Exception:
            LOG.exception("could not %s task %s", what, plan.task_id)
    return []


def _settle_in_background(plan: ImportPlan, steps: list[tuple[str, Callable[[], None]]]) -> None:
    def retry() -> None:
        left, delay = steps, SETTLE_RETRY_FIRST
        while left:
            time.sleep(delay)
            left = _settle(plan, left)
            delay = min(delay * 2, SETTLE_RETRY_MAX)
        LOG.info("task %s settled after the outage", plan.task_id)

    # A daemon thread: if this process ends first, the next worker's start-up recovery does it.
    threading.Thread(target=carrying_log_context(retry), name=f"settle-{plan.task_id}", daemon=True).start()


_process_lock = threading.Lock()
_process_runner: Runner | None = None


def for_process(
    *, max_workers: int, engine_mode: str, stop_file: str | None, factory: Callable[..., Runner] = Runner
) -> Runner:
    """The process's single runner (created on first use; a forked child makes its own)."""
    global _process_runner
    with _process_lock:
        current = _process_runner
        if current is None or current.pid != os.getpid() or current._closed:
            current = factory(max_workers=max_workers, engine_mode=engine_mode, stop_file=stop_file)
            _process_runner = current
            # A worker that exits gracefully (gunicorn SIGTERM) lets its running imports
            # finish first; the executor's threads are daemons and would die mid-copy.
            atexit.register(_drain_at_exit, current)
        return current


def drain_process_runner() -> None:
    """Let this process's running imports finish and take no new one (gunicorn's worker_exit hook).

    Called while the interpreter still runs normally: by the time atexit handlers run,
    concurrent.futures refuses new work ("cannot schedule new futures after interpreter
    shutdown"), which an import still under way needs (the s3 driver's part uploads).
    """
    with _process_lock:
        current = _process_runner
    if current is not None:
        _drain_at_exit(current)


def _drain_at_exit(runner: Runner) -> None:
    if runner.pid == os.getpid() and not runner._closed:
        running = runner.running()
        if running:
            LOG.info("waiting for %d running import(s) before exiting", len(running))
        runner.shutdown(wait=True)


def _forget_process_runner(runner: Runner) -> None:
    global _process_runner
    with _process_lock:
        if _process_runner is runner:
            _process_runner = None
