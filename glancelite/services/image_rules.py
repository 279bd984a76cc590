"""Glance's rules about image attributes: which are base columns, read-only, reserved.

Shared by the image service and the api layer's body parsers, so each rule
is written once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from glancelite import errors, model

RESERVED_NAMESPACE = "os_glance"
# Attributes that are columns of the image, not custom properties.
BASE_ATTRIBUTES = frozenset(
    {
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "size",
        "virtual_size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "disk_format",
        "container_format",
        "min_disk",
        "min_ram",
        "created_at",
        "updated_at",
        "tags",
        "locations",
        "direct_url",
        "self",
        "file",
        "schema",
        "stores",
    }
)
WRITABLE_COLUMNS = ("name", "visibility", "protected", "os_hidden", "owner", "disk_format", "container_format")
WRITABLE_INTS = ("min_disk", "min_ram")
READ_ONLY_ON_CREATE = frozenset(
    {
        "direct_url",
        "self",
        "file",
        "schema",
        "stores",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        # Glance lets these through on create by accident; we treat them as read-only throughout.
        "os_hash_algo",
        "os_hash_value",
    }
)
READ_ONLY_ON_PATCH = frozenset(
    {
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "direct_url",
        "self",
        "file",
        "schema",
        "id",
        "os_hash_algo",
        "os_hash_value",
    }
)
RESERVED = frozenset({"location", "deleted", "deleted_at"})
# Properties the service hides from every view (worker bookkeeping).
HIDDEN_PROPERTIES = frozenset({"os_glance_stage_host", "os_glance_hash_op_host", "os_glance_upload_owner"})
DELETE_ATTEMPTS = 3
FORMAT_CHANGE_STATES = frozenset({model.ImageStatus.QUEUED, model.ImageStatus.IMPORTING})


def is_reserved(name: str) -> bool:
    return name in RESERVED or name.startswith(RESERVED_NAMESPACE)


def check_create_attributes(body: Mapping[str, Any]) -> None:
    """Glance's deserializer checks, made before schema validation: 403 for read-only and reserved keys."""
    for key in body:
        if key in READ_ONLY_ON_CREATE:
            raise errors.Forbidden(f"Attribute '{key}' is read-only.")
        if is_reserved(key) or key == "locations":
            raise errors.Forbidden(f"Attribute '{key}' is reserved.")


def check_patch_path(root: str) -> None:
    if root in READ_ONLY_ON_PATCH:
        raise errors.Forbidden(f"Attribute '{root}' is read-only.")
    if is_reserved(root):
        raise errors.Forbidden(f"Attribute '{root}' is reserved.")


@dataclasses.dataclass(frozen=True)
class Change:
    """One JSON-patch operation, already parsed: ``path`` is the list of pointer tokens."""

    op: str  # add | remove | replace
    path: tuple[str, ...]
    value: Any = None
    # v2.0 draft: 'add' of an existing property is a Conflict instead of a replace.
    strict_add: bool = False


@dataclasses.dataclass(frozen=True)
class ListQuery:
    limit: int
    marker: str | None = None
    sort: tuple[tuple[str, str], ...] = (("created_at", "desc"),)
    filters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    visibility: str | None = None
    member_status: str = "accepted"
