"""The scrub queue: images left ``pending_delete`` by a delayed delete, and the claims on them.

A delayed delete leaves the image row deleted with status ``pending_delete`` and its
locations ``pending_delete`` (Glance's rows). A scrubber claims one image at a time
in ``image_scrub_claims`` (the primary key is the claim, taken in the transaction
that sees the image still pending), deletes each location's data, marks the
location ``deleted``, and finally marks the image ``deleted`` and drops its claim.
Every write a holder makes is guarded by its claim, so a holder whose claim was
taken over can change nothing. Whether a claim's holder is gone is decided above
(services/scrubber.py); here a takeover is a compare-and-set on the claim as read.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors, model
from glancelite.db import tables
from glancelite.db.engine import run_in_transaction
from glancelite.db.images import _location, get_image_in, utcnow

T_IMG = tables.images
T_LOC = tables.image_locations
T_CLAIM = tables.image_scrub_claims
# Children soft-deleted with the image (same deleted_at), revived by a restore.
RESTORED_CHILDREN = (tables.image_properties, tables.image_tags, tables.image_members)
PENDING = model.ImageStatus.PENDING_DELETE.value


@dataclasses.dataclass(frozen=True)
class Holder:
    """One scrubber run: a token of its own, and the process that runs it (processes.py's owner)."""

    token: str
    host: str
    pid: int
    process_start: str | None = None


@dataclasses.dataclass(frozen=True)
class Claim:
    holder: Holder
    claimed_at: datetime
    heartbeat_at: datetime


@dataclasses.dataclass(frozen=True)
class PendingImage:
    id: str
    deleted_at: datetime
    locations: tuple[model.Location, ...]  # those whose data is still to be deleted
    claim: Claim | None


def _pending_row(conn: Connection, image_id: str, *, for_update: bool = False):
    query = sa.select(T_IMG.c.id, T_IMG.c.deleted_at).where(
        T_IMG.c.id == image_id, T_IMG.c.status == PENDING, T_IMG.c.deleted == sa.true()
    )
    return conn.execute(query.with_for_update() if for_update else query).first()


def _claim_of(conn: Connection, image_id: str) -> Claim | None:
    row = conn.execute(sa.select(T_CLAIM).where(T_CLAIM.c.image_id == image_id)).first()
    if row is None:
        return None
    holder = Holder(token=row.holder, host=row.host, pid=row.pid, process_start=row.process_start)
    return Claim(holder=holder, claimed_at=row.claimed_at, heartbeat_at=row.heartbeat_at)


def _pending_locations(conn: Connection, image_id: str) -> tuple[model.Location, ...]:
    rows = conn.execute(
        sa.select(T_LOC).where(T_LOC.c.image_id == image_id, T_LOC.c.status == PENDING).order_by(T_LOC.c.id)
    )
    return tuple(_location(row) for row in rows)


def _pending_image(conn: Connection, row) -> PendingImage:
    return PendingImage(
        id=row.id, deleted_at=row.deleted_at, locations=_pending_locations(conn, row.id), claim=_claim_of(conn, row.id)
    )


def pending_images(
    engine: Engine, *, deleted_before: datetime | None = None, after: str | None = None, limit: int = 1000
) -> list[PendingImage]:
    """Pending images deleted at or before ``deleted_before``, by id after ``after``, at most ``limit``."""

    def work(conn: Connection) -> list[PendingImage]:
        query = sa.select(T_IMG.c.id, T_IMG.c.deleted_at).where(T_IMG.c.status == PENDING, T_IMG.c.deleted == sa.true())
        if deleted_before is not None:
            query = query.where(T_IMG.c.deleted_at <= deleted_before)
        if after is not None:
            query = query.where(T_IMG.c.id > after)
        rows = conn.execute(query.order_by(T_IMG.c.id).limit(limit)).all()
        return [_pending_image(conn, row) for row in rows]

    return run_in_transaction(engine, work)


def pending_image(engine: Engine, image_id: str) -> PendingImage:
    """NotFound unless the image is pending_delete."""

    def work(conn: Connection) -> PendingImage:
        row = _pending_row(conn, image_id)
        if row is None:
            raise errors.NotFound(f"No pending_delete image found with ID {image_id}")
        return _pending_image(conn, row)

    return run_in_transaction(engine, work)


def claim(engine: Engine, image_id: str, holder: Holder, *, replacing: Claim | None = None) -> PendingImage | None:
    """Claim a pending image for ``holder``; None when it is no longer pending or someone else has it.

    ``replacing``: the claim as read, of a holder found gone; it is taken over only if it
    is still exactly that claim (no renewal since), so of two scrubbers taking over the
    same dead claim one wins.
    """

    def work(conn: Connection) -> PendingImage | None:
        # FOR UPDATE queues claimers of one image on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises.
        row = _pending_row(conn, image_id, for_update=True)
        if row is None:
            return None
        current = _claim_of(conn, image_id)
        now = utcnow()
        values = dict(
            holder=holder.token,
            host=holder.host,
            pid=holder.pid,
            process_start=holder.process_start,
            claimed_at=now,
            heartbeat_at=now,
        )
        if current is None and replacing is None:
            conn.execute(T_CLAIM.insert().values(image_id=image_id, **values))
        elif current is not None and current == replacing:
            result = conn.execute(
                T_CLAIM.update()
                .where(
                    T_CLAIM.c.image_id == image_id,
                    T_CLAIM.c.holder == current.holder.token,
                    T_CLAIM.c.heartbeat_at == current.heartbeat_at,
                )
                .values(**values)
            )
            if result.rowcount != 1:
                return None
        else:
            return None
        return _pending_image(conn, row)

    try:
        return run_in_transaction(engine, work)
    except sa.exc.IntegrityError:
        return None  # another scrubber inserted its claim first


def _held(image_id: str, holder: Holder):
    return sa.exists().where(T_CLAIM.c.image_id == image_id, T_CLAIM.c.holder == holder.token)


def renew(engine: Engine, holder: Holder) -> int:
    """Mark every claim of ``holder`` alive now; the number of claims it still holds."""

    def work(conn: Connection) -> int:
        result = conn.execute(T_CLAIM.update().where(T_CLAIM.c.holder == holder.token).values(heartbeat_at=utcnow()))
        return result.rowcount

    return run_in_transaction(engine, work)


def location_scrubbed(engine: Engine, image_id: str, location_id: int, holder: Holder) -> bool:
    """Mark a pending location ``deleted`` (its data is gone); False when ``holder`` lost its claim."""

    def work(conn: Connection) -> bool:
        now = utcnow()
        result = conn.execute(
            T_LOC.update()
            .where(
                T_LOC.c.id == location_id,
                T_LOC.c.image_id == image_id,
                T_LOC.c.status == PENDING,
                _held(image_id, holder),
            )
            .values(status="deleted", updated_at=now)
        )
        return result.rowcount == 1

    return run_in_transaction(engine, work)


def finish(engine: Engine, image_id: str, holder: Holder) -> bool:
    """Mark the image ``deleted`` and drop the claim, if ``holder`` holds it and no pending location is left."""

    def work(conn: Connection) -> bool:
        if _pending_locations(conn, image_id):
            return False
        result = conn.execute(
            T_IMG.update()
            .where(T_IMG.c.id == image_id, T_IMG.c.status == PENDING, _held(image_id, holder))
            .values(status=model.ImageStatus.DELETED.value, updated_at=utcnow())
        )
        if result.rowcount != 1:
            return False
        conn.execute(T_CLAIM.delete().where(T_CLAIM.c.image_id == image_id, T_CLAIM.c.holder == holder.token))
        return True

    return run_in_transaction(engine, work)


def release(engine: Engine, image_id: str, holder: Holder) -> bool:
    """Give the claim up (the image stays pending for a later pass); False when it was not held."""

    def work(conn: Connection) -> bool:
        result = conn.execute(T_CLAIM.delete().where(T_CLAIM.c.image_id == image_id, T_CLAIM.c.holder == holder.token))
        return result.rowcount == 1

    return run_in_transaction(engine, work)


def restore(engine: Engine, image_id: str, *, replacing: Claim | None = None) -> model.Image:
    """Bring a pending image back ``active`` with its pending locations, properties, tags and members.

    Unlike Glance, whose image_restore sets only the image row back (the restored image has
    no locations, so its data stays unreachable, and no properties), every row deleted with
    the image comes back. ``replacing``: a claim of a holder found gone, dropped
    if unchanged. Conflict when the image is not pending_delete (Glance's message), is
    claimed by a live scrubber, or has no data left.
    """

    def work(conn: Connection) -> model.Image:
        row = conn.execute(
            sa.select(T_IMG.c.status, T_IMG.c.deleted_at).where(T_IMG.c.id == image_id).with_for_update()
        ).first()
        if row is None:
            raise errors.NotFound(f"No image found with ID {image_id}")
        if row.status != PENDING:
            raise errors.Conflict(
                f"cannot restore the image from {row.status} to active (wanted from_state=pending_delete)"
            )
        current = _claim_of(conn, image_id)
        if current is not None:
            if current != replacing:
                raise errors.Conflict(
                    f"Image {image_id} is being scrubbed by the scrubber with pid {current.holder.pid} "
                    f"on {current.holder.host}; try again when its pass is over."
                )
            conn.execute(
                T_CLAIM.delete().where(T_CLAIM.c.image_id == image_id, T_CLAIM.c.holder == current.holder.token)
            )
        if not _pending_locations(conn, image_id):
            raise errors.Conflict(f"Image {image_id} cannot be restored: its data has been deleted.")
        now = utcnow()
        deleted_at = row.deleted_at
        live = dict(deleted=False, deleted_at=None, updated_at=now)
        conn.execute(
            T_LOC.update()
            .where(T_LOC.c.image_id == image_id, T_LOC.c.status == PENDING)
            .values(status="active", **live)
        )
        for table in RESTORED_CHILDREN:
            conn.execute(
                table.update().where(table.c.image_id == image_id, table.c.deleted_at == deleted_at).values(**live)
            )
        conn.execute(
            T_IMG.update()
            .where(T_IMG.c.id == image_id, T_IMG.c.status == PENDING)
            .values(status=model.ImageStatus.ACTIVE.value, **live)
        )
        return get_image_in(conn, image_id)

    return run_in_transaction(engine, work)
