"""The task repository on a real SQLite file."""

from __future__ import annotations

import time
import uuid

import pytest

from glancelite import errors
from glancelite.db import engine as db_engine
from glancelite.db import tables
from glancelite.db import tasks as repo
from glancelite.settings import DatabaseSettings


@pytest.fixture
def engine(tmp_path):
    eng = db_engine.create_engine(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'g.sqlite'}"))
    tables.metadata.create_all(eng)
    yield eng
    eng.dispose()


def new(engine, **values):
    values.setdefault("id", str(uuid.uuid4()))
    values.setdefault("type", "api_image_import")
    return repo.create_task(engine, values, {"image_id": values.get("image_id")})


def test_create_get_round_trip(engine):
    task = new(engine, owner="p", image_id="img-1", request_id="req-1", user_id="u")
    got = repo.get_task(engine, task.id)
    assert got == task
    assert got.status == "pending" and got.message == "" and got.result is None and got.expires_at is None
    assert got.input == {"image_id": "img-1"}


def test_visibility_for_non_admin(engine):
    mine = new(engine, owner="p")
    ownerless = new(engine, owner=None)
    other = new(engine, owner="q")
    assert repo.get_task(engine, mine.id, owner="p", admin=False).id == mine.id
    assert repo.get_task(engine, ownerless.id, owner="p", admin=False).id == ownerless.id
    with pytest.raises(errors.NotFound):
        repo.get_task(engine, other.id, owner="p", admin=False)
    ids = {t.id for t in repo.list_tasks(engine, owner="p", admin=False)}
    assert ids == {mine.id, ownerless.id}


def test_status_machine_and_expiry(engine):
    task = new(engine)
    with pytest.raises(errors.Conflict):
        repo.update_task(engine, task.id, status="success")
    repo.update_task(engine, task.id, status="processing", expected_status="pending")
    with pytest.raises(errors.Conflict):
        repo.update_task(engine, task.id, status="failure", expected_status="pending")
    done = repo.update_task(engine, task.id, status="success", result={"image_id": "x"}, ttl_hours=48)
    assert done.status == "success" and done.result == {"image_id": "x"}
    assert done.expires_at is not None and (done.expires_at - done.updated_at).total_seconds() == 48 * 3600


def test_expired_tasks_disappear(engine):
    task = new(engine)
    repo.update_task(engine, task.id, status="failure", message="boom", ttl_hours=0)
    time.sleep(0.01)
    assert repo.list_tasks(engine) == []
    with pytest.raises(errors.NotFound):
        repo.get_task(engine, task.id)


def test_list_filters_sort_and_marker(engine):
    made = [new(engine, type="import" if i % 2 else "api_image_import") for i in range(5)]
    repo.update_task(engine, made[0].id, status="processing")
    all_desc = repo.list_tasks(engine)
    assert [t.id for t in all_desc] == [t.id for t in sorted(made, key=lambda t: (t.created_at, t.id), reverse=True)]
    assert {t.id for t in repo.list_tasks(engine, filters={"type": "import"})} == {made[1].id, made[3].id}
    assert [t.id for t in repo.list_tasks(engine, filters={"status": "processing"})] == [made[0].id]
    page1 = repo.list_tasks(engine, limit=2)
    page2 = repo.list_tasks(engine, limit=2, marker=page1[-1].id)
    page3 = repo.list_tasks(engine, limit=2, marker=page2[-1].id)
    assert [t.id for t in page1 + page2 + page3] == [t.id for t in all_desc]
    asc = repo.list_tasks(engine, sort_dir="asc", sort_key="id")
    assert [t.id for t in asc] == sorted(t.id for t in made)
    with pytest.raises(errors.Invalid):
        repo.list_tasks(engine, sort_key="input")
    with pytest.raises(errors.NotFound):
        repo.list_tasks(engine, marker=str(uuid.uuid4()))


def test_image_tasks_are_raw_dicts(engine):
    task = new(engine, image_id="img-9")
    new(engine, image_id="other")
    rows = repo.image_tasks(engine, "img-9")
    assert [r["id"] for r in rows] == [task.id]
    assert {"deleted", "deleted_at", "input", "result", "message", "request_id"} <= set(rows[0])


def test_unfinished_tasks(engine):
    a = new(engine)
    b = new(engine)
    repo.update_task(engine, b.id, status="processing")
    c = new(engine)
    repo.update_task(engine, c.id, status="failure")
    assert {t.id for t in repo.unfinished_tasks(engine)} == {a.id, b.id}
