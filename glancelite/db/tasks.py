"""The task repository: the ``tasks`` and ``task_info`` tables.

Every function takes the engine; writes go through ``run_in_transaction``.
A finished task gets ``expires_at`` (``ttl_hours`` after it finished); expired
tasks are soft-deleted lazily, the next time anyone lists or reads tasks,
as Glance does. Status changes are compare-and-set when ``expected_status``
is given, so the worker finishing a task and the sweeper declaring it dead
cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors, model
from glancelite.db import tables
from glancelite.db.engine import run_in_transaction

T_TASK = tables.tasks
T_INFO = tables.task_info

SORT_KEYS = frozenset({"created_at", "updated_at", "id", "type", "status", "owner", "expires_at"})
FINISHED = frozenset({model.TaskStatus.SUCCESS.value, model.TaskStatus.FAILURE.value})
# Glance's task status machine (glance/domain Task): pending -> processing -> success|failure, pending -> failure.
TASK_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"processing", "failure"}),
    "processing": frozenset({"success", "failure"}),
    "success": frozenset(),
    "failure": frozenset(),
}


def utcnow() -> datetime:
    """Naive UTC with microseconds (Glance serialises task times with them)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _task(row) -> model.Task:
    return model.Task(
        id=row.id,
        type=row.type,
        status=row.status,
        owner=row.owner,
        input=_json(row.input),
        result=_json(row.result),
        message=row.message or "",
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        image_id=row.image_id,
        request_id=row.request_id,
        user_id=row.user_id,
    )


def _select():
    return sa.select(T_TASK, T_INFO.c.input, T_INFO.c.result, T_INFO.c.message).select_from(
        T_TASK.outerjoin(T_INFO, T_INFO.c.task_id == T_TASK.c.id)
    )


def _expire(conn: Connection, now: datetime) -> None:
    conn.execute(
        T_TASK.update()
        .where(T_TASK.c.deleted == sa.false(), T_TASK.c.expires_at.is_not(None), T_TASK.c.expires_at < now)
        .values(deleted=True, deleted_at=now)
    )


def _live(now: datetime):
    return sa.and_(
        T_TASK.c.deleted == sa.false(),
        sa.or_(T_TASK.c.expires_at.is_(None), T_TASK.c.expires_at >= now),
    )


def _visible(owner: str | None, admin: bool):
    # Non-admin callers see their own tasks and ownerless ones (Glance's DB-layer rule).
    if admin:
        return sa.true()
    return sa.or_(T_TASK.c.owner == owner, T_TASK.c.owner.is_(None))


# ---------------------------------------------------------------- create / read


def _create(conn: Connection, values: dict, task_input: Any) -> model.Task:
    now = utcnow()
    row = {
        "id": values["id"],
        "type": values["type"],
        "status": values.get("status", model.TaskStatus.PENDING.value),
        "owner": values.get("owner"),
        "expires_at": None,
        "created_at": now,
        "updated_at": now,
        "deleted": False,
        "image_id": values.get("image_id"),
        "request_id": values.get("request_id"),
        "user_id": values.get("user_id"),
    }
    conn.execute(T_TASK.insert().values(**row))
    conn.execute(T_INFO.insert().values(task_id=row["id"], input=json.dumps(task_input), result=None, message=""))
    return _task(conn.execute(_select().where(T_TASK.c.id == row["id"])).one())


def create_task(engine: Engine, values: Mapping[str, Any], task_input: Any) -> model.Task:
    """Insert a task (``values``: id, type, owner, image_id, request_id, user_id, status)."""
    return run_in_transaction(engine, _create, dict(values), task_input)


def _get(conn: Connection, task_id: str, owner: str | None, admin: bool) -> model.Task:
    now = utcnow()
    row = conn.execute(_select().where(T_TASK.c.id == task_id, _live(now), _visible(owner, admin))).first()
    if row is None:
        raise errors.NotFound(f"Task with the given ID {task_id} was not found")
    return _task(row)


def get_task(engine: Engine, task_id: str, *, owner: str | None = None, admin: bool = True) -> model.Task:
    """A live (not deleted, not expired) task visible to the caller, else NotFound."""
    return run_in_transaction(engine, _get, task_id, owner, admin)


def _list(
    conn: Connection,
    owner: str | None,
    admin: bool,
    filters: Mapping[str, Any],
    sort_key: str,
    sort_dir: str,
    limit: int | None,
    marker: str | None,
) -> list[model.Task]:
    now = utcnow()
    _expire(conn, now)
    query = _select().where(_live(now), _visible(owner, admin))
    for name in ("type", "status", "image_id", "owner"):
        if filters.get(name) is not None:
            query = query.where(T_TASK.c[name] == filters[name])
    key = T_TASK.c[sort_key]
    desc = sort_dir == "desc"
    if marker is not None:
        mrow = conn.execute(sa.select(T_TASK).where(T_TASK.c.id == marker, _live(now), _visible(owner, admin))).first()
        if mrow is None:
            raise errors.NotFound(f"Task with the given ID {marker} was not found")
        mval = getattr(mrow, sort_key)
        if sort_key == "id":
            query = query.where(T_TASK.c.id < marker if desc else T_TASK.c.id > marker)
        elif mval is None:
            # NULLs sort first ascending (SQLite) - keep it simple: only rows after by id among NULLs.
            query = query.where(
                sa.or_(key.is_not(None), sa.and_(key.is_(None), T_TASK.c.id < marker if desc else T_TASK.c.id > marker))
                if not desc
                else sa.and_(key.is_(None), T_TASK.c.id < marker)
            )
        else:
            after = key < mval if desc else key > mval
            tie = sa.and_(key == mval, T_TASK.c.id < marker if desc else T_TASK.c.id > marker)
            query = query.where(sa.or_(after, tie))
    order = [key.desc() if desc else key.asc()]
    if sort_key != "id":
        order.append(T_TASK.c.id.desc() if desc else T_TASK.c.id.asc())
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return [_task(r) for r in conn.execute(query)]


def list_tasks(
    engine: Engine,
    *,
    owner: str | None = None,
    admin: bool = True,
    filters: Mapping[str, Any] | None = None,
    sort_key: str = "created_at",
    sort_dir: str = "desc",
    limit: int | None = None,
    marker: str | None = None,
) -> list[model.Task]:
    """Live tasks, sorted by ``sort_key`` then id, keyset-paginated after ``marker``."""
    if sort_key not in SORT_KEYS:
        raise errors.Invalid(f"Invalid sort key: {sort_key}.")
    if sort_dir not in ("asc", "desc"):
        raise errors.Invalid(f"Invalid sort direction: {sort_dir}")
    return run_in_transaction(engine, _list, owner, admin, dict(filters or {}), sort_key, sort_dir, limit, marker)


def _image_tasks(conn: Connection, image_id: str) -> list[dict]:
    now = utcnow()
    rows = conn.execute(_select().where(T_TASK.c.image_id == image_id, _live(now)).order_by(T_TASK.c.created_at))
    out = []
    for row in rows:
        raw = dict(row._mapping)
        raw["input"] = _json(raw["input"])
        raw["result"] = _json(raw["result"])
        raw["message"] = raw["message"] or ""
        out.append(raw)
    return out


def image_tasks(engine: Engine, image_id: str) -> list[dict]:
    """Glance's raw DB dicts of an image's unexpired tasks (GET /v2/images/{id}/tasks)."""
    return run_in_transaction(engine, _image_tasks, image_id)


def _unfinished(conn: Connection, task_type: str | None) -> list[model.Task]:
    query = _select().where(T_TASK.c.deleted == sa.false(), T_TASK.c.status.in_(("pending", "processing")))
    if task_type:
        query = query.where(T_TASK.c.type == task_type)
    return [_task(r) for r in conn.execute(query)]


def unfinished_tasks(engine: Engine, task_type: str | None = None) -> list[model.Task]:
    """Every pending or processing task (crash recovery inspects their owners)."""
    return run_in_transaction(engine, _unfinished, task_type)


# ---------------------------------------------------------------- update


def _update(
    conn: Connection,
    task_id: str,
    expected_status: str | Iterable[str] | None,
    changes: Mapping[str, Any],
    ttl_hours: int,
) -> model.Task:
    row = conn.execute(_select().where(T_TASK.c.id == task_id, T_TASK.c.deleted == sa.false())).first()
    if row is None:
        raise errors.NotFound(f"Task with the given ID {task_id} was not found")
    if expected_status is not None:
        expected = {expected_status} if isinstance(expected_status, str) else set(expected_status)
        if row.status not in expected:
            raise errors.Conflict(f"Task {task_id} is {row.status}, not {' or '.join(sorted(expected))}")
    now = utcnow()
    values: dict[str, Any] = {"updated_at": now}
    status = changes.get("status")
    if status is not None and status != row.status:
        if status not in TASK_TRANSITIONS.get(row.status, frozenset()):
            raise errors.Conflict(f"Task status transition from {row.status} to {status} is not allowed")
        values["status"] = status
        if status in FINISHED:
            values["expires_at"] = now + timedelta(hours=ttl_hours)
    result = conn.execute(T_TASK.update().where(T_TASK.c.id == task_id, T_TASK.c.status == row.status).values(**values))
    if result.rowcount != 1:
        raise errors.Conflict(f"Task {task_id} changed while it was being updated")
    info: dict[str, Any] = {}
    if "result" in changes:
        info["result"] = json.dumps(changes["result"]) if changes["result"] is not None else None
    if "message" in changes:
        info["message"] = changes["message"] or ""
    if info:
        conn.execute(T_INFO.update().where(T_INFO.c.task_id == task_id).values(**info))
    return _task(conn.execute(_select().where(T_TASK.c.id == task_id)).one())


_UNSET = object()


def update_task(
    engine: Engine,
    task_id: str,
    *,
    status: str | None = None,
    expected_status: str | Iterable[str] | None = None,
    result: Any = _UNSET,
    message: str | None = None,
    ttl_hours: int = 48,
) -> model.Task:
    """Change status/result/message; finishing sets ``expires_at = now + ttl_hours``.

    ``expected_status`` makes the change compare-and-set (Conflict if the task moved on).
    Updating only the message refreshes ``updated_at``: a running task's heartbeat.
    """
    changes: dict[str, Any] = {}
    if status is not None:
        changes["status"] = status
    if result is not _UNSET:
        changes["result"] = result
    if message is not None:
        changes["message"] = message
    expected = (
        list(expected_status)
        if expected_status is not None and not isinstance(expected_status, str)
        else expected_status
    )
    return run_in_transaction(engine, _update, task_id, expected, changes, ttl_hours)


def _delete(conn: Connection, task_id: str) -> bool:
    now = utcnow()
    result = conn.execute(
        T_TASK.update()
        .where(T_TASK.c.id == task_id, T_TASK.c.deleted == sa.false())
        .values(deleted=True, deleted_at=now)
    )
    return result.rowcount == 1


def delete_task(engine: Engine, task_id: str) -> bool:
    """Soft-delete (used when an import is refused after its task row was written)."""
    return run_in_transaction(engine, _delete, task_id)
