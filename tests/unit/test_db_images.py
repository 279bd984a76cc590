"""The image repository on a real SQLite file."""

from __future__ import annotations

import uuid

import pytest

from glancelite import errors
from glancelite.db import engine as db_engine
from glancelite.db import images as repo
from glancelite.db import tables


@pytest.fixture
def engine(tmp_path):
    eng = db_engine.create_engine(f"sqlite:///{tmp_path / 'g.sqlite'}")
    tables.metadata.create_all(eng)
    yield eng
    eng.dispose()


def new(engine, **values):
    values.setdefault("id", str(uuid.uuid4()))
    return repo.create_image(engine, values, {"a": "1", "b": "2"}, ["t1", "t2"])


def test_create_get_round_trip(engine):
    img = new(engine, name="x", owner="p")
    got = repo.get_image(engine, img.id)
    assert got == img
    assert got.status == "queued" and got.visibility == "shared"
    assert dict(got.properties) == {"a": "1", "b": "2"}
    assert got.tags == {"t1", "t2"}


def test_duplicate_id_conflicts(engine):
    img = new(engine)
    with pytest.raises(errors.Conflict):
        new(engine, id=img.id)


def test_update_cas_and_transitions(engine):
    img = new(engine)
    with pytest.raises(errors.Conflict, match="from queued to active is not allowed"):
        repo.update_image(engine, img.id, expected_status="saving", values={"status": "active"})
    with pytest.raises(errors.Conflict, match="from queued to killed"):
        repo.update_image(engine, img.id, values={"status": "killed"})
    up = repo.update_image(
        engine,
        img.id,
        expected_status="queued",
        values={"status": "saving"},
        properties_set={"a": "9", "c": "3"},
        properties_removed=["b"],
        tags=["t2", "t3"],
    )
    assert up.status == "saving" and dict(up.properties) == {"a": "9", "c": "3"} and up.tags == {"t2", "t3"}
    # a removed property can come back (soft-deleted row revived)
    up = repo.update_image(engine, img.id, properties_set={"b": "again"})
    assert up.properties["b"] == "again"


def test_delete_is_soft_and_invisible(engine):
    img = new(engine)
    gone = repo.delete_image(engine, img.id)
    assert gone.status == "deleted"
    with pytest.raises(errors.NotFound, match=f"No image found with ID {img.id}"):
        repo.get_image(engine, img.id)
    with pytest.raises(errors.Conflict):
        new(engine, id=img.id)


def test_property_lock(engine):
    img = new(engine)
    repo.acquire_property_lock(engine, img.id, "os_glance_import_task", "task1")
    with pytest.raises(errors.Conflict):
        repo.acquire_property_lock(engine, img.id, "os_glance_import_task", "task2")
    assert not repo.release_property_lock(engine, img.id, "os_glance_import_task", "task2")
    assert repo.release_property_lock(engine, img.id, "os_glance_import_task", "task1")
    repo.acquire_property_lock(engine, img.id, "os_glance_import_task", "task2")
