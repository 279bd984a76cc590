"""The image repository: images with their properties, tags and locations.

Every function takes the engine (db/repositories.py binds it once); writes go
through ``run_in_transaction`` so SQLite lock conflicts are retried. Rows marked
deleted are invisible. Status changes are compare-and-set:
``update_image(expected_status=...)`` is the one place a lost race becomes a
Conflict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors, model
from glancelite.db import tables
from glancelite.db.engine import run_in_transaction, run_read

T_IMG = tables.images
T_PROP = tables.image_properties
T_TAG = tables.image_tags
T_LOC = tables.image_locations
T_MEM = tables.image_members

# Columns of the images table a caller may set through ``values``.
IMAGE_COLUMNS = frozenset(c.name for c in T_IMG.columns) - {"deleted", "deleted_at"}


def utcnow() -> datetime:
    """Naive UTC, as Glance stores timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- reads


def _location(row) -> model.Location:
    try:
        meta = json.loads(row.meta_data) if row.meta_data else {}
    except ValueError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    return model.Location(url=row.value, metadata=meta, status=row.status, id=row.id)


def _children(conn: Connection, image_ids: Sequence[str]) -> tuple[dict, dict, dict]:
    """Properties, tags and locations of many images: one query (a UNION ALL), one round trip."""
    props: dict[str, dict[str, str]] = {i: {} for i in image_ids}
    tags: dict[str, set[str]] = {i: set() for i in image_ids}
    locs: dict[str, list[model.Location]] = {i: [] for i in image_ids}
    if not image_ids:
        return props, tags, locs
    # SQLite limits bound parameters; chunk the IN list.
    for start in range(0, len(image_ids), 500):
        chunk = list(image_ids[start : start + 500])
        found = []
        for row in conn.execute(_CHILDREN, {"image_ids": chunk}):
            if row.kind == "p":
                props[row.image_id][row.name] = row.value if row.value is not None else ""
            elif row.kind == "t":
                tags[row.image_id].add(row.value)
            else:
                found.append(row)
        for row in sorted(found, key=lambda r: r.id):
            locs[row.image_id].append(_location(row))
    return props, tags, locs


def _children_query():
    """Properties, tags and live locations as rows of one shape, for the images listed
    (``image_ids``, an expanding parameter). Built once: building it cost more than running it.

    The id list is bound once, outside the UNION ALL (both PostgreSQL and SQLite push it into
    each branch, onto its image_id index): a short statement, so psycopg keeps it prepared and
    SQLAlchemy expands one IN list, not three.
    """

    def no(type_):
        return sa.cast(sa.null(), type_)

    children = sa.union_all(
        sa.select(
            sa.literal("p").label("kind"),
            T_PROP.c.image_id.label("image_id"),
            T_PROP.c.name.label("name"),
            sa.cast(T_PROP.c.value, sa.Text).label("value"),
            no(sa.Integer).label("id"),
            no(sa.Text).label("meta_data"),
            no(sa.String(30)).label("status"),
        ).where(T_PROP.c.deleted == sa.false()),
        sa.select(
            sa.literal("t"),
            T_TAG.c.image_id,
            no(sa.String(255)),
            sa.cast(T_TAG.c.value, sa.Text),
            no(sa.Integer),
            no(sa.Text),
            no(sa.String(30)),
        ).where(T_TAG.c.deleted == sa.false()),
        sa.select(
            sa.literal("l"),
            T_LOC.c.image_id,
            no(sa.String(255)),
            sa.cast(T_LOC.c.value, sa.Text),
            T_LOC.c.id,
            sa.cast(T_LOC.c.meta_data, sa.Text),
            sa.cast(T_LOC.c.status, sa.String(30)),
        ).where(T_LOC.c.deleted == sa.false(), T_LOC.c.status != "deleted"),
    ).subquery("children")
    return sa.select(children).where(children.c.image_id.in_(sa.bindparam("image_ids", expanding=True)))


_CHILDREN = _children_query()


def _image(row, props, tags, locs) -> model.Image:
    return model.Image(
        id=row.id,
        name=row.name,
        status=row.status,
        visibility=row.visibility,
        protected=bool(row.protected),
        os_hidden=bool(row.os_hidden),
        owner=row.owner,
        size=row.size,
        virtual_size=row.virtual_size,
        checksum=row.checksum,
        os_hash_algo=row.os_hash_algo,
        os_hash_value=row.os_hash_value,
        disk_format=row.disk_format,
        container_format=row.container_format,
        min_disk=row.min_disk or 0,
        min_ram=row.min_ram or 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
        properties=props,
        tags=frozenset(tags),
        locations=tuple(locs),
    )


def load_images(conn: Connection, rows: Sequence[Any]) -> list[model.Image]:
    ids = [r.id for r in rows]
    props, tags, locs = _children(conn, ids)
    return [_image(r, props[r.id], tags[r.id], locs[r.id]) for r in rows]


def _get_row(conn: Connection, image_id: str, *, for_update: bool = False):
    query = sa.select(T_IMG).where(T_IMG.c.id == image_id, T_IMG.c.deleted == sa.false())
    if for_update:
        # Writers of one image queue here on PostgreSQL (SQLite's BEGIN IMMEDIATE already
        # serialises), so what a transaction read is still true when it writes.
        query = query.with_for_update()
    return conn.execute(query).first()


def get_image_in(conn: Connection, image_id: str) -> model.Image:
    row = _get_row(conn, image_id)
    if row is None:
        raise errors.NotFound(f"No image found with ID {image_id}")
    return load_images(conn, [row])[0]


def get_image(engine: Engine, image_id: str) -> model.Image:
    """The live image; NotFound "No image found with ID <id>" for absent or deleted ones."""
    return run_read(engine, get_image_in, image_id)


def get_images(engine: Engine, image_ids: Iterable[str]) -> list[model.Image]:
    """Several live images, in the order asked; absent ones are skipped."""
    ids = list(dict.fromkeys(image_ids))
    if not ids:
        return []

    def work(conn):
        rows = conn.execute(sa.select(T_IMG).where(T_IMG.c.id.in_(ids), T_IMG.c.deleted == sa.false())).all()
        return {img.id: img for img in load_images(conn, rows)}

    by_id = run_read(engine, work)
    return [by_id[i] for i in ids if i in by_id]


def images_with_property(engine: Engine, name: str, *, status: str) -> list[model.Image]:
    """Live images in ``status`` that carry the (live) property ``name``."""

    def work(conn):
        has_property = (
            sa.select(T_PROP.c.image_id).where(T_PROP.c.name == name, T_PROP.c.deleted == sa.false()).scalar_subquery()
        )
        rows = conn.execute(
            sa.select(T_IMG).where(
                T_IMG.c.status == status, T_IMG.c.deleted == sa.false(), T_IMG.c.id.in_(has_property)
            )
        ).all()
        return load_images(conn, rows)

    return run_read(engine, work)


# ---------------------------------------------------------------- writes


def _set_properties(conn: Connection, image_id: str, props: Mapping[str, str | None], now: datetime) -> None:
    if not props:
        return
    existing = {
        row.name: row
        for row in conn.execute(
            sa.select(T_PROP.c.id, T_PROP.c.name, T_PROP.c.deleted).where(
                T_PROP.c.image_id == image_id, T_PROP.c.name.in_(list(props))
            )
        )
    }
    for name, value in props.items():
        row = existing.get(name)
        if row is None:
            conn.execute(
                T_PROP.insert().values(
                    image_id=image_id, name=name, value=value, created_at=now, updated_at=None, deleted=False
                )
            )
        else:
            # A soft-deleted row keeps the (image_id, name) unique key: revive it.
            conn.execute(
                T_PROP.update()
                .where(T_PROP.c.id == row.id)
                .values(value=value, updated_at=now, deleted=False, deleted_at=None)
            )


def _remove_properties(conn: Connection, image_id: str, names: Iterable[str], now: datetime) -> None:
    names = list(names)
    if names:
        conn.execute(
            T_PROP.update()
            .where(T_PROP.c.image_id == image_id, T_PROP.c.name.in_(names), T_PROP.c.deleted == sa.false())
            .values(deleted=True, deleted_at=now, updated_at=now)
        )


def _set_tags(conn: Connection, image_id: str, tags: Iterable[str], now: datetime) -> None:
    wanted = set(tags)
    current = {
        row.value: row.id
        for row in conn.execute(
            sa.select(T_TAG.c.id, T_TAG.c.value).where(T_TAG.c.image_id == image_id, T_TAG.c.deleted == sa.false())
        )
    }
    gone = [tid for value, tid in current.items() if value not in wanted]
    if gone:
        conn.execute(T_TAG.update().where(T_TAG.c.id.in_(gone)).values(deleted=True, deleted_at=now, updated_at=now))
    for value in sorted(wanted - set(current)):
        conn.execute(T_TAG.insert().values(image_id=image_id, value=value, created_at=now, deleted=False))


def _create(conn: Connection, values: dict, properties: Mapping[str, str], tags: Iterable[str]) -> model.Image:
    """Three statements at most (image, properties, tags), each one round trip, and no read back:
    the new image is what was written. An id ever used before (even by a deleted image) breaks
    the primary key: IntegrityError, which create_image turns into Conflict."""
    now = utcnow()
    row = {
        "status": model.ImageStatus.QUEUED.value,
        "visibility": model.Visibility.SHARED.value,
        "protected": False,
        "os_hidden": False,
        "min_disk": 0,
        "min_ram": 0,
        "created_at": now,
        "updated_at": now,
    }
    row.update({k: v for k, v in values.items() if k in IMAGE_COLUMNS})
    row["deleted"] = False
    image_id = row["id"]
    conn.execute(T_IMG.insert(), row)
    if properties:
        conn.execute(
            T_PROP.insert(),
            [
                {"image_id": image_id, "name": name, "value": value, "created_at": now, "deleted": False}
                for name, value in properties.items()
            ],
        )
    tags = sorted(set(tags))
    if tags:
        conn.execute(
            T_TAG.insert(),
            [{"image_id": image_id, "value": value, "created_at": now, "deleted": False} for value in tags],
        )
    stored = {c.name: row.get(c.name) for c in T_IMG.columns}
    return _image(
        _Row(stored),
        {name: value if value is not None else "" for name, value in properties.items()},
        tags,
        (),
    )


class _Row:
    """A row written, read as load_images reads a row fetched."""

    def __init__(self, values: Mapping[str, Any]):
        self.__dict__.update(values)


def create_image(
    engine: Engine, values: dict, properties: Mapping[str, str] | None = None, tags: Iterable[str] = ()
) -> model.Image:
    """Insert a new image (``values['id']`` required); Conflict if the id was ever used."""
    if not values.get("id"):
        raise ValueError("create_image needs values['id']")
    try:
        return run_in_transaction(engine, _create, dict(values), dict(properties or {}), list(tags))
    except sa.exc.IntegrityError as exc:
        raise errors.Conflict(f"An image with identifier {values['id']} already exists") from exc


def _update(
    conn: Connection,
    image_id: str,
    expected_status: str | None,
    values: Mapping[str, Any] | None,
    properties_set: Mapping[str, str | None] | None,
    properties_removed: Iterable[str] | None,
    tags: Iterable[str] | None,
    tags_added: Iterable[str] = (),
    tags_removed: Iterable[str] = (),
) -> model.Image:
    row = _get_row(conn, image_id, for_update=True)
    if row is None:
        raise errors.NotFound(f"No image found with ID {image_id}")
    values = {k: v for k, v in (values or {}).items() if k in IMAGE_COLUMNS and k != "id"}
    target = values.get("status")
    if expected_status is not None and row.status != expected_status:
        raise errors.Conflict(
            f"Image status transition from {row.status} to {target or expected_status} is not allowed"
        )
    if target is not None and target != row.status:
        model.check_transition(row.status, target)
    now = utcnow()
    values["updated_at"] = now
    where = [T_IMG.c.id == image_id, T_IMG.c.deleted == sa.false()]
    # The compare-and-set: a concurrent writer that changed the status wins.
    where.append(T_IMG.c.status == row.status)
    result = conn.execute(T_IMG.update().where(*where).values(**values))
    if result.rowcount != 1:
        raise errors.Conflict(f"Image status transition from {row.status} to {target or row.status} is not allowed")
    _set_properties(conn, image_id, properties_set or {}, now)
    _remove_properties(conn, image_id, properties_removed or (), now)
    if tags is None and (tags_added or tags_removed):
        current = {
            r.value
            for r in conn.execute(
                sa.select(T_TAG.c.value).where(T_TAG.c.image_id == image_id, T_TAG.c.deleted == sa.false())
            )
        }
        tags = (current | set(tags_added)) - set(tags_removed)
    if tags is not None:
        _set_tags(conn, image_id, tags, now)
    return get_image_in(conn, image_id)


def update_image(
    engine: Engine,
    image_id: str,
    *,
    expected_status: str | None = None,
    values: Mapping[str, Any] | None = None,
    properties_set: Mapping[str, str | None] | None = None,
    properties_removed: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    tags_added: Iterable[str] = (),
    tags_removed: Iterable[str] = (),
) -> model.Image:
    """Change an image in one transaction and return it as stored.

    ``expected_status``: Conflict "Image status transition from <current> to
    <target> is not allowed" unless the row is in that status. A ``status``
    in ``values`` must be allowed by ``model.check_transition``.
    ``tags`` replaces the whole tag set when given; ``tags_added`` and
    ``tags_removed`` change it in place (no lost update between writers).
    """
    return _retry_on_duplicate(
        engine,
        _update,
        image_id,
        expected_status,
        values,
        properties_set,
        list(properties_removed) if properties_removed is not None else None,
        list(tags) if tags is not None else None,
        list(tags_added),
        list(tags_removed),
    )


def _delete(conn: Connection, image_id: str, expected_status: str | None, target: str) -> model.Image:
    _get_row(conn, image_id, for_update=True)
    image = get_image_in(conn, image_id)
    if expected_status is not None and image.status != expected_status:
        raise errors.Conflict(f"Image status transition from {image.status} to {target} is not allowed")
    model.check_transition(image.status, target)
    now = utcnow()
    done = dict(deleted=True, deleted_at=now, updated_at=now)
    result = conn.execute(
        T_IMG.update()
        .where(T_IMG.c.id == image_id, T_IMG.c.deleted == sa.false(), T_IMG.c.status == image.status)
        .values(status=target, **done)
    )
    if result.rowcount != 1:
        raise errors.Conflict(f"Image status transition from {image.status} to {target} is not allowed")
    # Every child shares the image's deleted_at: a restore revives exactly these rows.
    for table in (T_PROP, T_TAG, T_MEM):
        conn.execute(table.update().where(table.c.image_id == image_id, table.c.deleted == sa.false()).values(**done))
    # Locations keep their data until the scrubber removes it: their status says which do.
    location_status = "pending_delete" if target == model.ImageStatus.PENDING_DELETE else "deleted"
    conn.execute(
        T_LOC.update()
        .where(T_LOC.c.image_id == image_id, T_LOC.c.deleted == sa.false())
        .values(status=location_status, **done)
    )
    return image.replace(status=target, updated_at=now)


def delete_image(
    engine: Engine, image_id: str, *, expected_status: str | None = None, keep_data: bool = False
) -> model.Image:
    """Soft-delete the image and its children; returns the image as it was (locations included).

    ``keep_data`` (delayed delete): the image becomes ``pending_delete`` and its locations
    ``pending_delete`` (Glance's rows exactly), for the scrubber to delete their data later.
    """
    target = model.ImageStatus.PENDING_DELETE if keep_data else model.ImageStatus.DELETED
    return run_in_transaction(engine, _delete, image_id, expected_status, target.value)


def set_location_metadata(engine: Engine, image_id: str, location_id: int, metadata: Mapping[str, Any]) -> bool:
    """Replace one live location's metadata (PATCH replace /locations with the same URLs)."""

    def work(conn: Connection) -> bool:
        result = conn.execute(
            T_LOC.update()
            .where(T_LOC.c.id == location_id, T_LOC.c.image_id == image_id, T_LOC.c.deleted == sa.false())
            .values(meta_data=json.dumps(dict(metadata)), updated_at=utcnow())
        )
        return result.rowcount == 1

    return run_in_transaction(engine, work)


# ---------------------------------------------------------------- property locks


def _acquire(conn: Connection, image_id: str, name: str, value: str) -> model.Image:
    row = _get_row(conn, image_id, for_update=True)
    if row is None:
        raise errors.NotFound(f"No image found with ID {image_id}")
    held = conn.execute(
        sa.select(T_PROP.c.value).where(
            T_PROP.c.image_id == image_id, T_PROP.c.name == name, T_PROP.c.deleted == sa.false()
        )
    ).first()
    if held is not None and held.value != value:
        raise errors.Conflict(f"Image {image_id} is locked by {name}={held.value}")
    _set_properties(conn, image_id, {name: value}, utcnow())
    return get_image_in(conn, image_id)


def acquire_property_lock(engine: Engine, image_id: str, name: str, value: str) -> model.Image:
    """Set property ``name`` to ``value`` unless another value holds it (Conflict)."""
    return _retry_on_duplicate(engine, _acquire, image_id, name, value)


def _retry_on_duplicate(engine: Engine, work, *args):
    """Two writers adding the same new property collide on its unique key; the loser runs again.

    On the second run the row exists, so the work updates it (or, for a lock, sees it held).
    """
    try:
        return run_in_transaction(engine, work, *args)
    except sa.exc.IntegrityError:
        try:
            return run_in_transaction(engine, work, *args)
        except sa.exc.IntegrityError as exc:
            raise errors.Conflict("The image was changed by another request; try again.") from exc


def _release(conn: Connection, image_id: str, name: str, value: str) -> bool:
    result = conn.execute(
        T_PROP.update()
        .where(
            T_PROP.c.image_id == image_id,
            T_PROP.c.name == name,
            T_PROP.c.value == value,
            T_PROP.c.deleted == sa.false(),
        )
        .values(deleted=True, deleted_at=utcnow())
    )
    return result.rowcount == 1


def release_property_lock(engine: Engine, image_id: str, name: str, value: str) -> bool:
    """Remove property ``name`` only if it still holds ``value``; True when it did."""
    return run_in_transaction(engine, _release, image_id, name, value)


# What a queued image carries of its data: nothing.
_NO_DATA = {
    "status": model.ImageStatus.QUEUED,
    "size": None,
    "virtual_size": None,
    "checksum": None,
    "os_hash_algo": None,
    "os_hash_value": None,
}


def back_to_queued(
    engine: Engine, image_id: str, from_statuses: Iterable[str], *, properties_removed: Iterable[str] = ()
) -> bool:
    """Return an image that is in one of ``from_statuses`` to ``queued``, without size or checksums.

    Glance's undo for a failed upload or import. False when the image is in
    none of them (another writer moved it on) or is gone.
    """
    for status in from_statuses:
        try:
            update_image(
                engine, image_id, expected_status=status, values=_NO_DATA, properties_removed=properties_removed
            )
            return True
        except errors.Conflict:
            continue
        except errors.NotFound:
            return False
    return False
