"""Image members: the projects a ``shared`` image is offered to."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors, model
from glancelite.db import tables
from glancelite.db.engine import run_in_transaction, run_read
from glancelite.db.images import utcnow

T_MEM = tables.image_members


def _member(row) -> model.Member:
    return model.Member(
        image_id=row.image_id,
        member_id=row.member,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _live(image_id: str):
    return [T_MEM.c.image_id == image_id, T_MEM.c.deleted == sa.false()]


def list_members(engine: Engine, image_id: str) -> list[model.Member]:
    def work(conn: Connection):
        rows = conn.execute(sa.select(T_MEM).where(*_live(image_id)).order_by(T_MEM.c.id)).all()
        return [_member(r) for r in rows]

    return run_read(engine, work)


def find_member(engine: Engine, image_id: str, member_id: str | None) -> model.Member | None:
    if member_id is None:
        return None

    def work(conn: Connection):
        row = conn.execute(sa.select(T_MEM).where(*_live(image_id), T_MEM.c.member == member_id)).first()
        return _member(row) if row else None

    return run_read(engine, work)


def member_projects(engine: Engine, image_ids: list[str], project_id: str | None) -> set[str]:
    """Which of ``image_ids`` list ``project_id`` as a live member (any status)."""
    if not image_ids or project_id is None:
        return set()

    def work(conn: Connection):
        rows = conn.execute(
            sa.select(T_MEM.c.image_id).where(
                T_MEM.c.image_id.in_(image_ids), T_MEM.c.member == project_id, T_MEM.c.deleted == sa.false()
            )
        )
        return {r.image_id for r in rows}

    return run_read(engine, work)


def _create(conn: Connection, image_id: str, member_id: str, quota: int) -> model.Member:
    # Serialise member changes per image (PostgreSQL; SQLite's BEGIN IMMEDIATE already does):
    # the duplicate check and the quota count below must not race another insert.
    conn.execute(sa.select(tables.images.c.id).where(tables.images.c.id == image_id).with_for_update())
    if conn.execute(sa.select(T_MEM.c.id).where(*_live(image_id), T_MEM.c.member == member_id)).first():
        raise errors.Conflict(f"Member {member_id} is duplicated for image {image_id}")
    if quota >= 0:
        count = conn.execute(sa.select(sa.func.count()).select_from(T_MEM).where(*_live(image_id))).scalar_one()
        if count + 1 > quota:
            raise errors.TooLarge(
                f"Image member limit exceeded for image {image_id}: attempted: {count + 1}, maximum: {quota}"
            )
    now = utcnow()
    conn.execute(
        T_MEM.insert().values(
            image_id=image_id,
            member=member_id,
            can_share=False,
            status=model.MemberStatus.PENDING.value,
            created_at=now,
            updated_at=now,
            deleted=False,
        )
    )
    row = conn.execute(sa.select(T_MEM).where(*_live(image_id), T_MEM.c.member == member_id)).first()
    return _member(row)


def create_member(engine: Engine, image_id: str, member_id: str, *, quota: int = -1) -> model.Member:
    """Add a pending member; Conflict if present, TooLarge past ``quota`` (negative = unlimited)."""
    try:
        return run_in_transaction(engine, _create, image_id, member_id, quota)
    except sa.exc.IntegrityError as exc:
        raise errors.Conflict(f"Member {member_id} is duplicated for image {image_id}") from exc


def _update(conn: Connection, image_id: str, member_id: str, status: str) -> model.Member:
    result = conn.execute(
        T_MEM.update().where(*_live(image_id), T_MEM.c.member == member_id).values(status=status, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise errors.NotFound(f"Not found member {member_id} for image {image_id}")
    row = conn.execute(sa.select(T_MEM).where(*_live(image_id), T_MEM.c.member == member_id)).first()
    return _member(row)


def update_member(engine: Engine, image_id: str, member_id: str, status: str) -> model.Member:
    return run_in_transaction(engine, _update, image_id, member_id, status)


def _delete(conn: Connection, image_id: str, member_id: str) -> None:
    now = utcnow()
    result = conn.execute(
        T_MEM.update()
        .where(*_live(image_id), T_MEM.c.member == member_id)
        .values(deleted=True, deleted_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        raise errors.NotFound(f"Not found member {member_id} for image {image_id}")


def delete_member(engine: Engine, image_id: str, member_id: str) -> None:
    run_in_transaction(engine, _delete, image_id, member_id)
