"""What the database says should be in the stores, for the store audit (glancelite-manage store audit).

``location_references``: every location whose data must exist: those of images not
deleted, and those a delayed delete left ``pending_delete`` (the scrubber deletes that
data later, so until then it is still referenced).
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import model
from glancelite.db import tables
from glancelite.db.engine import run_in_transaction
from glancelite.db.images import _location

T_IMG = tables.images
T_LOC = tables.image_locations
PENDING = model.ImageStatus.PENDING_DELETE.value


@dataclasses.dataclass(frozen=True)
class LocationReference:
    """One location the database holds, with what the audit compares its object against."""

    image_id: str
    image_status: str
    image_size: int | None
    location: model.Location


def location_references(engine: Engine) -> list[LocationReference]:
    def work(conn: Connection) -> list[LocationReference]:
        live = sa.and_(T_IMG.c.deleted == sa.false(), T_LOC.c.deleted == sa.false())
        scrub_pending = sa.and_(T_IMG.c.status == PENDING, T_LOC.c.status == PENDING)
        rows = conn.execute(
            sa.select(T_LOC, T_IMG.c.status.label("image_status"), T_IMG.c.size.label("image_size"))
            .join(T_IMG, T_IMG.c.id == T_LOC.c.image_id)
            .where(sa.or_(live, scrub_pending))
            .order_by(T_LOC.c.id)
        )
        return [
            LocationReference(
                image_id=row.image_id, image_status=row.image_status, image_size=row.image_size, location=_location(row)
            )
            for row in rows
        ]

    return run_in_transaction(engine, work)


@dataclasses.dataclass(frozen=True)
class TenancyHints:
    """Where a store keeping images in many accounts (multi-tenant swift) may hold data: every
    location URL ever recorded (deleted ones too: their data may have outlived them) and every
    project that owns, or owned, an image (an upload that died left data in its account)."""

    location_urls: tuple[str, ...]
    owners: tuple[str, ...]


def tenancy_hints(engine: Engine) -> TenancyHints:
    def work(conn: Connection) -> TenancyHints:
        urls = conn.execute(sa.select(T_LOC.c.value).distinct()).scalars()
        owners = conn.execute(sa.select(T_IMG.c.owner).where(T_IMG.c.owner.is_not(None)).distinct()).scalars()
        return TenancyHints(location_urls=tuple(sorted(urls)), owners=tuple(sorted(owners)))

    return run_in_transaction(engine, work)
