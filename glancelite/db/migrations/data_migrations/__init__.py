"""Data migrations run by ``glancelite-manage db migrate`` between expand and contract.

Each module offers ``has_migrations(conn) -> bool`` (rows still to move) and
``migrate(conn) -> int`` (rows moved). They must be idempotent and must
tolerate a schema where contract already ran (then there is nothing to do).
"""

from __future__ import annotations

from glancelite.db.migrations.data_migrations import m01_visibility

MIGRATIONS = (m01_visibility,)
