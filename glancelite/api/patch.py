"""Image PATCH bodies: the v2.1 (RFC 6902) and v2.0 (draft 4) json-patch forms, parsed into Changes.

Path checks (read-only 403, reserved 403, depth 400) and per-change schema
validation happen here, in Glance's order, so the service gets only
well-formed changes.
"""

from __future__ import annotations

from typing import Any

import jsonpointer

from glancelite import errors
from glancelite.api import schemas
from glancelite.services.image_rules import Change, check_patch_path

V20 = "application/openstack-images-v2.0-json-patch"
V21 = "application/openstack-images-v2.1-json-patch"
MEDIA_TYPES = (V20, V21)
OPS = ("add", "remove", "replace")


def media_type(content_type: str | None) -> str:
    """The patch dialect, or 415 with Accept-Patch."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise errors.UnsupportedMedia(
            f"Image PATCH expects Content-Type one of: {', '.join(MEDIA_TYPES)}",
            headers={"Accept-Patch": ", ".join(MEDIA_TYPES)},
        )
    return media


def decode_pointer(pointer: Any) -> tuple[str, ...]:
    if not isinstance(pointer, str):
        raise errors.Invalid("Json path should start with a '/', end with no '/', no 2 subsequent '/' are allowed.")
    if not pointer.startswith("/"):
        raise errors.Invalid(f'Pointer `{pointer}` does not start with "/".')
    if "//" in pointer or pointer.endswith("/"):
        raise errors.Invalid(f'Pointer `{pointer}` contains adjacent "/".')
    try:
        return tuple(jsonpointer.JsonPointer(pointer).parts)
    except jsonpointer.JsonPointerException:
        raise errors.Invalid(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.') from None


def _op_and_path(raw: dict, dialect: str) -> tuple[str, Any]:
    if dialect == V21:
        if "op" not in raw:
            raise errors.Invalid(
                f"Unable to find `op` in JSON Schema change. It must be one of the following: {', '.join(OPS)}."
            )
        op = raw["op"]
        if op not in OPS:
            raise errors.Invalid(f"Invalid operation: `{op}`. It must be one of the following: {', '.join(OPS)}.")
        if "path" not in raw:
            raise errors.Invalid("Unable to find `path` in JSON Schema change")
        return op, raw["path"]
    present = [op for op in OPS if op in raw]
    if len(present) != 1:
        raise errors.Invalid('Operation objects must contain exactly one member named "add", "remove", or "replace".')
    return present[0], raw[present[0]]


def _check_depth(op: str, path: tuple[str, ...], pointer: str) -> None:
    if path and path[0] == "locations":
        if op == "replace" and len(path) == 1:
            return
        if op in ("add", "remove") and len(path) == 2 and (path[1] == "-" or path[1].isdigit()):
            return
    elif len(path) == 1:
        return
    raise errors.Invalid(f"Invalid JSON pointer for this resource: '{pointer}'")


def parse(body: Any, dialect: str, formats: schemas.Formats) -> list[Change]:
    if not isinstance(body, list):
        raise errors.Invalid("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise errors.Invalid("Operations must be JSON objects.")
        op, pointer = _op_and_path(raw, dialect)
        path = decode_pointer(pointer)
        _check_depth(op, path, pointer)
        if op in ("add", "replace") and "value" not in raw:
            raise errors.Invalid(f'Operation "{op}" requires a member named "value".')
        check_patch_path(path[0])
        if op in ("add", "replace"):
            value = raw["value"]
            if path[0] != "locations":
                schemas.validate("image", {path[0]: value}, formats)
            else:
                schemas.validate("image", {"locations": value if op == "replace" else [value]}, formats)
        else:
            value = None
        changes.append(Change(op=op, path=path, value=value, strict_add=dialect == V20))
    return changes
