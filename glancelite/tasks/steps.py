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
import time

from taskflow import task as tf_task

from glancelite import errors, model
from glancelite.db.repositories import ImageRepository, LocationRepository, MemberRepository, TaskRepository
from glancelite.metrics import Metrics
from glancelite.settings import Settings
from glancelite.store import acls as store_acls
from glancelite.store import base, inspection
from glancelite.store.areas import StagingArea, WorkArea
from glancelite.store.stores import StoreSet
from glancelite.store.streams import HashingReader
from glancelite.tasks.bookkeeping import image_writes, split_list, update_bookkeeping
from glancelite.tasks.events import ImportEvents, NoEvents
from glancelite.tasks.plan import (
    IMPORTING_PROPERTY,
    LOCK_PROPERTY,
    STAGE_HOST_PROPERTY,
    ImportPlan,
    Method,
)

LOG = logging.getLogger(__name__)
S = model.ImageStatus
MIB = 1 << 20
PROGRESS_EVERY = 5.0  # seconds between "Copied N MiB" updates (also the task's heartbeat)
COPY_CHUNK = 1 << 20


def _reason(exc: Exception) -> str:
    """What an image.upload error notification says: our own message, never a driver's text."""
    if isinstance(exc, errors.GlanceliteError):
        return exc.public_message
    return f"internal error ({type(exc).__name__})"


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
    events: ImportEvents = dataclasses.field(default_factory=NoEvents)  # Glance's notifications
    metrics: Metrics = dataclasses.field(default_factory=Metrics)  # the process's (app.build_services)


class Progress:
    """Writes "Copied N MiB" to the task now and then; aborts when the task is no longer ours."""

    def __init__(self, env: ImportEnv, plan: ImportPlan, what: str):
        self.env, self.plan, self.what = env, plan, what
        self.copied = 0
        self._last = time.monotonic()

    def add(self, n: int) -> None:
        self.copied += n
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY:
            self._last = now
            self.report()

    def report(self) -> None:
        try:
            self.env.tasks.update_task(
                self.plan.task_id,
                expected_status="processing",
                message=f"{self.what} {self.copied // MIB} MiB",
            )
        except errors.Conflict as exc:
            raise ImportAborted(f"Import task {self.plan.task_id} is no longer processing; stopped.") from exc


class _ProgressReader:
    def __init__(self, source, progress: Progress):
        self.source, self.progress = source, progress

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size if size and size > 0 else COPY_CHUNK)
        self.progress.add(len(data))
        return data


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
        update_bookkeeping(self.env, image.id, importing=self.plan.stores, unfail=self.plan.stores)

    def revert(self, *args, **kwargs):
        image_id = self.plan.image_id
        if not owns_lock(self.env, self.plan):
            return  # another task holds the image now; its state is not ours to undo
        with contextlib.suppress(errors.NotFound):
            image = self.env.images.get_image(image_id)
            still = [s for s in split_list(image.properties.get(IMPORTING_PROPERTY)) if s in self.plan.stores]
            update_bookkeeping(self.env, image_id, done=still, failed=still)
        if not self.plan.is_copy:
            back_to_queued(self.env, image_id, (S.IMPORTING, S.UPLOADING))


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
            self.env.events.upload_failed(self.plan.image_id, _reason(exc))
            if self.plan.all_stores_must_succeed:
                raise
            LOG.warning("image %s: import into store %s failed: %s", self.plan.image_id, self.store_id, exc)
            update_bookkeeping(self.env, self.plan.image_id, done=[self.store_id], failed=[self.store_id])
            return None

    def _import(self, staged_size: int):
        env, image_id = self.env, self.plan.image_id
        progress = Progress(env, self.plan, "Copied")
        stored = None
        # Glance's set_data for each store: image.prepare (naming the store), then image.upload
        # and, for the store that makes it active, image.activate.
        env.events.image(
            "image.prepare", env.images.get_image(image_id), backend=self.store_id if env.settings.multi_store else None
        )
        with (
            env.staging.open(image_id) as staged,
            HashingReader(
                _ProgressReader(staged, progress),
                hashing_algorithm=env.settings.hashing_algorithm,
                size_cap=env.settings.image_size_cap,
                quota_remaining=self._quota_remaining(),
                expected_size=staged_size,
            ) as reader,
        ):
            stored = env.stores.write(self.store_id, image_id, reader, staged_size, context=self.plan.caller)
            try:
                digests = reader.digests()
                location_id, activated = self._record(stored, digests)
            except BaseException:
                self._discard(stored)
                raise
        update_bookkeeping(env, image_id, done=[self.store_id])
        with contextlib.suppress(errors.NotFound):  # deleted meanwhile: nothing to report
            image = env.images.get_image(image_id)
            env.events.image("image.upload", image)
            if activated:
                env.events.image("image.activate", image)
        if env.stores.keeps_acls(model.Location(url=stored.url, metadata={"store": self.store_id})):
            with contextlib.suppress(errors.NotFound):
                store_acls.sync(env.stores, env.members, self.plan.caller, env.images.get_image(image_id))
        return {"url": stored.url, "location_id": location_id}

    def _quota_remaining(self) -> int | None:
        """[DEFAULT] user_storage_quota counts every copy, so each store import is checked."""
        quota = self.env.settings.user_storage_quota
        if quota <= 0 or self.plan.owner is None:
            return None
        return quota - self.env.locations.storage_used(self.plan.owner)

    def _record(self, stored: base.StoredObject, digests) -> tuple[int, bool]:
        """The new location's id, and whether this store made the image active."""
        with image_writes(self.plan.image_id):
            return self._record_locked(stored, digests)

    def _record_locked(self, stored: base.StoredObject, digests) -> tuple[int, bool]:
        env, image_id = self.env, self.plan.image_id
        metadata = env.stores.location_metadata(self.store_id, stored)
        image = env.images.get_image(image_id)
        if image.os_hash_value and image.os_hash_value != digests.os_hash_value:
            raise errors.Invalid(
                f"Data copied to store {self.store_id} does not match the checksum of image {image_id}"
            )
        if self.activate and image.status == S.IMPORTING:
            env.locations.finish_upload(
                image_id,
                url=stored.url,
                metadata=metadata,
                size=digests.size,
                checksum=digests.checksum,
                os_hash_algo=digests.os_hash_algo,
                os_hash_value=digests.os_hash_value,
                expected_status=S.IMPORTING,
                target_status=S.ACTIVE,
            )
            image = env.images.get_image(image_id)
            return next(loc.id for loc in image.locations if loc.url == stored.url), True
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
        return env.locations.add_location(image_id, stored.url, metadata), False

    def _discard(self, stored: base.StoredObject) -> None:
        try:
            self.env.stores.delete(
                model.Location(url=stored.url, metadata={"store": self.store_id}), context=self.plan.caller
            )
        except Exception:
            LOG.exception("could not remove the copy of image %s in store %s", self.plan.image_id, self.store_id)

    def revert(self, result=None, *args, **kwargs):
        env, image_id = self.env, self.plan.image_id
        if isinstance(result, dict):
            env.locations.remove_location(image_id, result["location_id"])
            self._discard(base.StoredObject(url=result["url"], size=0))
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
    """The image must be active (not for copy-image); the task succeeds and the lock is dropped."""

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"complete-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self):
        image = self.env.images.get_image(self.plan.image_id)
        if not self.plan.is_copy and image.status != S.ACTIVE:
            raise errors.Conflict("None of the uploads finished!")
        task = self.env.tasks.update_task(
            self.plan.task_id,
            status="success",
            expected_status="processing",
            result={"image_id": image.id},
            message="",
            ttl_hours=self.env.settings.task_time_to_live_hours,
        )
        self.env.images.release_property_lock(image.id, LOCK_PROPERTY, self.plan.task_id)
        self.env.events.task("task.success", task)


class DeleteStaged(tf_task.Task):
    """Remove the staged data once every store has its copy (best effort: the task already succeeded)."""

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"unstage-{plan.image_id}")
        self.env, self.plan = env, plan

    def execute(self):
        try:
            self.env.staging.delete(self.plan.image_id)
        except OSError as exc:
            LOG.warning("staged data of image %s not removed: %s", self.plan.image_id, exc)
