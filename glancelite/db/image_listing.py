"""Listing images: Glance's visibility rules, filters and keyset pagination.

The default listing (created_at desc, id desc) walks ix_images_created_at_id
from the marker with a row-value comparison, so a page costs the same at any
depth and any catalogue size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors, model
from glancelite.db.engine import run_read
from glancelite.db.images import T_IMG, T_MEM, T_PROP, T_TAG, load_images

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
_NOT_NULL = frozenset({"id", "created_at", "status"})
_RANGE_OPS = {
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: c != v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
}


def _visible(project_id: str | None, is_admin: bool, visibility: str | None, member_status: str):
    """Glance's _select_images_query: who sees what, before the caller's filters."""
    conds = []
    if not is_admin:
        member = sa.exists().where(
            T_MEM.c.image_id == T_IMG.c.id,
            T_MEM.c.member == project_id,
            T_MEM.c.deleted == sa.false(),
        )
        if member_status != "all":
            member = member.where(T_MEM.c.status == member_status)
        conds.append(
            sa.or_(
                T_IMG.c.owner == project_id if project_id is not None else sa.false(),
                T_IMG.c.visibility.in_(["public", "community"]),
                sa.and_(T_IMG.c.visibility == "shared", member),
            )
        )
    if visibility is None:
        # COMPAT: without a visibility filter community images show only to their owner.
        owned = T_IMG.c.owner == project_id if project_id is not None else sa.false()
        conds.append(sa.or_(T_IMG.c.visibility != "community", owned))
    elif visibility != "all":
        conds.append(T_IMG.c.visibility == visibility)
    return conds


def _filters(filters: Mapping[str, Any]):
    conds = []
    for key in ("name", "id", "status", "container_format", "disk_format"):
        if filters.get(key) is not None:
            conds.append(T_IMG.c[key].in_(list(filters[key])))
    for key in ("owner", "checksum", "os_hash_value", "size", "virtual_size", "min_ram", "min_disk"):
        if filters.get(key) is not None:
            conds.append(T_IMG.c[key] == filters[key])
    for key in ("protected", "os_hidden"):
        if filters.get(key) is not None:
            conds.append(T_IMG.c[key] == bool(filters[key]))
    if filters.get("size_min") is not None:
        conds.append(T_IMG.c.size >= filters["size_min"])
    if filters.get("size_max") is not None:
        conds.append(T_IMG.c.size <= filters["size_max"])
    for key in ("created_at", "updated_at"):
        for op, when in filters.get(key) or ():
            conds.append(_RANGE_OPS[op](T_IMG.c[key], when))
    for tag in filters.get("tags") or ():
        conds.append(
            sa.exists().where(T_TAG.c.image_id == T_IMG.c.id, T_TAG.c.value == tag, T_TAG.c.deleted == sa.false())
        )
    for name, value in (filters.get("properties") or {}).items():
        conds.append(
            sa.exists().where(
                T_PROP.c.image_id == T_IMG.c.id,
                T_PROP.c.name == name,
                T_PROP.c.value == value,
                T_PROP.c.deleted == sa.false(),
            )
        )
    if filters.get("status") is None:
        conds.append(T_IMG.c.status != "killed")
    return conds


def _order(sort: Sequence[tuple[str, str]]):
    """Sort columns with created_at and id appended as tie-breakers; NULLs sort as the smallest value."""
    keys = list(sort)
    dirs = {d for _, d in keys}
    # Glance: the tie-breakers take the one direction given, else desc.
    tail_dir = dirs.pop() if len(dirs) == 1 else "desc"
    for extra in ("created_at", "id"):
        if extra not in {k for k, _ in keys}:
            keys.append((extra, tail_dir))
    return keys


def _order_by(keys):
    out = []
    for key, direction in keys:
        col = T_IMG.c[key]
        if key in _NOT_NULL:
            out.append(col.asc() if direction == "asc" else col.desc())
        else:
            out.append(col.asc().nulls_first() if direction == "asc" else col.desc().nulls_last())
    return out


def _after(keys, marker_row):
    """Keyset condition: rows strictly after the marker row in ``keys`` order."""
    if all(k in _NOT_NULL for k, _ in keys) and len({d for _, d in keys}) == 1:
        # A row-value comparison lets the database walk one index.
        cols = sa.tuple_(*(T_IMG.c[k] for k, _ in keys))
        vals = sa.tuple_(*(getattr(marker_row, k) for k, _ in keys))
        return cols > vals if keys[0][1] == "asc" else cols < vals
    ors = []
    equal_so_far = []
    for key, direction in keys:
        col, value = T_IMG.c[key], getattr(marker_row, key)
        if value is None:
            after = col.is_not(None) if direction == "asc" else sa.false()
            same = col.is_(None)
        else:
            after = col > value if direction == "asc" else sa.or_(col < value, col.is_(None))
            same = col == value
        ors.append(sa.and_(*equal_so_far, after))
        equal_so_far.append(same)
    return sa.or_(*ors)


def _list(conn: Connection, base, keys, limit: int, marker: str | None) -> list[model.Image]:
    query = sa.select(T_IMG).where(*base)
    if marker is not None:
        marker_row = conn.execute(sa.select(T_IMG).where(T_IMG.c.id == marker, *base[:1])).first()
        if marker_row is None:
            raise errors.Invalid(f"Invalid marker. Image {marker} could not be found.")
        query = query.where(_after(keys, marker_row))
    rows = conn.execute(query.order_by(*_order_by(keys)).limit(limit)).all()
    return load_images(conn, rows)


def list_images(
    engine: Engine,
    *,
    project_id: str | None,
    is_admin: bool,
    filters: Mapping[str, Any] | None = None,
    visibility: str | None = None,
    member_status: str = "accepted",
    sort: Sequence[tuple[str, str]] = (("created_at", "desc"),),
    limit: int = 25,
    marker: str | None = None,
) -> list[model.Image]:
    """One page of the images the caller may list, keyset-paginated after ``marker``.

    ``filters``: name/id/status/container_format/disk_format -> list of values;
    owner/checksum/os_hash_value -> str; size/virtual_size/min_ram/min_disk -> int;
    protected/os_hidden -> bool;
    size_min/size_max -> int; created_at/updated_at -> [(op, datetime)];
    tags -> [str] (all required); properties -> {name: value}.
    An unknown or invisible marker is Invalid.
    """
    visible = sa.and_(T_IMG.c.deleted == sa.false(), *_visible(project_id, is_admin, visibility, member_status))
    base = [visible, *_filters(filters or {})]
    return run_read(engine, _list, base, _order(sort), limit, marker)
