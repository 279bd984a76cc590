"""The ``location_import`` task of the location API (v2.17): add a location, hash its data, activate.

The order follows Glance's location_import flow:

* hash with validation_data: add location -> hash (image ``importing``) ->
  compare with validation_data -> ``active``;
* hash without validation_data: add location -> ``active`` -> hash (the
  image is usable while its hash is computed; a read failure then only logs);
* no hash: add location -> (validation_data copied onto the image) -> ``active``.

Hashing streams the location's data through the one ingest path's reader
(tasks/ingest.py: the store's reader and the hashing reader), never holding it whole. While it reads, it looks at the
database every second: the image deleted (by any worker), the lock taken
over or the task no longer processing cancels it. A failure reverts the
image to ``queued`` without hashes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any

from taskflow import task as tf_task

from glancelite import errors, model
from glancelite.store import base
from glancelite.tasks.import_flow import TaskFlows
from glancelite.tasks.plan import LOCK_PROPERTY
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)
S = model.ImageStatus
TASK_TYPE = "location_import"
HASH_OP_HOST_PROPERTY = "os_glance_hash_op_host"
READ_CHUNK = 1 << 20
CANCEL_POLL_SECONDS = 1.0


class HashCalculationCanceled(errors.Conflict):
    """The image was deleted (or the task taken over) while its hash was computed."""


class HashCalculationFailed(errors.Invalid):
    """The location's data could not be read, after every retry."""


@dataclasses.dataclass(frozen=True)
class LocationPlan:
    """What the service decided for one POST /v2/images/{id}/locations."""

    task_id: str
    image_id: str
    url: str
    store_id: str
    metadata: dict[str, Any]  # what the location row records ({"store": id} in multi-store mode)
    validation_data: dict[str, str]  # {} or {"os_hash_algo", "os_hash_value"}
    hashing_algorithm: str
    do_secure_hash: bool
    http_retries: int
    keep_location_on_failure: bool  # COMPAT: Glance never removes an http location it added

    def task_input(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "loc_url": self.url, "validation_data": dict(self.validation_data)}

    @property
    def location(self) -> model.Location:
        return model.Location(url=self.url, metadata={**self.metadata, "store": self.store_id})


class _Step(tf_task.Task):
    def __init__(self, env: ImportEnv, plan: LocationPlan, what: str):
        super().__init__(name=f"{TASK_TYPE}-{what}-{plan.task_id}")
        self.env, self.plan = env, plan

    def image(self) -> model.Image:
        return self.env.images.get_image(self.plan.image_id)

    def back_to_queued(self, *, clear_hashes: bool) -> None:
        """Undo for every step: an image not yet active returns to ``queued``; its location goes (not http's)."""
        with contextlib.suppress(errors.NotFound):
            image = self.image()
            if image.status == S.ACTIVE or image.properties.get(LOCK_PROPERTY) != self.plan.task_id:
                return  # active: the location was usable before hashing; not ours: another task's state
            values: dict[str, Any] = {"os_hash_algo": None}
            if clear_hashes:
                values.update(checksum=None, os_hash_value=None)
            if image.status in (S.IMPORTING, S.QUEUED):
                values["status"] = S.QUEUED
                if not self.plan.keep_location_on_failure:
                    for location in image.locations:
                        if location.url == self.plan.url and location.id is not None:
                            self.env.locations.remove_location(image.id, location.id)
                    values["size"] = None
            with contextlib.suppress(errors.Conflict):
                self.env.images.update_image(image.id, expected_status=image.status, values=values)


class CheckLock(_Step):
    """The task still owns the image lock; the task starts processing."""

    def __init__(self, env, plan):
        super().__init__(env, plan, "lock")

    def execute(self):
        if self.image().properties.get(LOCK_PROPERTY) != self.plan.task_id:
            raise HashCalculationCanceled(f"Image {self.plan.image_id} is no longer locked by task {self.plan.task_id}")
        self.env.tasks.update_task(self.plan.task_id, status="processing", expected_status="pending")


class AddLocation(_Step):
    """Record the location and the image size the store reports for it."""

    def __init__(self, env, plan):
        super().__init__(env, plan, "add-location")

    def execute(self):
        try:
            size = self.env.stores.get_size(self.plan.location)
        except (errors.NotFound, errors.Invalid) as exc:
            raise errors.Invalid(f"Invalid location {self.plan.url}: {exc.message}") from exc
        image = self.image()
        if image.status != S.QUEUED:
            raise errors.Conflict(f"Image status transition from {image.status} to importing is not allowed")
        self.env.locations.add_location(image.id, self.plan.url, self.plan.metadata)
        self.env.images.update_image(image.id, expected_status=S.QUEUED, values={"size": size})

    def revert(self, *args, **kwargs):
        self.back_to_queued(clear_hashes=True)


class CalculateHash(_Step):
    """Stream the data once through md5 + the multihash; retried on read errors, cancelled on delete."""

    def __init__(self, env, plan, *, importing: bool):
        super().__init__(env, plan, "calculate-hash")
        self.importing = importing

    def execute(self):
        image = self.image()
        values: dict[str, Any] = {"os_hash_algo": self.plan.hashing_algorithm}
        if self.importing and image.status == S.QUEUED:
            values["status"] = S.IMPORTING
        props = {}
        self_url = self.env.settings.worker_self_reference_url or self.env.settings.public_endpoint
        if self_url:
            props[HASH_OP_HOST_PROPERTY] = self_url
        self.env.images.update_image(image.id, expected_status=image.status, values=values, properties_set=props)
        try:
            digests = self._hash_with_retries()
        finally:
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                self.env.images.update_image(image.id, properties_removed=[HASH_OP_HOST_PROPERTY])
        if digests is not None:
            values = {"checksum": digests.checksum, "os_hash_value": digests.os_hash_value}
            if not image.size:  # the store could not tell the size up front (no Content-Length)
                values["size"] = digests.size
            self.env.images.update_image(image.id, values=values)

    def _hash_with_retries(self):
        attempts = max(1, self.plan.http_retries)
        for attempt in range(1, attempts + 1):
            try:
                return self._hash_once()
            except base.StoreNotFound:
                LOG.info("image %s: data at the location is gone; no hash computed", self.plan.image_id)
                return None
            except (errors.Unavailable, OSError) as exc:
                LOG.debug("image %s: hash attempt %d/%d failed: %s", self.plan.image_id, attempt, attempts, exc)
                last = exc
        if self.image().status != S.ACTIVE:
            raise HashCalculationFailed(f"Hash calculation failed for image {self.plan.image_id} data: {last}")
        # COMPAT: the location was added and the image is already active: only log.
        LOG.warning("Hash calculation failed for image %s data: %s", self.plan.image_id, last)
        return None

    def _hash_once(self):
        next_check = time.monotonic() + CANCEL_POLL_SECONDS

        def poll(_total: int) -> None:
            nonlocal next_check
            if time.monotonic() >= next_check:
                self._check_not_canceled()
                next_check = time.monotonic() + CANCEL_POLL_SECONDS

        digests = self.env.ingest.digest(
            self.plan.location, hashing_algorithm=self.plan.hashing_algorithm, progress=poll, progress_every=READ_CHUNK
        )
        self._check_not_canceled()
        return digests

    def _check_not_canceled(self) -> None:
        canceled = f"Hash calculation for image {self.plan.image_id} has been canceled"
        try:
            image = self.image()
        except errors.NotFound:
            raise HashCalculationCanceled(f"{canceled}: the image was deleted") from None
        if image.properties.get(LOCK_PROPERTY) != self.plan.task_id:
            raise HashCalculationCanceled(f"{canceled}: the image is no longer locked by this task")
        # The task row's updated_at is the heartbeat recovery uses to tell a live task from a dead one.
        try:
            self.env.tasks.update_task(self.plan.task_id, expected_status="processing", message="Calculating hash")
        except (errors.Conflict, errors.NotFound):
            raise HashCalculationCanceled(f"{canceled}: the task is no longer processing") from None

    def revert(self, *args, **kwargs):
        self.back_to_queued(clear_hashes=False)


class VerifyValidationData(_Step):
    def __init__(self, env, plan):
        super().__init__(env, plan, "verify")

    def execute(self):
        wanted = self.plan.validation_data["os_hash_value"]
        actual = self.image().os_hash_value
        if wanted != actual:
            raise errors.Invalid(f"os_hash_value: ({wanted}) not matched with actual os_hash_value: ({actual})")

    def revert(self, *args, **kwargs):
        self.back_to_queued(clear_hashes=True)


class SetHashValues(_Step):
    """do_secure_hash off: the caller's validation_data is recorded as given."""

    def __init__(self, env, plan):
        super().__init__(env, plan, "set-hash")

    def execute(self):
        self.env.images.update_image(self.plan.image_id, values=dict(self.plan.validation_data))

    def revert(self, *args, **kwargs):
        self.back_to_queued(clear_hashes=True)


class Activate(_Step):
    """``active``; when the hash comes after, ``os_hash_algo`` is set in the same write, so nobody
    sees an active image that will be hashed without knowing by which algorithm."""

    def __init__(self, env, plan, *, hash_follows: bool = False):
        super().__init__(env, plan, "activate")
        self.hash_follows = hash_follows

    def execute(self):
        image = self.image()
        values: dict[str, Any] = {"status": S.ACTIVE}
        if self.hash_follows:
            values["os_hash_algo"] = self.plan.hashing_algorithm
        if image.status != S.ACTIVE:
            self.env.images.update_image(image.id, expected_status=image.status, values=values)


class Complete(_Step):
    def __init__(self, env, plan):
        super().__init__(env, plan, "complete")

    def execute(self):
        self.env.tasks.update_task(
            self.plan.task_id,
            status="success",
            expected_status="processing",
            result={"image_id": self.plan.image_id},
            message="",
            ttl_hours=self.env.settings.task_time_to_live_hours,
        )
        self.env.images.release_property_lock(self.plan.image_id, LOCK_PROPERTY, self.plan.task_id)


def build(env: ImportEnv, plan: LocationPlan):
    # taskflow's patterns bring networkx (~11 MiB): imported by the first flow, not by every worker.
    from taskflow.patterns import linear_flow

    flow = linear_flow.Flow(f"{TASK_TYPE}-{plan.image_id}")
    flow.add(CheckLock(env, plan), AddLocation(env, plan))
    if plan.do_secure_hash and plan.validation_data:
        flow.add(CalculateHash(env, plan, importing=True), VerifyValidationData(env, plan), Activate(env, plan))
    elif plan.do_secure_hash:
        flow.add(Activate(env, plan, hash_follows=True), CalculateHash(env, plan, importing=False))
    elif plan.validation_data:
        flow.add(SetHashValues(env, plan), Activate(env, plan))
    else:
        flow.add(Activate(env, plan))
    flow.add(Complete(env, plan))
    return flow


class LocationFlows(TaskFlows):
    """The runner's FlowFactory for location_import tasks."""

    def build(self, plan: LocationPlan):
        return build(self.env, plan)
