"""The store audit's comparison, on plain objects (no I/O): what a listing and the database's
references say, turned into findings. services/store_audit.py runs it over the real stores.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Callable, Iterable, Sequence

from glancelite.db.store_references import LocationReference
from glancelite.model import ImageStatus, TaskStatus
from glancelite.store import base
from glancelite.store.drivers.file import PARTIAL_PREFIX
from glancelite.tasks.plan import LOCK_PROPERTY

STAGED_STATUSES = frozenset({ImageStatus.UPLOADING.value, ImageStatus.IMPORTING.value})
# An unfinished upload into an ordinary store is live while its image is being written there.
TRANSFER_STATUSES = STAGED_STATUSES | {ImageStatus.SAVING.value}
LIVE_TASK_STATUSES = frozenset({TaskStatus.PENDING.value, TaskStatus.PROCESSING.value})
# The working files of a task in the tasks store (store/areas.py WorkArea).
TASK_FILE_SUFFIXES = ("owner", "owner.tmp", "download", "scratch")


class Kind(enum.StrEnum):
    ORPHAN = "orphan"
    MISSING = "missing"
    WRONG_SIZE = "wrong-size"
    LEFTOVER = "leftover"
    UNASSIGNED = "unassigned"  # a location no configured store holds


REMOVABLE = frozenset({Kind.ORPHAN, Kind.LEFTOVER})


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: Kind
    store_id: str | None
    url: str
    size: int | None = None  # bytes the store holds
    expected: int | None = None  # bytes the image has (wrong-size)
    age: float | None = None  # seconds since the object last changed; None when the backend does not say
    image_id: str | None = None
    reason: str = ""
    upload_id: str | None = None  # an unfinished upload (S3 multipart), not an object: removal aborts it


@dataclasses.dataclass(frozen=True)
class KeyedReference:
    """A location with the key its store's listing names its object by."""

    key: str
    reference: LocationReference


def compare(
    store_id: str, listed: Iterable[base.ListedObject], references: Sequence[KeyedReference], now: float
) -> tuple[list[Finding], int, int]:
    """(findings, objects listed, objects referenced) of one listable store."""
    by_key: dict[str, list[LocationReference]] = {}
    for ref in references:
        by_key.setdefault(ref.key, []).append(ref.reference)
    findings: list[Finding] = []
    seen: set[str] = set()
    objects = referenced = 0
    for obj in listed:
        objects += 1
        refs = by_key.get(obj.key)
        if not refs:
            findings.append(Finding(Kind.ORPHAN, store_id, obj.url, size=obj.size, age=_age(obj, now)))
            continue
        seen.add(obj.key)
        referenced += 1
        for ref in refs:
            if ref.image_size is not None and ref.image_size != obj.size:
                findings.append(wrong_size(store_id, ref, obj.size))
    for key, refs in by_key.items():
        if key not in seen:
            findings.extend(missing(store_id, ref) for ref in refs)
    return findings, objects, referenced


def staging_leftovers(
    store_id: str, listed: Iterable[base.ListedObject], images: Callable[[Iterable[str]], dict], now: float
) -> tuple[list[Finding], int, int]:
    """Staged files whose image is not being staged or imported. ``images(ids)``: id -> live Image."""
    objects = list(listed)
    owners = {obj.key: _staged_image_id(obj.key) for obj in objects}
    live = images(set(owners.values()))
    findings = []
    for obj in objects:
        image = live.get(owners[obj.key])
        reason = staging_verdict(image)
        if reason:
            findings.append(
                Finding(
                    Kind.LEFTOVER,
                    store_id,
                    obj.url,
                    size=obj.size,
                    age=_age(obj, now),
                    image_id=owners[obj.key],
                    reason=reason,
                )
            )
    return findings, len(objects), len(objects) - len(findings)


def work_leftovers(
    store_id: str, listed: Iterable[base.ListedObject], tasks: Callable[[Iterable[str]], dict], now: float
) -> tuple[list[Finding], int, int]:
    """Working files of tasks no longer pending or processing. ``tasks(ids)``: id -> status of live tasks."""
    objects = list(listed)
    owners = {obj.key: _task_id(obj.key) for obj in objects}
    live = tasks({t for t in owners.values() if t})
    findings = []
    for obj in objects:
        task_id = owners[obj.key]
        if task_id is None:
            reason = "not a task's working file"
        elif task_id not in live:
            reason = f"task {task_id} does not exist"
        elif live[task_id] not in LIVE_TASK_STATUSES:
            reason = f"task {task_id} is {live[task_id]}"
        else:
            continue
        findings.append(Finding(Kind.LEFTOVER, store_id, obj.url, size=obj.size, age=_age(obj, now), reason=reason))
    return findings, len(objects), len(objects) - len(findings)


def unfinished_leftovers(
    store_id: str, uploads: Iterable[base.UnfinishedUpload], images: Callable[[Iterable[str]], dict], now: float
) -> list[Finding]:
    """Unfinished uploads whose image is not being written: what a dead upload left. ``images(ids)``: id -> Image."""
    uploads = list(uploads)
    live = images({_upload_image_id(u) for u in uploads})
    findings = []
    for upload in uploads:
        image_id = _upload_image_id(upload)
        reason = upload_verdict(live.get(image_id))
        if reason:
            findings.append(
                Finding(
                    Kind.LEFTOVER,
                    store_id,
                    upload.url,
                    age=max(0.0, now - upload.started) if upload.started > 0 else None,
                    image_id=image_id,
                    reason=f"unfinished multipart upload: {reason}",
                    upload_id=upload.upload_id,
                )
            )
    return findings


def upload_verdict(image) -> str:
    """Why an unfinished upload is a leftover ("" while its image is being written or copied)."""
    if image is None:
        return "its image does not exist"
    if image.status in TRANSFER_STATUSES or image.properties.get(LOCK_PROPERTY):
        return ""
    return f"its image is {image.status}"


def _upload_image_id(upload: base.UnfinishedUpload) -> str:
    return upload.key.rpartition("/")[2]


def staging_verdict(image) -> str:
    """Why a staged file is a leftover ("" when its image still needs it)."""
    if image is None:
        return "its image does not exist"
    if image.status in STAGED_STATUSES or image.properties.get(LOCK_PROPERTY):
        return ""
    return f"its image is {image.status}"


def _staged_image_id(path: str) -> str:
    """Staged data is ``<dir>/<image id>``; a partial one ``.partial-<image id>.<host>.<pid>.<random>``."""
    name = os.path.basename(path)
    if name.startswith(PARTIAL_PREFIX):
        return name[len(PARTIAL_PREFIX) :].partition(".")[0]
    return name


def _task_id(path: str) -> str | None:
    stem, dot, suffix = os.path.basename(path).partition(".")
    return stem if dot and stem and suffix in TASK_FILE_SUFFIXES else None


def _age(obj: base.ListedObject, now: float) -> float | None:
    return max(0.0, now - obj.modified) if obj.modified > 0 else None


def wrong_size(store_id: str, ref: LocationReference, size: int) -> Finding:
    return Finding(
        Kind.WRONG_SIZE, store_id, ref.location.url, size=size, expected=ref.image_size, image_id=ref.image_id
    )


def missing(store_id: str, ref: LocationReference) -> Finding:
    return Finding(Kind.MISSING, store_id, ref.location.url, expected=ref.image_size, image_id=ref.image_id)
