"""Tasks whose worker died: how to recognise them and how to undo what they left.

A worker killed mid-import (SIGKILL, OOM, power) cannot run its reverts. Any
other worker can tell, from the task's owner marker in the tasks store, that
the owning process is gone (same host: the pid is dead or was reused); for a
task owned elsewhere it falls back to Glance's age rule (no update for 60
minutes, 120 while pending). ``recover_dead_tasks`` runs when a worker starts;
``is_dead`` also decides whether an import lock may be taken over.

Home: services, beside its one caller, the import service (start-up and lock takeover);
it runs no flow, it settles what a dead flow left behind.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from glancelite import errors, model
from glancelite.db import tasks as tasks_db
from glancelite.tasks import bookkeeping, steps
from glancelite.tasks.plan import IMPORTING_PROPERTY, LOCK_PROPERTY, Method
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)
S = model.ImageStatus
STALE_PROCESSING = timedelta(minutes=60)
STALE_PENDING = timedelta(minutes=120)
# A task's marker is written just after its row; younger files may belong to a task being created.
ORPHAN_GRACE_SECONDS = 60


def is_dead(env: ImportEnv, task: model.Task | None) -> bool:
    """True when the task can no longer finish (missing, finished, expired, or its worker is gone)."""
    if task is None or task.status in tasks_db.FINISHED:
        return True
    now = tasks_db.utcnow()
    if task.expires_at is not None and task.expires_at < now:
        return True
    alive = env.work.owner_alive(task.id)
    if alive is not None:
        return not alive
    age = now - (task.updated_at or task.created_at)
    return age > (STALE_PENDING if task.status == "pending" else STALE_PROCESSING)


def lock_holder(env: ImportEnv, task_id: str) -> model.Task | None:
    try:
        return env.tasks.get_task(task_id)
    except errors.NotFound:
        return None


def recover_dead_tasks(env: ImportEnv) -> list[str]:
    """Fail every unfinished import task whose worker is gone and undo its image changes."""
    recovered = []
    # Every task type this server runs (api_image_import, legacy import) is an import.
    unfinished = env.tasks.unfinished_tasks()
    for task in unfinished:
        if is_dead(env, task):
            if fail_dead_task(env, task, "The worker running this import stopped before it finished."):
                recovered.append(task.id)
    # Working files of tasks that are over (or never got a row) are left-overs of a crash.
    live = {t.id for t in unfinished} - set(recovered)
    for task_id in env.work.task_ids() - live:
        if env.work.age(task_id) > ORPHAN_GRACE_SECONDS:
            env.work.release(task_id)
    return recovered


def remove_finished_work(env: ImportEnv) -> None:
    """With a job board: unfinished imports are claimed again and resumed from the board, so none
    is failed here; only the working files of tasks that are over (or never got a row) go."""
    for task_id in env.work.task_ids():
        task = lock_holder(env, task_id)
        if (task is not None and task.status in tasks_db.FINISHED) or (
            task is None and env.work.age(task_id) > ORPHAN_GRACE_SECONDS
        ):
            env.work.release(task_id)


def _method(task: model.Task) -> str | None:
    req = (task.input or {}).get("import_req") or {}
    return ((req.get("method") or {}) if isinstance(req, dict) else {}).get("name")


def fail_dead_task(env: ImportEnv, task: model.Task, reason: str) -> bool:
    """Mark the task failed (compare-and-set) and put its image back as a failed import leaves it."""
    try:
        failed = env.tasks.update_task(
            task.id,
            status="failure",
            expected_status=("pending", "processing"),
            message=reason,
            ttl_hours=env.settings.task_time_to_live_hours,
        )
    except (errors.Conflict, errors.NotFound):
        return False  # it finished, or another worker settled it first
    env.events.task("task.failure", failed)
    LOG.warning("import task %s: %s", task.id, reason)
    image_id = task.image_id or (task.input or {}).get("image_id")
    stores = list((task.input or {}).get("backend") or [])
    try:
        image = env.images.get_image(image_id) if image_id else None
    except errors.NotFound:
        image = None
    locked = image is not None and image.properties.get(LOCK_PROPERTY) == task.id
    if locked:
        _undo(env, image, stores, is_copy=_method(task) == Method.COPY_IMAGE)
    env.work.release(task.id)
    if locked:  # last: once the lock is gone, everything else is settled
        env.images.release_property_lock(image.id, LOCK_PROPERTY, task.id)
    return True


def _undo(env: ImportEnv, image: model.Image, stores: list[str], *, is_copy: bool) -> None:
    importing = [s for s in bookkeeping.split_list(image.properties.get(IMPORTING_PROPERTY)) if s in stores]
    held = {env.stores.holder_of(loc) for loc in image.locations}
    if not is_copy and image.status in (S.IMPORTING, S.UPLOADING):
        # The image never became active: every copy it has was written by this task.
        for location in image.locations:
            with contextlib.suppress(Exception):
                env.stores.delete_location(location)
            if location.id is not None:
                env.locations.remove_location(image.id, location.id)
        steps.back_to_queued(env, image.id, (S.IMPORTING, S.UPLOADING))
        failed = importing
    else:
        # Copies completed before the crash are whole (a location is recorded only after its data).
        failed = [s for s in importing if s not in held]
    bookkeeping.update_bookkeeping(env, image.id, done=importing, failed=failed)
    env.staging.delete(image.id)
