"""The image resource through the real application, in process: create, show, patch, delete, actions, tags, quotas.

JSON bodies sent chunked (gunicorn de-chunks them) are tests/functional/test_images.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import ADMIN, identity
from tests.support.inprocess import serve

JSON = {"Accept": "application/json"}
V21 = {"Content-Type": "application/openstack-images-v2.1-json-patch", **JSON}
V20 = {"Content-Type": "application/openstack-images-v2.0-json-patch", **JSON}
ALICE = identity("project-a", "reader,member", "alice")
BOB = identity("project-b", "reader,member", "bob")
QUOTA = 4


@pytest.fixture(scope="module")
def svc(request, tmp_path_factory):
    sections = {"DEFAULT": {"image_tag_quota": str(QUOTA), "image_property_quota": str(QUOTA)}}
    yield from serve(request, tmp_path_factory, "images", sections)


def create(svc, http, headers=None, **body):
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    resp = http.post(f"{svc.url}/v2/images", json=body, headers={**JSON, **(headers or {})})
    assert resp.status_code == 201, resp.text
    return resp.json()


def upload(svc, http, image_id, data=b"hello world", headers=None):
    resp = http.put(
        f"{svc.url}/v2/images/{image_id}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )
    assert resp.status_code == 204, resp.text


def patch(svc, http, image_id, ops, headers=None, media=V21):
    return http.patch(f"{svc.url}/v2/images/{image_id}", json=ops, headers={**media, **(headers or {})})


# ------------------------------------------------------------------ create


def test_create_answers_201_with_glance_headers_and_defaults(svc, http):
    resp = http.post(f"{svc.url}/v2/images", json={"name": "cirros", "foo": "bar"}, headers=JSON)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"] == f"{svc.url}/v2/images/{body['id']}"
    assert resp.headers["OpenStack-image-import-methods"] == "glance-direct,web-download,copy-image"
    # Reserved stores never show up, weight order.
    assert resp.headers["OpenStack-image-store-ids"] == "fast,slow"
    assert body["status"] == "queued" and body["visibility"] == "shared"
    assert body["protected"] is False and body["os_hidden"] is False
    assert body["min_disk"] == 0 and body["min_ram"] == 0
    for key in ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "disk_format", "owner"):
        assert body[key] is None
    assert body["foo"] == "bar" and body["tags"] == []
    assert body["self"] == f"/v2/images/{body['id']}" and body["file"] == f"/v2/images/{body['id']}/file"
    assert body["schema"] == "/v2/schemas/image"
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == 20
    assert "stores" not in body and "locations" not in body and "direct_url" not in body


def test_caller_chosen_id_and_duplicate(svc, http):
    image_id = str(uuid.uuid4())
    assert create(svc, http, id=image_id)["id"] == image_id
    again = http.post(f"{svc.url}/v2/images", json={"id": image_id}, headers=JSON)
    assert again.status_code == 409
    bad = http.post(f"{svc.url}/v2/images", json={"id": "not-a-uuid"}, headers=JSON)
    assert bad.status_code == 400
    assert "Provided object does not match schema 'image'" in bad.json()["message"]


@pytest.mark.parametrize(
    "key",
    [
        "status",
        "checksum",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "stores",
        "os_hash_algo",
        "os_hash_value",
    ],
)
def test_create_with_read_only_attribute_is_403(svc, http, key):
    resp = http.post(f"{svc.url}/v2/images", json={key: "x"}, headers=JSON)
    assert resp.status_code == 403
    assert f"Attribute '{key}' is read-only." in resp.json()["message"]


@pytest.mark.parametrize(
    "key", ["os_glance_import_task", "os_glance_foo", "location", "deleted", "deleted_at", "locations"]
)
def test_create_with_reserved_attribute_is_403(svc, http, key):
    resp = http.post(f"{svc.url}/v2/images", json={key: "x"}, headers=JSON)
    assert resp.status_code == 403
    assert f"Attribute '{key}' is reserved." in resp.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"foo": 1},
        {"foo": None},
        {"disk_format": "floppy"},
        {"visibility": "everyone"},
        {"min_ram": -1},
        {"min_disk": 2**31},
        {"min_ram": "1"},
        {"protected": "yes"},
        {"name": "n" * 256},
        {"tags": "a"},
        {"tags": ["t" * 256]},
        {"x" * 256: "v"},
    ],
)
def test_create_with_bad_values_is_400(svc, http, body):
    resp = http.post(f"{svc.url}/v2/images", json=body, headers=JSON)
    assert resp.status_code == 400, resp.text


def test_non_admin_owner_and_visibility_rules(svc, http):
    mine = create(svc, http, ALICE)
    assert mine["owner"] == "project-a"
    other = http.post(f"{svc.url}/v2/images", json={"owner": "project-b"}, headers={**JSON, **ALICE})
    assert other.status_code == 403
    assert "You are not permitted to create images owned by 'project-b'." in other.json()["message"]
    public = http.post(f"{svc.url}/v2/images", json={"visibility": "public"}, headers={**JSON, **ALICE})
    assert public.status_code == 403
    assert create(svc, http, ALICE, visibility="community")["visibility"] == "community"
    assert create(svc, http, ADMIN, visibility="public", owner="project-b")["owner"] == "project-b"
    reader = http.post(f"{svc.url}/v2/images", json={}, headers={**JSON, **identity("project-a", "reader", "r")})
    assert reader.status_code == 403


# ------------------------------------------------------------------ show


def test_show_and_not_found(svc, http):
    image = create(svc, http, name="shown")
    got = http.get(f"{svc.url}/v2/images/{image['id']}", headers=JSON)
    assert got.status_code == 200 and got.json() == image
    missing = str(uuid.uuid4())
    resp = http.get(f"{svc.url}/v2/images/{missing}", headers=JSON)
    assert resp.status_code == 404
    assert f"No image found with ID {missing}" in resp.json()["message"]
    assert http.get(f"{svc.url}/v2/images/not-a-uuid").status_code == 404
    assert http.get(f"{svc.url}/v2/images/{image['id']}", data=b"x").status_code == 400


def test_private_image_is_hidden_from_other_projects(svc, http):
    image = create(svc, http, ALICE, visibility="private")
    assert http.get(f"{svc.url}/v2/images/{image['id']}", headers=ALICE).status_code == 200
    assert http.get(f"{svc.url}/v2/images/{image['id']}", headers=BOB).status_code == 404
    assert patch(svc, http, image["id"], [], BOB).status_code == 404
    assert http.delete(f"{svc.url}/v2/images/{image['id']}", headers=BOB).status_code == 404


def test_visible_but_not_owned_is_403(svc, http):
    image = create(svc, http, ADMIN, visibility="public", owner="project-a")
    assert http.get(f"{svc.url}/v2/images/{image['id']}", headers=BOB).status_code == 200
    op = [{"op": "replace", "path": "/name", "value": "mine"}]
    assert patch(svc, http, image["id"], op, BOB).status_code == 403
    assert http.delete(f"{svc.url}/v2/images/{image['id']}", headers=BOB).status_code == 403
    assert http.put(f"{svc.url}/v2/images/{image['id']}/tags/x", headers=BOB).status_code == 403


# ------------------------------------------------------------------ patch


def test_patch_v21_add_replace_remove(svc, http):
    image = create(svc, http, ALICE, name="before", extra="1")
    ops = [
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "add", "path": "/new", "value": "v"},
        {"op": "add", "path": "/extra", "value": "2"},  # v2.1: add of an existing property replaces
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "replace", "path": "/tags", "value": ["a", "b"]},
        {"op": "add", "path": "/a~1b", "value": "slash"},
    ]
    resp = patch(svc, http, image["id"], ops, ALICE)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "after" and body["new"] == "v" and body["extra"] == "2" and body["a/b"] == "slash"
    assert body["min_ram"] == 512 and body["tags"] == ["a", "b"]
    resp = patch(svc, http, image["id"], [{"op": "remove", "path": "/new"}], ALICE)
    assert resp.status_code == 200 and "new" not in resp.json()
    # An empty change list is a 200 with the image unchanged.
    same = patch(svc, http, image["id"], [], ALICE)
    assert same.status_code == 200 and same.json()["name"] == "after"


def test_patch_v20_draft(svc, http):
    image = create(svc, http, name="draft", present="1")
    resp = patch(svc, http, image["id"], [{"replace": "/name", "value": "d2"}, {"add": "/p2", "value": "x"}], media=V20)
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "d2" and resp.json()["p2"] == "x"
    dup = patch(svc, http, image["id"], [{"add": "/present", "value": "2"}], media=V20)
    assert dup.status_code == 409
    assert patch(svc, http, image["id"], [{"op": "add", "path": "/x", "value": "y"}], media=V20).status_code == 400


def test_patch_needs_a_json_patch_media_type(svc, http):
    image = create(svc, http)
    for ctype in ("application/json", "text/plain", None):
        headers = {"Accept": "application/json"}
        if ctype:
            headers["Content-Type"] = ctype
        resp = http.patch(f"{svc.url}/v2/images/{image['id']}", data=b"[]", headers=headers)
        assert resp.status_code == 415
        assert resp.headers["Accept-Patch"] == (
            "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"
        )


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/id", "value": str(uuid.uuid4())}], 403),
        ([{"op": "add", "path": "/checksum", "value": "x"}], 403),
        ([{"op": "add", "path": "/os_hash_value", "value": "x"}], 403),
        ([{"op": "add", "path": "/os_glance_import_task", "value": "x"}], 403),
        ([{"op": "add", "path": "/deleted", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}], 403),
        ([{"op": "replace", "path": "/nope", "value": "x"}], 409),
        ([{"op": "remove", "path": "/nope"}], 409),
        ([{"op": "move", "path": "/name", "value": "x"}], 400),
        ([{"path": "/name", "value": "x"}], 400),
        ([{"op": "replace", "value": "x"}], 400),
        ([{"op": "replace", "path": "/name"}], 400),
        ([{"op": "replace", "path": "name", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "replace", "path": "//", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a~2", "value": "x"}], 400),
        ([{"op": "replace", "path": 7, "value": "x"}], 400),
        ([{"op": "add", "path": "/foo", "value": 1}], 400),
        ([{"op": "replace", "path": "/visibility", "value": "world"}], 400),
        ([{"op": "replace", "path": "/min_disk", "value": -5}], 400),
        ({"op": "replace", "path": "/name", "value": "x"}, 400),
        (["replace"], 400),
    ],
)
def test_patch_errors(svc, http, ops, status):
    image = create(svc, http, ALICE)
    resp = patch(svc, http, image["id"], ops, ALICE)
    assert resp.status_code == status, resp.text


def test_patch_owner_and_visibility_policies(svc, http):
    image = create(svc, http, ALICE)
    resp = patch(svc, http, image["id"], [{"op": "replace", "path": "/owner", "value": "project-b"}], ALICE)
    assert resp.status_code == 403 and "Owner can't be updated by non admin." in resp.json()["message"]
    resp = patch(svc, http, image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}], ALICE)
    assert resp.status_code == 403
    resp = patch(svc, http, image["id"], [{"op": "replace", "path": "/owner", "value": "project-b"}], ADMIN)
    assert resp.status_code == 200 and resp.json()["owner"] == "project-b"


def test_formats_change_only_while_queued(svc, http):
    image = create(svc, http)
    upload(svc, http, image["id"])
    resp = patch(svc, http, image["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert resp.status_code == 403
    assert "Attribute disk_format can be only replaced for a queued image." in resp.json()["message"]
    resp = patch(svc, http, image["id"], [{"op": "replace", "path": "/name", "value": "ok"}])
    assert resp.status_code == 200


# ------------------------------------------------------------------ delete


def _data_files(svc) -> list[Path]:
    return [p for p in (svc.root / "fast").rglob("*") if p.is_file()]


def test_delete_removes_data_and_hides_the_image(svc, http):
    image = create(svc, http)
    upload(svc, http, image["id"], b"some bytes")
    shown = http.get(f"{svc.url}/v2/images/{image['id']}", headers=JSON).json()
    assert shown["status"] == "active" and shown["stores"] == "fast"
    assert any(image["id"] in p.name for p in _data_files(svc))
    resp = http.delete(f"{svc.url}/v2/images/{image['id']}")
    assert resp.status_code == 204 and resp.content == b""
    assert not any(image["id"] in p.name for p in _data_files(svc))
    assert http.get(f"{svc.url}/v2/images/{image['id']}").status_code == 404
    again = http.delete(f"{svc.url}/v2/images/{image['id']}", headers=JSON)
    assert again.status_code == 404
    assert f"Failed to find image {image['id']} to delete" in again.json()["message"]


def test_protected_image_cannot_be_deleted(svc, http):
    image = create(svc, http, protected=True)
    resp = http.delete(f"{svc.url}/v2/images/{image['id']}", headers=JSON)
    assert resp.status_code == 403
    assert f"Image {image['id']} is protected and cannot be deleted." in resp.json()["message"]
    patch(svc, http, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert http.delete(f"{svc.url}/v2/images/{image['id']}").status_code == 204


# ------------------------------------------------------------------ actions


def test_deactivate_reactivate(svc, http):
    image = create(svc, http)
    url = f"{svc.url}/v2/images/{image['id']}/actions"
    resp = http.post(f"{url}/deactivate", headers=JSON)
    assert resp.status_code == 403 and "Not allowed to deactivate image in status 'queued'" in resp.json()["message"]
    assert http.post(f"{url}/reactivate").status_code == 403
    upload(svc, http, image["id"])
    assert http.post(f"{url}/deactivate").status_code == 204
    assert http.get(f"{svc.url}/v2/images/{image['id']}").json()["status"] == "deactivated"
    assert http.post(f"{url}/deactivate").status_code == 204  # no-op
    assert http.post(f"{url}/reactivate").status_code == 204
    assert http.get(f"{svc.url}/v2/images/{image['id']}").json()["status"] == "active"
    assert http.post(f"{url}/reactivate").status_code == 204
    assert http.post(f"{url}/deactivate", data=b"body").status_code == 400
    assert http.get(f"{url}/deactivate").status_code == 405


# ------------------------------------------------------------------ tags and quotas


def test_tags_put_delete(svc, http):
    image = create(svc, http)
    tags = f"{svc.url}/v2/images/{image['id']}/tags"
    assert http.put(f"{tags}/one").status_code == 204
    assert http.put(f"{tags}/one").status_code == 204  # idempotent
    assert http.put(f"{tags}/two%20words").status_code == 204
    assert sorted(http.get(f"{svc.url}/v2/images/{image['id']}").json()["tags"]) == ["one", "two words"]
    assert http.delete(f"{tags}/one").status_code == 204
    assert http.delete(f"{tags}/one").status_code == 404
    assert http.put(f"{tags}/{'t' * 256}").status_code == 400
    assert http.put(f"{svc.url}/v2/images/{uuid.uuid4()}/tags/x").status_code == 404


def test_tag_and_property_quotas(svc, http):
    image = create(svc, http, tags=[f"t{i}" for i in range(QUOTA)])
    resp = http.put(f"{svc.url}/v2/images/{image['id']}/tags/extra", headers=JSON)
    assert resp.status_code == 413 and "Image tag limit exceeded" in resp.json()["message"]
    over = {f"p{i}": "v" for i in range(QUOTA + 1)}
    assert http.post(f"{svc.url}/v2/images", json=over, headers=JSON).status_code == 413
    assert http.post(f"{svc.url}/v2/images", json={"tags": [f"t{i}" for i in range(QUOTA + 1)]}).status_code == 413
    full = create(svc, http, **{f"p{i}": "v" for i in range(QUOTA)})
    resp = patch(svc, http, full["id"], [{"op": "add", "path": "/one_more", "value": "v"}])
    assert resp.status_code == 413
    # Replacing an existing property is not growth.
    assert patch(svc, http, full["id"], [{"op": "replace", "path": "/p0", "value": "w"}]).status_code == 200


def test_usage(svc, http):
    resp = http.get(f"{svc.url}/v2/info/usage")
    assert resp.status_code == 200 and resp.json() == {"usage": {}}


def test_delete_reports_a_store_failure_and_keeps_the_image(svc, http):
    image = create(svc, http)
    upload(svc, http, image["id"], b"stuck bytes")
    (data,) = [p for p in _data_files(svc) if p.name == image["id"]]
    # A directory where the data file was: the file store cannot delete it.
    data.unlink()
    data.mkdir()
    (data / "blocker").write_text("x")
    resp = http.delete(f"{svc.url}/v2/images/{image['id']}", headers=JSON)
    assert resp.status_code == 503
    assert "was not deleted because its data could not be removed from fast" in resp.json()["message"]
    assert http.get(f"{svc.url}/v2/images/{image['id']}").json()["status"] == "active"
    # Once the store can delete again, a retried DELETE converges.
    (data / "blocker").unlink()
    data.rmdir()
    assert http.delete(f"{svc.url}/v2/images/{image['id']}").status_code == 204


def test_trailing_slash_is_not_an_image_id(svc, http):
    # tempest's get/delete_image('') negative tests expect 404, as Glance's router answers.
    for method in ("GET", "POST", "DELETE"):
        assert http.request(method, f"{svc.url}/v2/images/").status_code == 404
    resp = http.delete(f"{svc.url}/v2/images")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, POST"
