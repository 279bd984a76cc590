"""Import jobs on a taskflow job board (Redis), run by a conductor in every worker of every node.

With ``[taskflow_jobboard] backend_url`` set, an accepted import is not only queued in the
process: its frozen plan goes into a taskflow flow detail in the database (taskflow's
SQLAlchemy persistence, tables created by our migration ``expand06``), and a job naming that
flow detail is posted to the board. The worker that accepted it claims the job at once and
runs it on its own executor (the caller's credentials, which never leave memory, stay with
it); its claim expires ``claim_expiry`` seconds after it stops being renewed. When a node
dies, the claim lapses and another worker's conductor claims the job, rebuilds the flow from
the job's details (``rebuild_flow``: taskflow loads a flow factory by module path) and the
engine, loaded from the persisted flow detail, skips the steps that completed and resumes or
reverts the rest.

One conductor thread in each gunicorn worker (not one per node): each worker already owns the
process's one executor ([taskflow_executor] max_workers), its stop file check and its drained
stop, so the conductor hands what it claims to that executor and a killed worker's claims
lapse on their own; no extra process to run or supervise.

A job posted by a node that is draining (stop file) is left unclaimed for another node's
conductor; a draining node's conductor claims nothing. While the board cannot be reached, new
imports are refused with 503 and Retry-After; running flows go on (their state is in the
database) and renew their claims once Redis is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime

from taskflow import engines, states
from taskflow import exceptions as tf_exc
from taskflow.conductors.backends import impl_nonblocking
from taskflow.jobs.backends import impl_redis
from taskflow.persistence import models
from taskflow.persistence.backends import impl_sqlalchemy

from glancelite import errors
from glancelite.settings import JobBoardSettings
from glancelite.store import base
from glancelite.tasks import import_flow, runner
from glancelite.tasks.plan import ImportPlan, Method, RemoteImage
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 10
# Seconds before a worker tries again to reach a job board it lost.
RECONNECT_SECONDS = 2.0
# Seconds a job board call may take before the board counts as unreachable.
SOCKET_TIMEOUT = 5.0
# Failures that say the flow's persistence (or the engine's executor) was away, not that the
# import failed: the job is abandoned and resumed, not settled.
TRANSIENT = (tf_exc.StorageFailure, tf_exc.ExecutionFailure)
# A flow in one of these states has nothing left to run (a resumed job only settles it).
ENDED = (states.SUCCESS, states.REVERTED, states.FAILURE)


class StagedElsewhere(errors.Conflict):
    """A glance-direct job whose node-local staged data is on a node that stopped."""


# -- plans in and out of a job's details --------------------------------------------------------


def plan_details(plan: ImportPlan) -> dict:
    """The plan as JSON: everything a node needs to rebuild the flow, never the caller's credentials."""
    remote = None
    if plan.remote is not None:
        remote = {"image_id": plan.remote.image_id, "region": plan.remote.region, "interface": plan.remote.interface}
    return {
        "task_id": plan.task_id,
        "image_id": plan.image_id,
        "method": str(plan.method),
        "stores": list(plan.stores),
        "all_stores_must_succeed": plan.all_stores_must_succeed,
        "uri": plan.uri,
        "remote": remote,
        "source_stores": list(plan.source_stores),
        "owner": plan.owner,
        "request_id": plan.request_id,
        "roles": list(plan.roles),
        "import_plugins": plan.import_plugins,
    }


def plan_from_details(details: dict) -> ImportPlan:
    remote = details.get("remote")
    return ImportPlan(
        task_id=details["task_id"],
        image_id=details["image_id"],
        method=Method(details["method"]),
        stores=tuple(details["stores"]),
        all_stores_must_succeed=details["all_stores_must_succeed"],
        uri=details.get("uri"),
        remote=RemoteImage(**remote) if remote else None,
        source_stores=tuple(details.get("source_stores") or ()),
        owner=details.get("owner"),
        request_id=details.get("request_id"),
        roles=tuple(details.get("roles") or ()),
        import_plugins=details.get("import_plugins", True),
    )


# taskflow rebuilds a flow by importing its factory by name in whatever process claims the job;
# the factory finds that process's collaborators here (one board per worker process).
_process_board: JobBoard | None = None


def rebuild_flow(plan: dict):
    """Flow factory of every import job (module level: taskflow stores its dotted name)."""
    board = _process_board
    if board is None or board.pid != os.getpid():
        raise RuntimeError("no job board in this process to rebuild the import flow with")
    return import_flow.build(board.env, board.plan_for(plan))


# -- the board and its conductor ----------------------------------------------------------------


def redis_conf(url: str, namespace: str) -> dict:
    """taskflow's redis job board configuration from ``redis://[:password@]host[:port][/db]``."""
    parsed = urllib.parse.urlparse(url)
    conf: dict = {
        "namespace": namespace,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
    }
    if parsed.scheme == "unix":
        conf["unix_socket_path"] = parsed.path
    else:
        conf["host"] = parsed.hostname or "127.0.0.1"
        conf["port"] = parsed.port or 6379
        conf["ssl"] = parsed.scheme == "rediss"
        db = parsed.path.strip("/")
        if db:
            conf["db"] = int(db)
    if parsed.username:
        conf["username"] = urllib.parse.unquote(parsed.username)
    if parsed.password:
        conf["password"] = urllib.parse.unquote(parsed.password)
    return conf


class _RedisBoard(impl_redis.RedisJobBoard):
    """taskflow's Redis board whose claims expire unless renewed, and which keeps a freshly posted
    job for the worker that posted it (so the caller's in-memory credentials go with the flow)."""

    def __init__(self, name, conf, *, persistence, claim_expiry: int, me: str):
        super().__init__(name, conf, persistence=persistence)
        self.claim_expiry = claim_expiry
        self.me = me

    def claim(self, job, who, expiry=None):
        return super().claim(job, who, expiry=self.claim_expiry if expiry is None else expiry)

    def iterjobs(self, only_unclaimed=False, ensure_fresh=False):
        for job in super().iterjobs(only_unclaimed=only_unclaimed, ensure_fresh=ensure_fresh):
            if not self._kept_for_another(job):
                yield job

    def _kept_for_another(self, job) -> bool:
        poster = (job.details or {}).get("posted_by")
        if not poster or poster == self.me:
            return False
        created = job.created_on
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return (datetime.now(UTC) - created).total_seconds() < self.claim_expiry


class _Conductor(impl_nonblocking.NonBlockingConductor):
    """taskflow's conductor, claiming only while this worker takes jobs and running each claimed
    job through ``runner.execute`` (the task's bookkeeping) on the worker's executor."""

    def __init__(self, name, board: JobBoard, **kwargs):
        self.owner = board
        super().__init__(
            name,
            board.board,
            persistence=board.persistence,
            engine=board.runner.engine_mode,
            engine_options=board.runner.engine_options(),
            max_simultaneous_jobs=board.runner.max_workers,
            executor_factory=lambda: contextlib.nullcontext(_RunnerExecutor(board)),
            **kwargs,
        )

    def _can_claim_more_jobs(self, job):
        return self.owner.claiming() and super()._can_claim_more_jobs(job)

    def take(self, job) -> bool:
        """Claim a job just posted here and run it now (the same path as the loop's)."""
        try:
            self._jobboard.claim(job, self._name)
        except (tf_exc.UnclaimableJob, tf_exc.NotFound):
            return False
        try:
            future = _RunnerExecutor(self.owner).submit(self._dispatch_job, job)
        except RuntimeError:
            self._try_finish_job(job, False)
            return False
        self._dispatched.add(future)
        future.add_done_callback(lambda f: self._on_job_done(job, f))
        return True

    def _dispatch_job(self, job):
        accepted_here = self.owner.accepted_here(job.details["plan"]["task_id"])
        plan = self.owner.plan_for(job.details["plan"])
        LOG.info("conductor %s claimed the import job of task %s (image %s)", self._name, plan.task_id, plan.image_id)
        self.owner.heartbeat.add(job)
        try:
            if not accepted_here:
                # Claimed from another worker (dead, or draining when it posted): the task's
                # working files are this process's now (the service claimed them on the other).
                self.owner.env.work.claim(plan.task_id)
                # A dead writer's partial files in the shared file stores (this host's dead
                # processes; another host's go when that node starts again, or after a day).
                self.owner.env.stores.remove_orphaned_partials()
                self.owner.drop_unrecorded_copies(plan)
            flow_state = self._flow_detail_from_job(job).state
            return self.owner.run_job(job, plan, flow_state, lambda: self._engine_from_job(job))
        finally:
            self.owner.heartbeat.discard(job)
            self.owner.forget_plan(plan.task_id)

    def _try_finish_job(self, job, consume, trash=False):
        super()._try_finish_job(job, consume, trash)
        if consume or trash:
            self.owner.destroy_book(job)


class _RunnerExecutor:
    """The conductor's executor: the worker's one job executor (refusing when it is closed)."""

    def __init__(self, board: JobBoard):
        self.board = board

    def submit(self, fn, job):
        task_id = (job.details or {}).get("plan", {}).get("task_id", job.uuid)
        try:
            return self.board.runner.track(task_id, fn, job)
        except errors.Unavailable as exc:
            raise RuntimeError(exc.message) from exc


class _Heartbeat:
    """Renews the claims of the jobs this worker runs, every third of their expiry."""

    def __init__(self, expiry: int):
        self.expiry = expiry
        self._jobs: set = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobboard-heartbeat", daemon=True)
        self._thread.start()

    def add(self, job) -> None:
        with self._lock:
            self._jobs.add(job)

    def discard(self, job) -> None:
        with self._lock:
            self._jobs.discard(job)

    def _run(self) -> None:
        while not self._stop.wait(self.expiry / 3):
            with self._lock:
                jobs = list(self._jobs)
            for job in jobs:
                try:
                    job.extend_expiry(self.expiry)
                except Exception as exc:  # Redis away: the flow goes on; renewed once it is back
                    LOG.warning("could not renew the claim on job %s: %s", job.uuid, exc)

    def stop(self) -> None:
        self._stop.set()


class JobBoard:
    """The worker's side of the job board: the import service's runner in job board mode.

    Same face as ``runner.Runner`` for the import service (check_accepting, submit, shutdown).
    """

    def __init__(
        self,
        settings: JobBoardSettings,
        *,
        runner: runner.Runner,
        env: ImportEnv,
        self_url: str | None,
        persistence_connection: str,
        board_factory: Callable[..., impl_redis.RedisJobBoard] = _RedisBoard,
    ):
        self.settings = settings
        self.runner = runner
        self.env = env
        self.self_url = self_url
        self.pid = os.getpid()
        self.flows = import_flow.ImportFlows(env)
        self.name = f"{settings.conductor_name}:{self.pid}"
        self.persistence = impl_sqlalchemy.SQLAlchemyBackend({"connection": persistence_connection})
        self.board = board_factory(
            settings.board_name,
            redis_conf(settings.backend_url or "", settings.board_name),
            persistence=self.persistence,
            claim_expiry=settings.claim_expiry,
            me=self.name,
        )
        self.heartbeat = _Heartbeat(settings.claim_expiry)
        self.conductor = _Conductor(self.name, self)
        self._plans: dict[str, ImportPlan] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="jobboard-conductor", daemon=True)
        runner.before_shutdown.append(self.stop_claiming)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> JobBoard:
        global _process_board
        _process_board = self
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                self.conductor.connect()
                self.conductor.run()
            except Exception as exc:
                LOG.warning("job board %s unreachable (%s); trying again", self.settings.board_name, exc)
                with contextlib.suppress(Exception):
                    self.board.close()
            self._closing.wait(RECONNECT_SECONDS)

    def claiming(self) -> bool:
        """Whether this worker's conductor may claim a job now (not stopping, no stop file)."""
        return not self._closing.is_set() and not self.runner.draining and not self.runner._closed

    def stop_claiming(self) -> None:
        """Claim nothing more; the jobs running on the executor finish (a drained stop)."""
        self._closing.set()
        self.conductor.stop()

    def shutdown(self, wait: bool = True) -> None:
        self.stop_claiming()
        self.runner.shutdown(wait=wait)
        self.heartbeat.stop()
        with contextlib.suppress(Exception):
            self.board.close()

    # -- the import service's face --------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.runner.draining

    def check_accepting(self) -> None:
        """503 + Retry-After when this worker is stopping or the job board cannot be reached."""
        if self.runner._closed:
            self.runner.check_accepting()
        self.ping()

    def ping(self) -> None:
        """One round trip to the board; Unavailable when it cannot be reached."""
        try:
            self._connect()
            self.board._client.ping()
        except Exception as exc:
            LOG.warning("job board %s unreachable: %s", self.settings.board_name, exc)
            raise errors.Unavailable(
                "The import job board cannot be reached; no new import is accepted now. Retry later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from exc

    def _connect(self) -> None:
        with self._lock:
            if not self.board.connected:
                self.board.connect()

    def submit(self, plan: ImportPlan, flows=None) -> None:
        """Persist the flow, post its job, and (unless draining) claim and start it here."""
        self.check_accepting()
        draining = self.runner.draining
        if draining and plan.method is Method.GLANCE_DIRECT and not self.settings.shared_staging:
            self.runner.check_accepting()  # its data is only here: refused (503) as without a board
        with self._lock:
            self._plans[plan.task_id] = plan
        details = plan_details(plan)
        try:
            book = self._save_book(plan, details)
            job = self.board.post(
                f"import-{plan.task_id}",
                book=book,
                details={
                    "flow_uuid": plan.task_id,
                    "plan": details,
                    "posted_by": None if draining else self.name,
                    # Node-local staging: only this node has a glance-direct import's data.
                    "stage_host": self.self_url if plan.method is Method.GLANCE_DIRECT else None,
                },
            )
        except Exception as exc:
            self.forget_plan(plan.task_id)
            LOG.warning("could not post the import job of task %s: %s", plan.task_id, exc)
            raise errors.Unavailable(
                "The import job board cannot be reached; no new import is accepted now. Retry later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from exc
        LOG.info("posted the import job of task %s (image %s)", plan.task_id, plan.image_id)
        if draining or not self.conductor.take(job):
            # Another worker runs it, from the job's details, and claims the working files there.
            self.forget_plan(plan.task_id)
            with contextlib.suppress(OSError):
                self.env.work.release(plan.task_id)

    def _save_book(self, plan: ImportPlan, details: dict) -> models.LogBook:
        book = models.LogBook(f"import-{plan.task_id}")
        flow_detail = models.FlowDetail(f"import-{plan.method}-{plan.image_id}", uuid=plan.task_id)
        engines.save_factory_details(flow_detail, rebuild_flow, [details], {})
        book.add(flow_detail)
        with contextlib.closing(self.persistence.get_connection()) as conn:
            conn.save_logbook(book)
        return book

    def destroy_book(self, job) -> None:
        """The job is over: its flow's persisted state goes too."""
        book = job.book
        if book is None:
            return
        try:
            with contextlib.closing(self.persistence.get_connection()) as conn:
                conn.destroy_logbook(book.uuid)
        except Exception as exc:
            LOG.warning("could not remove the flow state of job %s: %s", job.uuid, exc)

    # -- running a claimed job --------------------------------------------------------------

    def plan_for(self, details: dict) -> ImportPlan:
        """The plan this worker accepted (with the caller's credentials), else the job's copy."""
        with self._lock:
            local = self._plans.get(details["task_id"])
        return local or plan_from_details(details)

    def drop_unrecorded_copies(self, plan: ImportPlan) -> None:
        """A resumed job: an object a dead worker finished writing into a target store but never
        recorded as a location would make the step's second run fail (Duplicate). The image's
        lock keeps every other writer out of these stores for this image, so it goes."""
        try:
            recorded = {loc.url for loc in self.env.images.get_image(plan.image_id).locations}
        except errors.NotFound:
            return
        for store_id in plan.stores:
            try:
                found = self.env.stores.locate(store_id, plan.image_id)
                if found is not None and found.url not in recorded:
                    LOG.warning(
                        "task %s: removing the unrecorded copy its dead worker left in %s", plan.task_id, store_id
                    )
                    self.env.stores.delete(found, context=plan.caller)
            except base.ListingNotSupported:
                continue  # this store cannot be searched by image id: the store audit reports such an object
            except Exception as exc:  # the step's own run reports what is still wrong
                LOG.warning(
                    "task %s: could not check store %s for a dead worker's copy: %s", plan.task_id, store_id, exc
                )

    def accepted_here(self, task_id: str) -> bool:
        """Whether this worker accepted the import (its service claimed the work area)."""
        with self._lock:
            return task_id in self._plans

    def forget_plan(self, task_id: str) -> None:
        with self._lock:
            self._plans.pop(task_id, None)

    def run_job(self, job, plan: ImportPlan, flow_state: str | None, load_engine) -> bool:
        """Run a claimed job; True when it is over (consume), False to leave it for a later claim."""
        try:
            self.env.tasks.get_task(plan.task_id)
        except errors.NotFound:
            return True  # the task went with its image
        except errors.Unavailable:
            return False
        if flow_state in ENDED:
            # The flow ended before its last owner could settle it and take the job off the board.
            with contextlib.suppress(Exception):
                self.flows.finished(plan)
            return True
        flows = _StagedElsewhereFlows(self.env) if self._staged_elsewhere(job, plan) else self.flows
        try:
            runner.execute(plan, flows, load_engine, transient=_transient)
        except BaseException as exc:
            LOG.warning("import job of task %s interrupted (%s); it will be claimed again", plan.task_id, exc)
            return False
        return True

    def _staged_elsewhere(self, job, plan: ImportPlan) -> bool:
        host = (job.details or {}).get("stage_host")
        return (
            plan.method is Method.GLANCE_DIRECT
            and not self.settings.shared_staging
            and bool(host)
            and host != self.self_url
            and self.env.staging.size(plan.image_id) is None
        )


class _StagedElsewhereFlows(import_flow.ImportFlows):
    """The flow fails (no staged data here) and its task says where the data was."""

    def failed(self, plan: ImportPlan, exc: BaseException) -> None:
        super().failed(
            plan,
            StagedElsewhere(
                f"The data staged for image {plan.image_id} is on another node, which stopped before the "
                "import finished; stage the data again and import it."
            ),
        )


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, tf_exc.WrappedFailure):
        return all(f.check(*TRANSIENT) for f in exc)
    return isinstance(exc, TRANSIENT)
