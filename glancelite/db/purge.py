"""glance-manage's ``db purge`` and ``db purge_images_table``: hard-delete soft-deleted rows.

Images, their properties, locations, tags and members, and tasks are soft-deleted
(``deleted``/``deleted_at``); these remove the rows deleted more than
``age_in_days`` ago, oldest first, at most ``max_rows`` per table (-1: all).
``purge`` leaves the images table alone: an image row is what keeps its id from
being reused (OSSN-0075), so ``purge_images_table`` is a separate, deliberate step.
Neither touches an image still ``pending_delete`` (delayed delete) nor its rows, however
old: its locations are what the scrubber deletes the data from, and the rest is what
``glancelite-scrubber --restore`` brings back. (Glance's purge does not look at the
status, and can forget data the scrubber has not deleted yet.)
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from glancelite.db import tables
from glancelite.db.engine import run_in_transaction
from glancelite.db.images import utcnow

MAX_ROWS_LIMIT = 2**31 - 1  # Glance's _validate_db_int bound
# Children before the rows they point at, so no foreign key is ever left dangling.
IMAGE_CHILDREN = (tables.image_properties, tables.image_locations, tables.image_tags, tables.image_members)


def _oldest_first(select, deleted_at, max_rows: int):
    # correlate(None): a subquery of the DELETE's own table must keep its FROM (and its LIMIT).
    select = select.order_by(deleted_at).correlate(None)
    return select if max_rows == -1 else select.limit(max_rows)


def _not_pending_delete(table: sa.Table):
    """Rows of images the scrubber is done with (or that never waited for it)."""
    images = tables.images
    pending = sa.select(images.c.id).where(images.c.status == "pending_delete").scalar_subquery()
    return table.c.image_id.notin_(pending)


def _purge_table(engine: Engine, table: sa.Table, cutoff: datetime.datetime, max_rows: int, *extra) -> int:
    doomed = _oldest_first(
        sa.select(table.c.id).where(table.c.deleted_at < cutoff, *extra), table.c.deleted_at, max_rows
    )
    # The subquery is materialised first: PostgreSQL and SQLite both take a LIMIT there.
    statement = table.delete().where(table.c.id.in_(doomed.scalar_subquery()))
    return run_in_transaction(engine, lambda conn: conn.execute(statement).rowcount)


def purge(engine: Engine, age_in_days: int, max_rows: int) -> dict[str, int]:
    """Rows deleted per table, in the order purged (images excepted)."""
    cutoff = utcnow() - datetime.timedelta(days=age_in_days)
    counts: dict[str, int] = {}
    # task_info rows have no deleted flag: they go with their purgeable task, first.
    tasks, info = tables.tasks, tables.task_info
    doomed_tasks = _oldest_first(sa.select(tasks.c.id).where(tasks.c.deleted_at < cutoff), tasks.c.deleted_at, max_rows)
    statement = info.delete().where(info.c.task_id.in_(doomed_tasks.scalar_subquery()))
    counts[info.name] = run_in_transaction(engine, lambda conn: conn.execute(statement).rowcount)
    for table in IMAGE_CHILDREN:
        counts[table.name] = _purge_table(engine, table, cutoff, max_rows, _not_pending_delete(table))
    # A task whose task_info row survived (more than max_rows of them) waits for the next run.
    counts[tasks.name] = _purge_table(engine, tasks, cutoff, max_rows, ~sa.exists().where(info.c.task_id == tasks.c.id))
    return counts


def purge_images(engine: Engine, age_in_days: int, max_rows: int) -> dict[str, int]:
    """Image rows deleted more than ``age_in_days`` ago and no longer referenced.

    Glance fails on the foreign key when a child row is still there; glancelite
    skips such an image instead (``db purge`` with the same age removes its
    children, after which this removes it).
    """
    cutoff = utcnow() - datetime.timedelta(days=age_in_days)
    images = tables.images
    children = (*IMAGE_CHILDREN, tables.image_scrub_claims)
    unreferenced = [~sa.exists().where(child.c.image_id == images.c.id) for child in children]
    pending = images.c.status == "pending_delete"
    return {images.name: _purge_table(engine, images, cutoff, max_rows, ~pending, *unreferenced)}
