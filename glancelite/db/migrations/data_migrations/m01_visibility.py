"""Fill images.visibility from the legacy is_public flag (Glance's ocata data migration).

public when is_public; shared when private but with live members (the
pre-ocata meaning of "not public, but shared"); private otherwise.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

VISIBILITY = sa.Enum("private", "public", "shared", "community", name="image_visibility")

_images = sa.table(
    "images",
    sa.column("id", sa.String),
    sa.column("is_public", sa.Boolean),
    sa.column("visibility", VISIBILITY),
)
_members = sa.table("image_members", sa.column("image_id", sa.String), sa.column("deleted", sa.Boolean))


def _legacy_columns_present(conn: Connection) -> bool:
    columns = {c["name"] for c in sa.inspect(conn).get_columns("images")}
    return {"is_public", "visibility"} <= columns


def has_migrations(conn: Connection) -> bool:
    if not _legacy_columns_present(conn):
        return False
    pending = sa.select(_images.c.id).where(_images.c.visibility.is_(None)).limit(1)
    return conn.execute(pending).first() is not None


def migrate(conn: Connection) -> int:
    if not _legacy_columns_present(conn):
        return 0
    unset = _images.c.visibility.is_(None)
    has_members = sa.exists().where(_members.c.image_id == _images.c.id, _members.c.deleted == sa.false())
    moved = 0
    for condition, value in (
        (_images.c.is_public == sa.true(), "public"),
        (has_members, "shared"),
        (sa.true(), "private"),
    ):
        moved += conn.execute(sa.update(_images).where(unset, condition).values(visibility=value)).rowcount
    return moved
