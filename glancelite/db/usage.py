"""What one owner consumes, as Glance counts it for keystone unified limits.

Byte totals are returned in bytes; the quota layer turns them into MiB.
The rules follow Glance's db api (user_get_storage_usage,
user_get_staging_usage, user_get_image_count, user_get_uploading_count).
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite.db import tables
from glancelite.db.engine import run_in_transaction
from glancelite.db.locations import storage_used

T_IMG = tables.images
T_PROP = tables.image_properties

# Hidden property listing the stores an import is still writing to (tasks/plan.py IMPORTING_PROPERTY).
IMPORTING_TO_STORES = "os_glance_importing_to_stores"
STAGING_STATUSES = ("uploading", "importing")
UPLOADING_STATUSES = ("saving", "uploading", "importing")
GONE_STATUSES = ("killed", "deleted")


@dataclasses.dataclass(frozen=True)
class OwnerUsage:
    stored_bytes: int  # size x live locations, images not killed/deleted
    staged_bytes: int  # staged or being copied through staging
    images: int  # images not killed/deleted
    uploading: int  # images saving/uploading/importing, or copying to stores


def owner_usage(engine: Engine, owner: str | None) -> OwnerUsage:
    if owner is None:
        return OwnerUsage(0, 0, 0, 0)
    stored = storage_used(engine, owner)
    staged, images, uploading = run_in_transaction(engine, _counts, owner)
    return OwnerUsage(stored_bytes=stored, staged_bytes=staged, images=images, uploading=uploading)


def _copying(owner: str, exclude_statuses: tuple[str, ...]):
    """Images of ``owner`` with a non-empty importing-to-stores list, not in ``exclude_statuses``."""
    importing = (
        sa.select(T_PROP.c.image_id)
        .where(
            T_PROP.c.name == IMPORTING_TO_STORES,
            T_PROP.c.value != "",
            T_PROP.c.deleted == sa.false(),
        )
        .scalar_subquery()
    )
    return (
        T_IMG.c.owner == owner,
        T_IMG.c.deleted == sa.false(),
        T_IMG.c.id.in_(importing),
        T_IMG.c.status.notin_([*exclude_statuses, *GONE_STATUSES]),
    )


def _counts(conn: Connection, owner: str) -> tuple[int, int, int]:
    live = (T_IMG.c.owner == owner, T_IMG.c.deleted == sa.false())
    staged = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(T_IMG.c.size), 0)).where(
            *live, T_IMG.c.size > 0, T_IMG.c.status.in_(STAGING_STATUSES)
        )
    ).scalar_one()
    # COMPAT: an active image being copied to more stores (copy-image) occupies staging too.
    copying = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(T_IMG.c.size), 0)).where(
            *_copying(owner, STAGING_STATUSES), T_IMG.c.size > 0
        )
    ).scalar_one()
    images = conn.execute(
        sa.select(sa.func.count()).select_from(T_IMG).where(*live, T_IMG.c.status.notin_(GONE_STATUSES))
    ).scalar_one()
    uploading = conn.execute(
        sa.select(sa.func.count()).select_from(T_IMG).where(*live, T_IMG.c.status.in_(UPLOADING_STATUSES))
    ).scalar_one()
    uploading += conn.execute(
        sa.select(sa.func.count()).select_from(T_IMG).where(*_copying(owner, UPLOADING_STATUSES))
    ).scalar_one()
    return int(staged) + int(copying), int(images), int(uploading)
