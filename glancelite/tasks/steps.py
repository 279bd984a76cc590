"""The steps of an import flow. Every step with a side effect reverts it.

Data moves: source -> (work file in the tasks store) -> staging file ->
each target store. Nothing partial is ever visible: downloads grow in the
tasks store and are linked into staging only when complete; stores write
through their drivers, which remove partial objects themselves; a step
that fails or is reverted removes what it wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from taskflow import task as tf_task

from glancelite import errors, model
from glancelite.db.repositories import ImageRepository, LocationRepository, MemberRepository, TaskRepository
from glancelite.metrics import Metrics
from glancelite.settings import Settings
from glancelite.store import inspection
from glancelite.store.areas import StagingArea, WorkArea
from glancelite.store.stores import StoreSet
from glancelite.tasks import progress as import_progress
from glancelite.tasks.bookkeeping import image_writes, split_list, update_bookkeeping
from glancelite.tasks.events import ImportEvents, NoEvents, failure_reason
from glancelite.tasks.ingest import Ingest, Ingested
from glancelite.tasks.plan import (
    IMPORTING_PROPERTY,
    LOCK_PROPERTY,
    STAGE_HOST_PROPERTY,
    ImportPlan,
    Method,
)

LOG = logging.getLogger(__name__)
S = model.ImageStatus
COPY_CHUNK = 1 << 20


class ImportAborted(errors.Conflict):
    """The task stopped being ours (declared dead, lock taken over) while it ran."""


@dataclasses.dataclass
class ImportEnv:
    """What every step works with; built once by the composition root (app.build_services)."""

    settings: Settings
    images: ImageRepository
    locations: LocationRepository
    tasks: TaskRepository
    members: MemberRepository
    stores: StoreSet
    staging: StagingArea
    work: WorkArea
    ingest: Ingest  # the one path into a store (tasks/ingest.py)
    events: ImportEvents = dataclasses.field(default_factory=NoEvents)  # Glance's notifications
    metrics: Metrics = dataclasses.field(default_factory=Metrics)  # the process's (app.build_services)


class LockImage(tf_task.Task):
    """Check the task owns the image lock and move the image into ``importing``.

    Revert: the image goes back to ``queued`` (never for copy-image) and the
    target stores move from "importing" to "failed".
    """

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"lock-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self):
        image = self.env.images.get_image(self.plan.image_id)
        if image.properties.get(LOCK_PROPERTY) != self.plan.task_id:
            raise ImportAborted(f"Image {image.id} is no longer locked by task {self.plan.task_id}")
        task = self.env.tasks.update_task(self.plan.task_id, status="processing", expected_status="pending")
        self.env.events.task("task.processing", task)
        if not self.plan.is_copy:
            expected = S.UPLOADING if self.plan.method == Method.GLANCE_DIRECT else S.QUEUED
            importing = self.env.images.update_image(
                image.id,
                expected_status=expected,
                values={"status": S.IMPORTING},
                properties_removed=[STAGE_HOST_PROPERTY],
            )
            self.env.events.image("image.update", importing)
        # The target stores were marked importing when the import was accepted (ImportFlows.accepted).

    def revert(self, *args, **kwargs):
        settle_failure(self.env, self.plan)


def settle_failure(env: ImportEnv, plan: ImportPlan) -> bool:
    """What a failed import leaves: the stores still marked importing are marked failed and the
    image is back in ``queued`` (never for copy-image). False, and nothing done, when another
    task holds the image now: its state is not ours to undo."""
    if not owns_lock(env, plan):
        return False
    with contextlib.suppress(errors.NotFound):
        image = env.images.get_image(plan.image_id)
        still = [s for s in split_list(image.properties.get(IMPORTING_PROPERTY)) if s in plan.stores]
        if still:
            update_bookkeeping(env, plan.image_id, done=still, failed=still)
    if not plan.is_copy:
        back_to_queued(env, plan.image_id, (S.IMPORTING, S.UPLOADING))
    return True


def owns_lock(env: ImportEnv, plan: ImportPlan) -> bool:
    try:
        image = env.images.get_image(plan.image_id)
    except errors.NotFound:
        return False
    return image.properties.get(LOCK_PROPERTY) == plan.task_id


def back_to_queued(env: ImportEnv, image_id: str, from_statuses) -> None:
    """Glance restores ``queued`` after a failed import."""
    env.images.back_to_queued(image_id, from_statuses)


class VerifyStaged(tf_task.Task):
    """The staged bytes are what the image expects: the staged size (glance-direct, copy-image), the cap."""

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"verify-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self, staged_size):
        image = self.env.images.get_image(self.plan.image_id)
        if staged_size > self.env.settings.image_size_cap:
            raise errors.TooLarge(f"Staged data of image {image.id} exceeds the image size cap")
        if self.plan.method != Method.WEB_DOWNLOAD and image.size is not None and image.size != staged_size:
            raise errors.Invalid(f"Staged data of image {image.id} is {staged_size} bytes, expected {image.size}")


class VerifyFormat(tf_task.Task):
    """The staged data is what disk_format says, after the import plugins ran (Glance checks the
    format when the stores get the data, so a decompressed or converted image is what is checked)."""

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"verify-format-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self, staged_size):
        image = self.env.images.get_image(self.plan.image_id)
        if staged_size > self.env.settings.image_size_cap:  # a plugin may have grown the data
            raise errors.TooLarge(f"Staged data of image {image.id} exceeds the image size cap")
        self._check_format(image, staged_size)

    def _check_format(self, image, staged_size: int) -> None:
        """The staged data is what disk_format says and safe (FormatMismatch/UnsafeImage otherwise);
        records its virtual size."""
        staged_inspection = inspection.for_image(
            image.disk_format, image.container_format, inspection.FormatPolicy.from_settings(self.env.settings)
        )
        if staged_inspection is None:
            return
        with self.env.staging.open(image.id) as staged:
            for chunk in staged:
                staged_inspection.feed(chunk)
                if staged_inspection.decided:
                    break
        verdict = staged_inspection.finish(total=staged_size)
        if verdict.virtual_size is not None:
            self.env.images.update_image(image.id, values={"virtual_size": verdict.virtual_size})


class ImportToStore(tf_task.Task):
    """Copy the staged file into one store and record the location.

    ``activate``: the image becomes active with this location (Glance: the last
    store when all must succeed, every store otherwise, never for copy-image).
    A failure re-raises when all stores must succeed, else the store is
    recorded as failed and the flow goes on. Revert: the copy and its location
    are removed and the store recorded as failed.
    """

    def __init__(self, env: ImportEnv, plan: ImportPlan, store_id: str, activate: bool):
        super().__init__(name=f"import-{plan.image_id}-{store_id}")
        self.env, self.plan, self.store_id, self.activate = env, plan, store_id, activate

    def execute(self, staged_size):
        try:
            return self._import(staged_size)
        except ImportAborted:
            raise
        except Exception as exc:
            self.env.events.upload_failed(self.plan.image_id, failure_reason(exc))
            if self.plan.all_stores_must_succeed:
                raise
            LOG.warning("image %s: import into store %s failed: %s", self.plan.image_id, self.store_id, exc)
            update_bookkeeping(self.env, self.plan.image_id, done=[self.store_id], failed=[self.store_id])
            return None

    def _import(self, staged_size: int):
        env, image_id = self.env, self.plan.image_id
        done_before = self._recorded_already()
        if done_before is not None:
            # A resumed job (the job board): the worker that ran this step before died after
            # recording the copy and before taskflow saved the step's result. The image's lock
            # keeps every other import out, and no import targets a store already holding the
            # image, so this location is that run's: the step is done, not a duplicate.
            LOG.info("image %s: store %s already holds this import's copy; step done", image_id, self.store_id)
            update_bookkeeping(env, image_id, done=[self.store_id])
            return {"url": done_before.url, "location_id": done_before.id}
        # Glance's set_data for each store: image.prepare (naming the store), then image.upload
        # and, for the store that makes it active, image.activate.
        env.events.image(
            "image.prepare", env.images.get_image(image_id), backend=self.store_id if env.settings.multi_store else None
        )
        with (
            import_progress.to_store(env, self.plan, self.store_id, staged_size) as progress,
            env.staging.open(image_id) as staged,
        ):
            # user_storage_quota counts every copy, so each store import is checked.
            ingested, location_id, activated = env.ingest.write(
                self.store_id,
                image_id,
                staged,
                size=staged_size,
                owner=self.plan.owner,
                context=self.plan.caller,
                progress=progress.at,
                record=self._record,
            )
        update_bookkeeping(env, image_id, done=[self.store_id])
        with contextlib.suppress(errors.NotFound):  # deleted meanwhile: nothing to report
            image = env.images.get_image(image_id)
            env.events.image("image.upload", image)
            if activated:
                env.events.image("image.activate", image)
        return {"url": ingested.stored.url, "location_id": location_id}

    def _recorded_already(self) -> model.Location | None:
        """This store's active location of the image, when one is recorded already."""
        image = self.env.images.get_image(self.plan.image_id)
        for location in image.locations:
            if location.status == "active" and self.env.stores.holder_of(location) == self.store_id:
                return location
        return None

    def _record(self, ingested: Ingested) -> tuple[Ingested, int, bool]:
        """What was written, the new location's id, and whether this store made the image active."""
        with image_writes(self.plan.image_id):
            return (ingested, *self._record_locked(ingested))

    def _record_locked(self, ingested: Ingested) -> tuple[int, bool]:
        env, image_id, digests = self.env, self.plan.image_id, ingested.digests
        image = env.images.get_image(image_id)
        if image.os_hash_value and image.os_hash_value != digests.os_hash_value:
            raise errors.Invalid(
                f"Data copied to store {self.store_id} does not match the checksum of image {image_id}"
            )
        if self.activate and image.status == S.IMPORTING:
            env.ingest.record_data(image_id, ingested, expected_status=S.IMPORTING)
            image = env.images.get_image(image_id)
            return next(loc.id for loc in image.locations if loc.url == ingested.stored.url), True
        if not image.checksum:
            env.images.update_image(
                image_id,
                expected_status=image.status,
                values={
                    "size": digests.size,
                    "checksum": digests.checksum,
                    "os_hash_algo": digests.os_hash_algo,
                    "os_hash_value": digests.os_hash_value,
                },
            )
        return env.locations.add_location(image_id, ingested.stored.url, env.ingest.location_metadata(ingested)), False

    def revert(self, result=None, *args, **kwargs):
        env, image_id = self.env, self.plan.image_id
        if isinstance(result, dict):
            env.locations.remove_location(image_id, result["location_id"])
            env.ingest.discard(self.store_id, result["url"], self.plan.caller)
            with image_writes(image_id), contextlib.suppress(errors.NotFound):
                image = env.images.get_image(image_id)
                if not image.locations and image.status == S.IMPORTING:
                    back_to_queued(env, image_id, (S.IMPORTING,))
        update_bookkeeping(env, image_id, done=[self.store_id], failed=[self.store_id])


class ActivateImage(tf_task.Task):
    """Parallel store imports when all must succeed: the image becomes active once every store has it.

    (Sequentially the last store activates it.) Revert: back to ``importing``, so the store
    reverts that follow return it to ``queued``.
    """

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"activate-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self):
        with image_writes(self.plan.image_id):
            image = self.env.images.get_image(self.plan.image_id)
            if image.status == S.IMPORTING and image.checksum and image.locations:
                active = self.env.images.update_image(
                    image.id, expected_status=S.IMPORTING, values={"status": S.ACTIVE}
                )
                self.env.events.image("image.activate", active)

    def revert(self, *args, **kwargs):
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.env.images.update_image(self.plan.image_id, expected_status=S.ACTIVE, values={"status": S.IMPORTING})


class CompleteTask(tf_task.Task):
    """The image must be active (not for copy-image); the task succeeds, and its working files and
    the image lock go with it at once: whoever sees the task succeeded (a client, the store audit)
    finds nothing of it left, while taskflow saving the flow's end and the runner's bookkeeping
    still follow. The staged data went just before (DeleteStaged), as in Glance's flow."""

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"complete-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self):
        env, plan = self.env, self.plan
        image = env.images.get_image(plan.image_id)
        if not plan.is_copy and image.status != S.ACTIVE:
            raise errors.Conflict("None of the uploads finished!")
        try:
            task = env.tasks.update_task(
                plan.task_id,
                status="success",
                expected_status="processing",
                result={"image_id": image.id},
                message="",
                ttl_hours=env.settings.task_time_to_live_hours,
            )
        except errors.Conflict:
            # A resumed job (the job board): the worker that ran this step died after the task
            # succeeded and before taskflow saved the step. Done already; failing now would revert
            # the stores' copies of a successful import.
            if env.tasks.get_task(plan.task_id).status != "success":
                raise
            task = None
        env.work.release(plan.task_id)
        env.images.release_property_lock(image.id, LOCK_PROPERTY, plan.task_id)
        if task is not None:
            env.events.task("task.success", task)


class DeleteStaged(tf_task.Task):
    """Remove the staged data once every store has its copy (best effort: the copies are recorded)."""

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"unstage-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self):
        try:
            self.env.staging.delete(self.plan.image_id)
        except errors.GlanceliteError as exc:
            LOG.warning("staged data of image %s not removed: %s", self.plan.image_id, exc.message)
