"""The one import-flow builder: a frozen plan in, a linear taskflow flow out.

lock -> acquire data (glance-download: remote metadata, then download) ->
verify -> import plugins ([image_import_opts]; not for copy-image) -> verify format ->
import into each store -> complete -> delete staged data.
taskflow reverts every step that ran, newest first, when one fails;
``ImportFlows.failed`` then records the reason in the task and ``finished``
drops the lock and the task's working files whatever happened. The flow
factory is the one owner of an import's working state: it claims the work
area and starts the bookkeeping once the service holds the image lock
(``accepted``), and releases both (``finished``, or ``refused``).
"""

from __future__ import annotations

import contextlib
import logging

from glancelite import errors
from glancelite.tasks import glance_download, methods, plugins, steps
from glancelite.tasks import progress as import_progress
from glancelite.tasks.bookkeeping import update_bookkeeping
from glancelite.tasks.plan import LOCK_PROPERTY, ImportPlan, Method
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)


def build(env: ImportEnv, plan: ImportPlan):
    # taskflow's patterns bring networkx (~11 MiB): imported by the first import, not by every worker.
    from taskflow.patterns import linear_flow

    flow = linear_flow.Flow(f"import-{plan.method}-{plan.image_id}")
    flow.add(steps.LockImage(env, plan))
    if plan.method is Method.GLANCE_DOWNLOAD:
        flow.add(glance_download.ImportMetadata(env, plan), glance_download.DownloadRemote(env, plan))
    else:
        flow.add(methods.AcquireData(env, plan))
    flow.add(steps.VerifyStaged(env, plan))
    if not plan.is_copy:  # a copy's data was checked when the image got it; Glance runs no plugin for it
        if plan.import_plugins:
            flow.add(*plugins.tasks(env, plan))
        flow.add(steps.VerifyFormat(env, plan))
    parallel = min(env.settings.max_parallel_stores, len(plan.stores))
    if parallel > 1:
        _add_parallel_stores(flow, env, plan, parallel)
    else:
        for index, store_id in enumerate(plan.stores):
            last = index == len(plan.stores) - 1
            # Glance's set_active: never for copy-image; every store when partial success is
            # acceptable; otherwise only the last one, so a failure before it leaves nothing active.
            activate = not plan.is_copy and (last or not plan.all_stores_must_succeed)
            flow.add(steps.ImportToStore(env, plan, store_id, activate))
    flow.add(steps.DeleteStaged(env, plan), steps.CompleteTask(env, plan))
    return flow


def _add_parallel_stores(flow, env: ImportEnv, plan: ImportPlan, parallel: int) -> None:
    """[image_import_opts] max_parallel_stores: ``parallel`` chains of store imports run side by side.

    No store can be "the last", so when all must succeed none activates the image: ActivateImage
    does once they all have it (a failure reverts every copy, as sequentially).
    """
    from taskflow.patterns import linear_flow, unordered_flow

    chains = [linear_flow.Flow(f"stores-{plan.image_id}-{i}") for i in range(parallel)]
    activate_each = not plan.is_copy and not plan.all_stores_must_succeed
    for index, store_id in enumerate(plan.stores):
        chains[index % parallel].add(steps.ImportToStore(env, plan, store_id, activate_each))
    flow.add(unordered_flow.Flow(f"stores-{plan.image_id}").add(*chains))
    if not plan.is_copy and plan.all_stores_must_succeed:
        flow.add(steps.ActivateImage(env, plan))


def failure_message(exc: BaseException) -> str:
    if isinstance(exc, errors.GlanceliteError):
        return exc.public_message
    # taskflow wraps several failures; show the first real cause.
    causes = getattr(exc, "causes", None) or ()
    for cause in causes:
        inner = getattr(cause, "exception", None)
        if isinstance(inner, errors.GlanceliteError):
            return inner.public_message
    return f"Task failed due to Internal Error: {exc}"


class TaskFlows:
    """What the runner's FlowFactory does for every task kind, and the one owner of a task's
    working state: ``accepted`` claims the task's work area when the service has taken the
    image lock, ``failed`` records a failure on the task, and ``finished`` (or ``refused``,
    when the runner never took the job) releases the image lock and the work area."""

    def __init__(self, env: ImportEnv):
        self.env = env

    def accepted(self, plan) -> None:
        """The service holds the image lock for the task: the task is this process's from now on,
        so a worker that dies before the job even starts is recognised (import_recovery.is_dead)."""
        self.env.work.claim(plan.task_id)

    def refused(self, plan) -> None:
        """The runner did not take the accepted job (draining, shutting down): undo ``accepted``."""
        self.finished(plan)

    def started(self, plan) -> None:
        """Only imports are counted (ImportFlows)."""

    def failed(self, plan, exc: BaseException) -> None:
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            task = self.env.tasks.update_task(
                plan.task_id,
                status="failure",
                expected_status=("pending", "processing"),
                message=failure_message(exc),
                ttl_hours=self.env.settings.task_time_to_live_hours,
            )
            self.env.events.task("task.failure", task)  # Glance sends it at INFO, like the other task events

    def finished(self, plan) -> None:
        with contextlib.suppress(errors.NotFound):  # the image was deleted: its lock went with it
            self.env.images.release_property_lock(plan.image_id, LOCK_PROPERTY, plan.task_id)
        self.env.work.release(plan.task_id)

    def ended(self, plan, outcome: str, seconds: float) -> None:
        """Only imports are counted (ImportFlows)."""


class ImportFlows(TaskFlows):
    """The runner's FlowFactory for api_image_import tasks."""

    def build(self, plan: ImportPlan):
        return build(self.env, plan)

    def accepted(self, plan: ImportPlan) -> None:
        super().accepted(plan)
        # Bookkeeping starts with the request, not when a worker picks the job up, so a
        # client polling os_glance_importing_to_stores never sees a finished-looking image.
        update_bookkeeping(self.env, plan.image_id, importing=plan.stores, unfail=plan.stores)

    def refused(self, plan: ImportPlan) -> None:
        update_bookkeeping(self.env, plan.image_id, done=plan.stores)
        super().refused(plan)

    def started(self, plan: ImportPlan) -> None:
        self.env.metrics.import_started(str(plan.method), plan.stores)

    def ended(self, plan: ImportPlan, outcome: str, seconds: float) -> None:
        self.env.metrics.import_finished(str(plan.method), plan.stores, outcome, seconds)

    def finished(self, plan: ImportPlan) -> None:
        try:
            super().finished(plan)
        finally:
            import_progress.forget(plan.task_id)

    def failed(self, plan: ImportPlan, exc: BaseException) -> None:
        super().failed(plan, exc)
        # What the first step's revert does, again: a failure before the flow started ran no
        # revert, and the database may have been away when it ran. Then staged data goes
        # (reverts already removed it otherwise).
        settled = steps.settle_failure(self.env, plan)
        import_progress.record_failure(self.env, plan)  # after the failed stores are recorded
        if settled:
            self.env.staging.delete(plan.image_id)
