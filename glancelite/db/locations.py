"""Image locations: where an image's data lives, one row per store copy.

``meta_data`` is a JSON object; in multi-store mode it holds ``{"store": id}``.
Finishing an upload records the location and the image's size, checksum,
multihash and ``active`` status in one transaction, compare-and-set on the
status the upload started from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors, model
from glancelite.db import tables
from glancelite.db.engine import run_in_transaction
from glancelite.db.images import _remove_properties, get_image_in, utcnow

T_IMG = tables.images
T_LOC = tables.image_locations


class ImageGone(errors.Gone):
    """The image was deleted while its data was being written."""


def _insert(conn: Connection, image_id: str, url: str, metadata: Mapping[str, Any], now) -> int:
    result = conn.execute(
        T_LOC.insert().values(
            image_id=image_id,
            value=url,
            meta_data=json.dumps(dict(metadata)),
            status="active",
            created_at=now,
            updated_at=now,
            deleted=False,
        )
    )
    return result.inserted_primary_key[0]


def _finish(
    conn: Connection,
    image_id: str,
    expected_status: str,
    target_status: str,
    url: str,
    metadata: Mapping[str, Any],
    values: Mapping[str, Any],
    properties_removed: Iterable[str] = (),
) -> model.Image:
    now = utcnow()
    model.check_transition(expected_status, target_status)
    result = conn.execute(
        T_IMG.update()
        .where(T_IMG.c.id == image_id, T_IMG.c.deleted == sa.false(), T_IMG.c.status == expected_status)
        .values(status=target_status, updated_at=now, **values)
    )
    if result.rowcount != 1:
        row = conn.execute(
            sa.select(T_IMG.c.status).where(T_IMG.c.id == image_id, T_IMG.c.deleted == sa.false())
        ).first()
        if row is None:
            raise ImageGone(
                f"Image {image_id} could not be found after upload. The image may have been deleted during the upload."
            )
        raise errors.Conflict(f"Image status transition from {row.status} to {target_status} is not allowed")
    _insert(conn, image_id, url, metadata, now)
    _remove_properties(conn, image_id, properties_removed, now)
    return get_image_in(conn, image_id)


def finish_upload(
    engine: Engine,
    image_id: str,
    *,
    url: str,
    metadata: Mapping[str, Any],
    size: int,
    checksum: str,
    os_hash_algo: str,
    os_hash_value: str,
    expected_status: str = "saving",
    target_status: str = "active",
    virtual_size: int | None = None,
    properties_removed: Iterable[str] = (),
) -> model.Image:
    """Record the first copy of an image's data and make it ``target_status``, atomically.

    ImageGone (410) if the image was deleted meanwhile, Conflict if its status moved.
    """
    values = dict(size=size, checksum=checksum, os_hash_algo=os_hash_algo, os_hash_value=os_hash_value)
    if virtual_size is not None:  # what the format inspector read from the image's header
        values["virtual_size"] = virtual_size
    return run_in_transaction(
        engine, _finish, image_id, expected_status, target_status, url, metadata, values, tuple(properties_removed)
    )


def add_location(engine: Engine, image_id: str, url: str, metadata: Mapping[str, Any]) -> int:
    """Add another copy (import to more stores, copy-image); returns the row id."""

    def work(conn: Connection) -> int:
        get_image_in(conn, image_id)  # NotFound for deleted images
        return _insert(conn, image_id, url, metadata, utcnow())

    return run_in_transaction(engine, work)


def remove_location(engine: Engine, image_id: str, location_id: int) -> bool:
    """Soft-delete one location row; False if it was already gone."""

    def work(conn: Connection) -> bool:
        now = utcnow()
        result = conn.execute(
            T_LOC.update()
            .where(T_LOC.c.id == location_id, T_LOC.c.image_id == image_id, T_LOC.c.deleted == sa.false())
            .values(status="deleted", deleted=True, deleted_at=now, updated_at=now)
        )
        return result.rowcount == 1

    return run_in_transaction(engine, work)


def storage_used(engine: Engine, owner: str | None) -> int:
    """Bytes an owner stores: size x live locations of images not killed or deleted (Glance's quota sum)."""
    if owner is None:
        return 0

    def work(conn: Connection) -> int:
        copies = (
            sa.select(sa.func.count())
            .where(T_LOC.c.image_id == T_IMG.c.id, T_LOC.c.deleted == sa.false(), T_LOC.c.status != "deleted")
            .scalar_subquery()
        )
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(sa.func.coalesce(T_IMG.c.size, 0) * copies), 0)).where(
                T_IMG.c.owner == owner,
                T_IMG.c.deleted == sa.false(),
                T_IMG.c.status.notin_(["killed", "deleted"]),
            )
        ).scalar_one()
        return int(total or 0)

    return run_in_transaction(engine, work)
