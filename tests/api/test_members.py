"""Image members: offered by the owner, accepted or rejected by the member project."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import ADMIN, identity
from tests.support.inprocess import serve

JSON = {"Accept": "application/json"}
OWNER = identity("owner-project", "reader,member", "owner")
GUEST = identity("guest-project", "reader,member", "guest")
OTHER = identity("other-project", "reader,member", "other")
MEMBER_QUOTA = 3


@pytest.fixture(scope="module")
def svc(request, tmp_path_factory):
    yield from serve(request, tmp_path_factory, "members", {"DEFAULT": {"image_member_quota": str(MEMBER_QUOTA)}})


def image(svc, http, **body):
    resp = http.post(f"{svc.url}/v2/images", json=body, headers={**JSON, **OWNER})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def add(svc, http, image_id, member, headers=OWNER):
    return http.post(f"{svc.url}/v2/images/{image_id}/members", json={"member": member}, headers={**JSON, **headers})


def test_member_lifecycle(svc, http):
    image_id = image(svc, http)
    url = f"{svc.url}/v2/images/{image_id}/members"
    # The guest cannot see the image before being offered it.
    assert http.get(f"{svc.url}/v2/images/{image_id}", headers=GUEST).status_code == 404
    resp = add(svc, http, image_id, "guest-project")
    assert resp.status_code == 200  # COMPAT: not 201
    body = resp.json()
    assert body["member_id"] == "guest-project" and body["image_id"] == image_id and body["status"] == "pending"
    assert body["schema"] == "/v2/schemas/member" and body["created_at"].endswith("Z")
    assert add(svc, http, image_id, "guest-project").status_code == 409
    listed = http.get(url, headers=OWNER).json()
    assert listed["schema"] == "/v2/schemas/members" and [m["member_id"] for m in listed["members"]] == [
        "guest-project"
    ]
    # A pending member sees the image directly, but not in its default listing.
    assert http.get(f"{svc.url}/v2/images/{image_id}", headers=GUEST).status_code == 200
    assert image_id not in [i["id"] for i in http.get(f"{svc.url}/v2/images", headers=GUEST).json()["images"]]
    # The owner cannot accept for the member.
    assert http.put(f"{url}/guest-project", json={"status": "accepted"}, headers=OWNER).status_code == 403
    resp = http.put(f"{url}/guest-project", json={"status": "accepted"}, headers=GUEST)
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
    assert image_id in [i["id"] for i in http.get(f"{svc.url}/v2/images", headers=GUEST).json()["images"]]
    assert http.get(f"{url}/guest-project", headers=GUEST).json()["status"] == "accepted"
    resp = http.put(f"{url}/guest-project", json={"status": "rejected"}, headers=GUEST)
    assert resp.json()["status"] == "rejected"
    assert image_id not in [i["id"] for i in http.get(f"{svc.url}/v2/images", headers=GUEST).json()["images"]]
    # The member sees only its own row; a stranger sees nothing.
    add(svc, http, image_id, "third-project")
    assert [m["member_id"] for m in http.get(url, headers=GUEST).json()["members"]] == ["guest-project"]
    assert len(http.get(url, headers=OWNER).json()["members"]) == 2
    assert http.get(url, headers=OTHER).status_code == 404
    assert http.get(f"{url}/third-project", headers=GUEST).status_code == 404
    # The member may not remove itself; the owner may.
    assert http.delete(f"{url}/guest-project", headers=GUEST).status_code == 403
    assert http.delete(f"{url}/guest-project", headers=OWNER).status_code == 204
    assert http.delete(f"{url}/guest-project", headers=OWNER).status_code == 404
    assert http.get(f"{url}/guest-project", headers=OWNER).status_code == 404
    assert http.get(f"{svc.url}/v2/images/{image_id}", headers=GUEST).status_code == 404


def test_only_shared_images_have_members(svc, http):
    image_id = image(svc, http, visibility="private")
    resp = add(svc, http, image_id, "guest-project")
    assert resp.status_code == 403 and "Only shared images have members." in resp.json()["message"]
    assert http.get(f"{svc.url}/v2/images/{image_id}/members", headers=OWNER).status_code == 403


def test_member_quota(svc, http):
    image_id = image(svc, http)
    for i in range(MEMBER_QUOTA):
        assert add(svc, http, image_id, f"p{i}").status_code == 200
    resp = add(svc, http, image_id, "one-too-many")
    assert resp.status_code == 413 and "Image member limit exceeded" in resp.json()["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"member": ""}, 400), ({"member": 5}, 400), ({"member": "m" * 300}, 400), ([], 400)],
)
def test_bad_member_bodies(svc, http, body, status):
    image_id = image(svc, http)
    resp = http.post(f"{svc.url}/v2/images/{image_id}/members", json=body, headers=OWNER)
    assert resp.status_code == status


def test_bad_status_updates(svc, http):
    image_id = image(svc, http)
    add(svc, http, image_id, "guest-project")
    url = f"{svc.url}/v2/images/{image_id}/members/guest-project"
    for body in ({}, {"status": "maybe"}, {"status": 1}, ["accepted"]):
        assert http.put(url, json=body, headers=GUEST).status_code == 400
    assert http.put(url, data=b"{bad", headers=GUEST).status_code == 400


def test_unknown_image_and_admin(svc, http):
    missing = str(uuid.uuid4())
    assert add(svc, http, missing, "x").status_code == 404
    assert http.get(f"{svc.url}/v2/images/{missing}/members").status_code == 404
    image_id = image(svc, http)
    assert add(svc, http, image_id, "guest-project", ADMIN).status_code == 200
    url = f"{svc.url}/v2/images/{image_id}/members/guest-project"
    assert http.put(url, json={"status": "accepted"}, headers=ADMIN).json()["status"] == "accepted"
    # Noauth (no identity headers) is admin too.
    assert http.get(url).status_code == 200
