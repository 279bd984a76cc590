"""The image repository on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from glancelite import errors
from glancelite.db import image_listing
from glancelite.db import images as repo


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


def test_list_keyset_pagination_matches_offset_order(engine):
    ids = [new(engine, name=f"n{i % 3}", size=(i % 4) or None, visibility="public").id for i in range(17)]
    for sort in ([("created_at", "desc")], [("name", "asc")], [("size", "desc"), ("name", "asc")]):
        everything = image_listing.list_images(engine, project_id=None, is_admin=True, sort=sort, limit=100)
        assert len(everything) == 17
        paged, marker = [], None
        while True:
            page = image_listing.list_images(engine, project_id=None, is_admin=True, sort=sort, limit=5, marker=marker)
            paged += page
            if len(page) < 5:
                break
            marker = page[-1].id
        assert [i.id for i in paged] == [i.id for i in everything]
    assert set(ids) == {i.id for i in everything}
    with pytest.raises(errors.Invalid):
        image_listing.list_images(engine, project_id=None, is_admin=True, marker=str(uuid.uuid4()))


def test_list_visibility_for_non_admin(engine):
    mine = new(engine, owner="A", visibility="private")
    theirs = new(engine, owner="B", visibility="private")
    public = new(engine, owner="B", visibility="public")
    community = new(engine, owner="B", visibility="community")
    seen = {i.id for i in image_listing.list_images(engine, project_id="A", is_admin=False)}
    assert seen == {mine.id, public.id}
    seen = {i.id for i in image_listing.list_images(engine, project_id="A", is_admin=False, visibility="community")}
    assert seen == {community.id}
    assert theirs.id not in {
        i.id for i in image_listing.list_images(engine, project_id="A", is_admin=False, visibility="all")
    }


def test_concurrent_member_creation_is_serialised(engine):
    from concurrent.futures import ThreadPoolExecutor

    from glancelite.db import members

    img = new(engine)

    def add(_):
        try:
            members.create_member(engine, img.id, "same-project", quota=100)
            return "ok"
        except errors.Conflict:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(add, range(8)))
    assert outcomes.count("ok") == 1 and outcomes.count("conflict") == 7
    assert len(members.list_members(engine, img.id)) == 1


def test_concurrent_lock_takers_get_one_winner(engine):
    from concurrent.futures import ThreadPoolExecutor

    img = new(engine)

    def take(n):
        try:
            repo.acquire_property_lock(engine, img.id, "os_glance_import_task", f"task-{n}")
            return "ok"
        except errors.Conflict:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(take, range(8)))
    assert outcomes.count("ok") == 1 and outcomes.count("conflict") == 7


def test_concurrent_adds_of_one_new_property(engine):
    from concurrent.futures import ThreadPoolExecutor

    img = new(engine)

    def put(n):
        return repo.update_image(engine, img.id, properties_set={"fresh": f"v{n}"}).properties["fresh"]

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(put, range(8)))
    assert all(v.startswith("v") for v in values)
    assert repo.get_image(engine, img.id).properties["fresh"] in values
