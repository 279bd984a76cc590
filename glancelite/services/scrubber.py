"""The scrubber: delete the data of images a delayed delete left ``pending_delete``.

One pass (``run``) takes the images pending longer than ``scrub_time``, and scrubs
``scrub_pool_size`` of them at a time: claim the image (db/scrub_queue.py), delete
each pending location's data through its store, mark the location deleted, then
mark the image deleted. A location whose store fails or is not configured here
stays pending, and so does its image, for the next pass. Several scrubbers (one per
node, or cron and a daemon) may run at once: the claim makes sure one deletes a given
image's data; a claim whose holder died is taken over (same host: the process is
gone; another host: no heartbeat for ``lease``). ``restore`` is glance-scrubber's
``--restore``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from glancelite import errors, model, processes
from glancelite.context import RequestContext
from glancelite.db.images import utcnow
from glancelite.db.repositories import ScrubQueueRepository
from glancelite.db.scrub_queue import Claim, Holder, PendingImage
from glancelite.settings import Settings
from glancelite.store.stores import StoreSet

LOG = logging.getLogger(__name__)
# A live scrubber renews its claims every LEASE / 4; a claim from another host not renewed
# for LEASE is taken to be a dead scrubber's. Generous: taking over a slow live holder's
# claim would delete its data twice.
CLAIM_LEASE = timedelta(minutes=5)
PAGE = 500


class Outcome(enum.StrEnum):
    SCRUBBED = "scrubbed"  # data gone, image deleted
    LEFT_PENDING = "left_pending"  # a location could not be deleted; next pass
    SKIPPED = "skipped"  # another scrubber has it (or it was restored or scrubbed meanwhile)


@dataclasses.dataclass(frozen=True)
class PassReport:
    outcomes: dict[str, Outcome]

    def ids(self, outcome: Outcome) -> list[str]:
        return sorted(i for i, o in self.outcomes.items() if o == outcome)


class Scrubber:
    def __init__(
        self, settings: Settings, *, queue: ScrubQueueRepository, stores: StoreSet, lease: timedelta = CLAIM_LEASE
    ):
        self.settings = settings
        self.queue = queue
        self.stores = stores
        self.lease = lease
        owner = processes.current_owner()
        # A token of its own per scrubber: two in one process (tests) or a restarted pid never mix claims.
        self.holder = Holder(
            token=str(uuid.uuid4()), host=owner["host"], pid=owner["pid"], process_start=owner["start"]
        )
        # Glance's scrubber acts as an admin with no project.
        self.context = RequestContext.admin()

    # ------------------------------------------------------------ a pass

    def run(self) -> PassReport:
        """One pass over the images pending longer than scrub_time."""
        due = utcnow() - timedelta(seconds=self.settings.scrub_time)
        outcomes: dict[str, Outcome] = {}
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._renew_until, args=(stop,), name="scrubber-heartbeat", daemon=True)
        heartbeat.start()
        try:
            with ThreadPoolExecutor(max_workers=self.settings.scrub_pool_size, thread_name_prefix="scrub") as pool:
                for image_id, outcome in pool.map(self._scrub, self._due(due)):
                    outcomes[image_id] = outcome
        finally:
            stop.set()
            heartbeat.join()
        report = PassReport(outcomes)
        LOG.info(
            "scrubber pass: %d image(s) scrubbed, %d left pending_delete, %d skipped",
            len(report.ids(Outcome.SCRUBBED)),
            len(report.ids(Outcome.LEFT_PENDING)),
            len(report.ids(Outcome.SKIPPED)),
        )
        return report

    def _due(self, deleted_before) -> Iterator[PendingImage]:
        after = None
        while True:
            page = self.queue.pending_images(deleted_before=deleted_before, after=after, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].id

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease.total_seconds() / 4):
            try:
                self.queue.renew(self.holder)
            except errors.GlanceliteError as exc:
                LOG.warning("scrubber: cannot renew its claims: %s", exc)

    def holder_gone(self, claim: Claim) -> bool:
        """Whether the scrubber holding ``claim`` is gone: its process here, else its heartbeat."""
        owner = {"host": claim.holder.host, "pid": claim.holder.pid, "start": claim.holder.process_start}
        alive = processes.owner_alive(owner)
        if alive is not None:
            return not alive
        return utcnow() - claim.heartbeat_at > self.lease

    # ------------------------------------------------------------ one image

    def _scrub(self, candidate: PendingImage) -> tuple[str, Outcome]:
        try:
            return candidate.id, self._scrub_image(candidate)
        except Exception as exc:  # noqa: BLE001 - one image's failure must not end the pass, nor a daemon
            if isinstance(exc, errors.GlanceliteError):  # the database went away, typically
                LOG.error("image %s: not scrubbed: %s", candidate.id, exc)
            else:
                LOG.exception("image %s: not scrubbed", candidate.id)
            with contextlib.suppress(Exception):  # else the next pass takes its own claim back
                self.queue.release(candidate.id, self.holder)
            return candidate.id, Outcome.LEFT_PENDING

    def _scrub_image(self, candidate: PendingImage) -> Outcome:
        replacing = None
        if candidate.claim is not None and candidate.claim.holder.token == self.holder.token:
            # Left by an earlier pass of this scrubber that could not release it; passes never overlap.
            replacing = candidate.claim
        elif candidate.claim is not None:
            if not self.holder_gone(candidate.claim):
                return Outcome.SKIPPED
            LOG.warning(
                "image %s: taking over the claim of scrubber %s (pid %s on %s), which is gone",
                candidate.id,
                candidate.claim.holder.token,
                candidate.claim.holder.pid,
                candidate.claim.holder.host,
            )
            replacing = candidate.claim
        image = self.queue.claim(candidate.id, self.holder, replacing=replacing)
        if image is None:
            return Outcome.SKIPPED
        LOG.info("image %s: scrubbing %d location(s)", image.id, len(image.locations))
        left = 0
        for location in image.locations:
            if not self._delete_data(image.id, location):
                left += 1
                continue
            if not self.queue.location_scrubbed(image.id, location.id, self.holder):
                LOG.warning("image %s: claim lost while scrubbing; leaving it to its new holder", image.id)
                return Outcome.SKIPPED
        if left:
            self.queue.release(image.id, self.holder)
            LOG.warning("image %s: %d location(s) could not be scrubbed; it stays pending_delete", image.id, left)
            return Outcome.LEFT_PENDING
        if not self.queue.finish(image.id, self.holder):
            return Outcome.SKIPPED
        LOG.info("image %s: scrubbed, now deleted", image.id)
        return Outcome.SCRUBBED

    def _delete_data(self, image_id: str, location: model.Location) -> bool:
        """Delete one location's data; True when it is gone (or there was nothing to delete)."""
        store_id = self.stores.holder_of(location)
        if store_id is None:
            # Not "already gone": the data may sit in a store this scrubber's configuration lacks.
            LOG.error(
                "image %s: location %s is in no configured store (%s); left for a later pass",
                image_id,
                location.id,
                location.store_id or location.url.split("://", 1)[0],
            )
            return False
        LOG.info("image %s: deleting the data of location %s in store %s", image_id, location.id, store_id)
        try:
            if not self.stores.delete_location(location, context=self.context, image_id=image_id):
                LOG.info("image %s: location %s had no data to delete", image_id, location.id)
        except errors.GlanceliteError as exc:
            LOG.error(
                "image %s: cannot delete the data of location %s in store %s (%s); left for a later pass",
                image_id,
                location.id,
                store_id,
                exc,
            )
            return False
        return True

    # ------------------------------------------------------------ restore

    def restore(self, image_id: str) -> model.Image:
        """glance-scrubber --restore: a pending_delete image back to active with its data.

        Refused (Conflict) while a live scrubber holds the image; a dead one's claim is dropped.
        """
        replacing = None
        try:
            claim = self.queue.pending_image(image_id).claim
        except errors.NotFound:
            claim = None  # restore() says why: no such image, or not pending_delete
        if claim is not None and self.holder_gone(claim):
            replacing = claim
        image = self.queue.restore(image_id, replacing=replacing)
        LOG.info("image %s: restored to active", image_id)
        return image
