"""The store audit: what the stores hold against what the database refers to.

For every configured store, reserved ones included:

- an ordinary store is listed through its driver (``Driver.iter_objects``) and compared
  with every location the database holds for it (db/store_references.py): an object no
  location refers to is an **orphan**; a location whose object is absent is **missing**,
  one whose object's size differs from the image's is **wrong-size**. A store that cannot
  list (http) has each location checked with ``get_size`` instead. A multi-tenant swift
  store is listed as its operator (a reseller admin, ``Driver.for_operator``) in every
  account the database knows of (recorded locations, image owners: ``ListingScope``);
  without operator credentials it is skipped, with the reason.
- the staging store (``os_glance_staging_store``) holds an image's data only while the
  image is being staged or imported (status ``uploading`` or ``importing``, or its import
  lock held, as copy-image holds it); any other file there is a **leftover**.
- the tasks store (``os_glance_tasks_store``) holds working files of tasks still
  ``pending`` or ``processing``; any other file there is a **leftover**.
- an unfinished upload an ordinary store's backend keeps (an S3 multipart upload never
  completed nor aborted: parts that take space and are no object) is a **leftover** unless
  its image is being written (``saving``, ``uploading``, ``importing``, or its import lock
  held, as copy-image holds it); removing it aborts the upload.

What looks wrong is checked a second time before it is reported (the database read
again; a missing object looked up directly), so an upload or a delete that ran while
the store was listed is not reported. ``remove_older_than`` removes orphans and
leftovers last changed (unfinished uploads: begun) longer ago than that many seconds,
and nothing a location of the second database read refers to; an object whose time the
backend does not report is never removed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

from glancelite import errors
from glancelite.db.repositories import ImageRepository, StoreReferenceRepository, TaskRepository
from glancelite.db.store_references import LocationReference
from glancelite.model import Location
from glancelite.services.store_comparison import (
    REMOVABLE,
    Finding,
    KeyedReference,
    Kind,
    compare,
    missing,
    staging_leftovers,
    staging_verdict,
    unfinished_leftovers,
    upload_verdict,
    work_leftovers,
    wrong_size,
)
from glancelite.store import base
from glancelite.store.stores import StoreSet

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StoreOutcome:
    store_id: str
    type: str
    reserved: bool
    objects: int = 0  # listed (or, for a store that cannot list, locations checked)
    referenced: int = 0  # of those, how many a location refers to
    skipped: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Removal:
    finding: Finding
    error: str | None = None  # None: removed


@dataclasses.dataclass(frozen=True)
class AuditReport:
    stores: tuple[StoreOutcome, ...]
    findings: tuple[Finding, ...]
    removals: tuple[Removal, ...] = ()

    @property
    def removed(self) -> tuple[Finding, ...]:
        return tuple(r.finding for r in self.removals if r.error is None)

    @property
    def remaining(self) -> tuple[Finding, ...]:
        """Findings still true after the run: those not removed."""
        gone = {id(f) for f in self.removed}
        return tuple(f for f in self.findings if id(f) not in gone)

    @property
    def failed(self) -> bool:
        """A store could not be audited, or a removal failed."""
        return any(s.error for s in self.stores) or any(r.error for r in self.removals)

    def count(self, kind: Kind) -> int:
        return sum(1 for f in self.findings if f.kind is kind)


# -- the audit -------------------------------------------------------------------------------

Progress = Callable[[str, int], None]


class StoreAudit:
    """Runs the audit over a StoreSet and the database's references; removes old orphans on request."""

    def __init__(
        self,
        *,
        stores: StoreSet,
        references: StoreReferenceRepository,
        images: ImageRepository,
        tasks: TaskRepository,
        clock: Callable[[], float] = time.time,
    ):
        self.stores = stores
        self.references = references
        self.images = images
        self.tasks = tasks
        self.clock = clock

    def run(self, *, remove_older_than: float | None = None, progress: Progress | None = None) -> AuditReport:
        refs = self.references.location_references()
        by_store, unassigned = self._assign(refs)
        outcomes: list[StoreOutcome] = []
        findings: list[Finding] = list(unassigned)
        for store_id in self.stores.all_ids():
            outcome, found = self._audit_store(store_id, by_store.get(store_id, []), progress)
            outcomes.append(outcome)
            findings.extend(found)
        if findings:
            findings = self._confirm(findings)
        removals: list[Removal] = []
        if remove_older_than is not None:
            removals = self._remove(findings, remove_older_than)
        return AuditReport(stores=tuple(outcomes), findings=tuple(findings), removals=tuple(removals))

    # -- one store -------------------------------------------------------------------------

    def _assign(self, refs: Iterable[LocationReference]) -> tuple[dict[str, list[LocationReference]], list[Finding]]:
        by_store: dict[str, list[LocationReference]] = {}
        unassigned = []
        for ref in refs:
            store_id = self.stores.holder_of(ref.location)
            if store_id is None:
                unassigned.append(
                    Finding(
                        Kind.UNASSIGNED,
                        None,
                        ref.location.url,
                        image_id=ref.image_id,
                        reason="no configured store holds this location",
                    )
                )
            else:
                by_store.setdefault(store_id, []).append(ref)
        return by_store, unassigned

    def _audit_store(
        self, store_id: str, refs: list[LocationReference], progress: Progress | None
    ) -> tuple[StoreOutcome, list[Finding]]:
        settings = self.stores.settings_of(store_id, internal=True)
        outcome = StoreOutcome(store_id, settings.type, settings.reserved)
        now = self.clock()
        try:
            scope = self._scope(refs) if self.stores.per_caller(store_id) else None
            listed = self._listing(store_id, progress, scope)
            if store_id == self.stores.staging_id:
                found, objects, referenced = staging_leftovers(store_id, listed, self._live_images, now)
            elif store_id == self.stores.tasks_id:
                found, objects, referenced = work_leftovers(store_id, listed, self._live_tasks, now)
            else:
                keyed, unreadable = self._keyed(store_id, refs)
                found, objects, referenced = compare(store_id, listed, keyed, now)
                found += unreadable
                found += unfinished_leftovers(
                    store_id, self.stores.iter_unfinished_uploads(store_id), self._live_images, now
                )
        except base.ListingNotSupported as exc:
            if self.stores.per_caller(store_id):
                return dataclasses.replace(outcome, skipped=exc.message), []
            return self._check_each(outcome, refs)
        except errors.GlanceliteError as exc:
            return dataclasses.replace(outcome, error=exc.message), []
        return dataclasses.replace(outcome, objects=objects, referenced=referenced), found

    def _keyed(self, store_id: str, refs: list[LocationReference]) -> tuple[list[KeyedReference], list[Finding]]:
        """Each location with its object's key; one the store cannot name (not its bucket...) is missing."""
        keyed, unreadable = [], []
        for ref in refs:
            try:
                keyed.append(KeyedReference(self.stores.object_key(store_id, ref.location), ref))
            except errors.GlanceliteError as exc:
                unreadable.append(dataclasses.replace(missing(store_id, ref), reason=exc.message))
        return keyed, unreadable

    def _scope(self, refs: list[LocationReference]) -> base.ListingScope:
        """Where a per-caller store's data may be: the accounts of recorded locations and image owners."""
        hints = self.references.tenancy_hints()
        urls = {ref.location.url for ref in refs} | set(hints.location_urls)
        return base.ListingScope(urls=tuple(sorted(urls)), projects=hints.owners)

    def _listing(
        self, store_id: str, progress: Progress | None, scope: base.ListingScope | None = None
    ) -> Iterable[base.ListedObject]:
        count = 0
        for obj in self.stores.iter_objects(store_id, scope):
            count += 1
            if progress is not None:
                progress(store_id, count)
            yield obj

    def _check_each(self, outcome: StoreOutcome, refs: list[LocationReference]) -> tuple[StoreOutcome, list[Finding]]:
        """A store that cannot list: each location's object looked up on its own (no orphans to find)."""
        found = []
        present = 0
        for ref in refs:
            try:
                size = self.stores.get_size(ref.location)
            except base.StoreNotFound:
                found.append(missing(outcome.store_id, ref))
                continue
            except errors.GlanceliteError as exc:
                return dataclasses.replace(outcome, error=exc.message), []
            present += 1
            if ref.image_size is not None and size != ref.image_size:
                found.append(wrong_size(outcome.store_id, ref, size))
        return dataclasses.replace(outcome, objects=present, referenced=present), found

    def _live_images(self, image_ids: Iterable[str]) -> dict:
        return {image.id: image for image in self.images.get_images(image_ids)}

    def _live_tasks(self, task_ids: Iterable[str]) -> dict[str, str]:
        found = {}
        for task_id in task_ids:
            try:
                found[task_id] = self.tasks.get_task(task_id).status
            except errors.NotFound:
                continue
        return found

    # -- second look -----------------------------------------------------------------------

    def _confirm(self, findings: list[Finding]) -> list[Finding]:
        """Drop what an upload, delete or import that ran during the listing explains."""
        refs = self.references.location_references()
        referenced_keys: set[tuple[str, str]] = set()
        referenced_urls: set[tuple[str, str]] = set()
        for ref in refs:
            store_id = self.stores.holder_of(ref.location)
            if store_id is None:
                continue
            referenced_urls.add((ref.image_id, ref.location.url))
            try:
                referenced_keys.add((store_id, self.stores.object_key(store_id, ref.location)))
            except errors.GlanceliteError:
                continue
        staged = {f.image_id for f in findings if f.kind is Kind.LEFTOVER and f.image_id}  # and uploading
        live_images = self._live_images(staged) if staged else {}
        kept = []
        for finding in findings:
            if finding.kind is Kind.ORPHAN:
                key = self._key_of(finding)
                if key is None or (finding.store_id, key) in referenced_keys:
                    continue
            elif finding.kind in (Kind.MISSING, Kind.WRONG_SIZE):
                if (finding.image_id, finding.url) not in referenced_urls or self._looks_fine(finding):
                    continue
            elif finding.kind is Kind.LEFTOVER and finding.image_id:
                verdict = upload_verdict if finding.upload_id else staging_verdict
                if not verdict(live_images.get(finding.image_id)):
                    continue
            kept.append(finding)
        return kept

    def _key_of(self, finding: Finding) -> str | None:
        try:
            return self.stores.object_key(finding.store_id, _location(finding))
        except errors.GlanceliteError:
            return None

    def _looks_fine(self, finding: Finding) -> bool:
        """A missing or wrong-size object looked up once more: present with the image's size now."""
        try:
            size = self.stores.get_size(_location(finding))
        except errors.GlanceliteError:
            return False
        return finding.expected is None or size == finding.expected

    # -- removal ---------------------------------------------------------------------------

    def _remove(self, findings: list[Finding], older_than: float) -> list[Removal]:
        removals = []
        for finding in findings:
            if finding.kind not in REMOVABLE or finding.age is None or finding.age <= older_than:
                continue
            try:
                if finding.upload_id:
                    self.stores.abort_upload(finding.store_id, finding.url, finding.upload_id)
                else:
                    self.stores.delete(_location(finding))
            except base.StoreNotFound:
                continue  # gone by itself meanwhile
            except errors.GlanceliteError as exc:
                removals.append(Removal(finding, error=exc.message))
                continue
            LOG.info("store audit removed %s %s of store %s", finding.kind, finding.url, finding.store_id)
            removals.append(Removal(finding))
        return removals


def _location(finding: Finding) -> Location:
    return Location(url=finding.url, metadata={"store": finding.store_id} if finding.store_id else {})
