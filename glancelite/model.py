"""Domain objects: frozen dataclasses and the image status machine."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from glancelite import errors


class ImageStatus(enum.StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"
    DEACTIVATED = "deactivated"


S = ImageStatus
# The one transition table (Glance's Image.valid_state_targets); every status
# change goes through check_transition().
TRANSITIONS: Mapping[ImageStatus, frozenset[ImageStatus]] = {
    S.QUEUED: frozenset({S.SAVING, S.UPLOADING, S.IMPORTING, S.ACTIVE, S.DELETED}),
    S.SAVING: frozenset({S.ACTIVE, S.KILLED, S.DELETED, S.QUEUED}),
    S.UPLOADING: frozenset({S.IMPORTING, S.QUEUED, S.DELETED}),
    S.IMPORTING: frozenset({S.ACTIVE, S.DELETED, S.QUEUED}),
    S.ACTIVE: frozenset({S.PENDING_DELETE, S.DELETED, S.DEACTIVATED}),
    S.KILLED: frozenset({S.DELETED}),
    S.PENDING_DELETE: frozenset({S.DELETED, S.ACTIVE}),
    S.DELETED: frozenset(),
    S.DEACTIVATED: frozenset({S.ACTIVE, S.DELETED}),
}
# Entering these from queued/uploading needs both formats set (Glance: ValueError).
NEEDS_FORMATS = frozenset({S.SAVING, S.ACTIVE, S.IMPORTING})


def check_transition(current: str, target: str) -> None:
    """Raise Conflict unless ``current -> target`` is in the table."""
    if ImageStatus(target) not in TRANSITIONS[ImageStatus(current)]:
        raise errors.Conflict(f"Image status transition from {current} to {target} is not allowed")


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    SHARED = "shared"
    COMMUNITY = "community"


class MemberStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"


@dataclasses.dataclass(frozen=True)
class Location:
    url: str
    metadata: Mapping[str, Any]
    status: str = "active"
    id: int | None = None

    @property
    def store_id(self) -> str | None:
        return self.metadata.get("store")


@dataclasses.dataclass(frozen=True)
class Image:
    id: str
    name: str | None
    status: str
    visibility: str
    protected: bool
    os_hidden: bool
    owner: str | None
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    disk_format: str | None
    container_format: str | None
    min_disk: int
    min_ram: int
    created_at: datetime
    updated_at: datetime | None
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    locations: tuple[Location, ...] = ()

    def replace(self, **changes: Any) -> Image:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Member:
    image_id: str
    member_id: str
    status: str
    created_at: datetime
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    type: str
    status: str
    owner: str | None
    input: Mapping[str, Any] | None
    result: Mapping[str, Any] | None
    message: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime | None
    image_id: str | None = None
    request_id: str | None = None
    user_id: str | None = None
