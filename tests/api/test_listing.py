"""GET /v2/images: paging, sorting, filters, visibility, links and every bad parameter (in process).

gunicorn's limit on the request line is tests/functional/test_listing.py.
"""

from __future__ import annotations

import urllib.parse
import uuid

import pytest

from tests.conftest import identity
from tests.support.inprocess import InProcessService, serve
from tests.support.server import write_config

JSON = {"Accept": "application/json"}
ALICE = identity("project-a", "reader,member", "alice")
BOB = identity("project-b", "reader,member", "bob")
CAROL = identity("project-c", "reader,member", "carol")
ADMIN = identity("admin-project", "admin,reader,member", "admin")


@pytest.fixture(scope="module")
def svc(request, tmp_path_factory):
    yield from serve(request, tmp_path_factory, "listing")


@pytest.fixture(scope="module")
def catalogue(svc):
    """A fixed set of images owned by three projects, made once for the module."""
    import requests

    made: dict[str, dict] = {}
    with requests.Session() as http:

        def create(name, headers, **body):
            body = {"name": name, "disk_format": "raw", "container_format": "bare", **body}
            resp = http.post(f"{svc.url}/v2/images", json=body, headers={**JSON, **headers})
            assert resp.status_code == 201, resp.text
            made[name] = resp.json()

        for i in range(7):
            create(f"a-private-{i}", ALICE, visibility="private", tags=["even"] if i % 2 == 0 else [], idx=str(i))
        create("a-shared", ALICE, visibility="shared")
        create("a-community", ALICE, visibility="community")
        create("a-hidden", ALICE, visibility="private", os_hidden=True)
        create("a-protected", ALICE, visibility="private", protected=True, disk_format="qcow2")
        create("b-private", BOB, visibility="private")
        create("b-community", BOB, visibility="community")
        create("b-shared-with-a", BOB, visibility="shared")
        create("b-shared-pending", BOB, visibility="shared")
        create("admin-public", ADMIN, visibility="public", owner="project-c")
        for name, status in (("b-shared-with-a", "accepted"), ("b-shared-pending", None)):
            image_id = made[name]["id"]
            assert http.post(f"{svc.url}/v2/images/{image_id}/members", json={"member": "project-a"}, headers=BOB).ok
            if status:
                url = f"{svc.url}/v2/images/{image_id}/members/project-a"
                assert http.put(url, json={"status": status}, headers=ALICE).ok
    return made


def names(svc, http, query="", headers=None):
    resp = http.get(f"{svc.url}/v2/images?{query}", headers={**JSON, **(headers or ALICE)})
    assert resp.status_code == 200, resp.text
    return [i["name"] for i in resp.json()["images"]]


def test_default_listing_for_a_member(svc, http, catalogue):
    got = set(names(svc, http, "limit=100"))
    expected = {f"a-private-{i}" for i in range(7)} | {
        "a-shared",
        "a-community",  # own community image
        "a-protected",
        "b-shared-with-a",  # accepted membership
        "admin-public",
    }
    assert got == expected


def test_visibility_and_member_status_filters(svc, http, catalogue):
    assert set(names(svc, http, "visibility=community")) == {"a-community", "b-community"}
    assert set(names(svc, http, "visibility=shared")) == {"a-shared", "b-shared-with-a"}
    assert set(names(svc, http, "visibility=shared&member_status=pending")) == {"a-shared", "b-shared-pending"}
    assert "b-shared-pending" in names(svc, http, "member_status=all&limit=100")
    assert set(names(svc, http, "visibility=public")) == {"admin-public"}
    assert "b-private" not in names(svc, http, "visibility=all&limit=100")
    assert "b-community" in names(svc, http, "visibility=all&limit=100")
    assert set(names(svc, http, "os_hidden=true")) == {"a-hidden"}
    assert set(names(svc, http, "os_hidden=True")) == {"a-hidden"}  # Glance lower-cases this one
    assert "b-private" in names(svc, http, "limit=100", ADMIN)


def test_filters(svc, http, catalogue):
    assert names(svc, http, "name=a-private-3") == ["a-private-3"]
    assert set(names(svc, http, 'name=in:a-private-1,"a-private-2"')) == {"a-private-1", "a-private-2"}
    assert set(names(svc, http, "tag=even")) == {f"a-private-{i}" for i in (0, 2, 4, 6)}
    assert names(svc, http, "tag=even&tag=nope") == []
    assert names(svc, http, "protected=true") == ["a-protected"]
    assert names(svc, http, "disk_format=qcow2") == ["a-protected"]
    assert names(svc, http, "idx=5") == ["a-private-5"]
    assert set(names(svc, http, "owner=project-b&limit=100")) == {"b-shared-with-a"}
    image_id = catalogue["a-private-1"]["id"]
    assert names(svc, http, f"id={image_id}") == ["a-private-1"]
    assert names(svc, http, "status=active") == []
    assert len(names(svc, http, "status=queued&limit=100")) == 12
    assert names(svc, http, "size_min=1") == []
    assert names(svc, http, "size=0") == []  # column filters: no image has data
    assert len(names(svc, http, "min_ram=0&limit=100")) == 12
    assert names(svc, http, "min_ram=1") == []
    assert len(names(svc, http, "size_max=0&limit=100")) == 0
    created = catalogue["a-private-0"]["created_at"]
    assert "a-private-0" in names(svc, http, f"created_at=gte:{created}&limit=100")
    assert names(svc, http, "created_at=lt:2000-01-01T00:00:00Z") == []
    assert "a-private-0" in names(svc, http, "updated_at=gt:2000-01-01T00:00:00&limit=100")


def test_sorting(svc, http, catalogue):
    mine = [f"a-private-{i}" for i in range(7)]
    query = "name=in:" + ",".join(mine)
    assert names(svc, http, query) == list(reversed(mine))  # created_at desc
    assert names(svc, http, f"{query}&sort_key=name&sort_dir=asc") == mine
    assert names(svc, http, f"{query}&sort=name:asc") == mine
    assert names(svc, http, f"{query}&sort=name") == list(reversed(mine))
    assert names(svc, http, f"{query}&sort_key=status&sort_key=name&sort_dir=asc&sort_dir=desc") == list(reversed(mine))


def test_paging_and_links(svc, http, catalogue):
    seen, url, pages = [], "/v2/images?limit=3&sort_key=name&sort_dir=asc", 0
    while url:
        resp = http.get(svc.url + url, headers=ALICE)
        body = resp.json()
        assert body["schema"] == "/v2/schemas/images"
        assert body["first"] == "/v2/images?limit=3&sort_key=name&sort_dir=asc"
        seen += [i["name"] for i in body["images"]]
        url = body.get("next")
        pages += 1
        assert pages < 10
    assert seen == sorted(names(svc, http, "limit=100"))
    # A final full page still gets a next link that yields an empty page.
    total = len(seen)
    body = http.get(f"{svc.url}/v2/images?limit={total}", headers=ALICE).json()
    assert len(body["images"]) == total and "next" in body
    assert http.get(svc.url + body["next"], headers=ALICE).json()["images"] == []
    assert http.get(f"{svc.url}/v2/images", headers=ALICE).json()["first"] == "/v2/images"
    marker = catalogue["a-private-3"]["id"]
    next_link = http.get(f"{svc.url}/v2/images?limit=1&marker={marker}", headers=ALICE).json()["next"]
    assert urllib.parse.parse_qs(urllib.parse.urlparse(next_link).query)["marker"] == [catalogue["a-private-2"]["id"]]


def test_limit_is_capped(tmp_path_factory, http):
    conf = write_config(tmp_path_factory.mktemp("cap"), {"DEFAULT": {"api_limit_max": "2", "limit_param_default": "1"}})
    server = InProcessService(conf).start()
    try:
        for _ in range(3):
            assert http.post(f"{server.url}/v2/images", json={}).status_code == 201
        assert len(http.get(f"{server.url}/v2/images").json()["images"]) == 1
        assert len(http.get(f"{server.url}/v2/images?limit=50").json()["images"]) == 2
    finally:
        server.stop()


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        f"marker={uuid.uuid4()}",
        "marker=not-a-uuid",
        "sort_key=owner",
        "sort_dir=sideways",
        "sort=name:up",
        "sort=bogus",
        "sort=name&sort_key=name",
        "sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc",
        "visibility=everyone",
        "member_status=maybe",
        "os_hidden=1",
        "protected=False",
        "size_min=big",
        "size_max=1e3",
        "size=big",
        "min_ram=x",
        "created_at=yesterday",
        "created_at=lt:yesterday",
        "updated_at=between:2020-01-01T00:00:00Z",
        "name=like:foo",
        "status=gt:active",
        'name=in:"unclosed',
        "changes-since=2020-01-01T00:00:00Z",
        "%ff%fe=1",
    ],
)
def test_bad_parameters_are_400(svc, http, catalogue, query):
    resp = http.get(f"{svc.url}/v2/images?{query}", headers={**JSON, **ALICE})
    assert resp.status_code == 400, resp.text


def test_marker_of_an_invisible_image_is_400(svc, http, catalogue):
    hidden = catalogue["b-private"]["id"]
    assert http.get(f"{svc.url}/v2/images?marker={hidden}", headers=ALICE).status_code == 400
    assert http.get(f"{svc.url}/v2/images?marker={hidden}", headers=ADMIN).status_code == 200


def test_reader_without_project_role_and_other_projects(svc, http, catalogue):
    carol = set(names(svc, http, "limit=100", CAROL))
    assert carol == {"admin-public"}


def test_operator_get_image_rule_filters_the_listing(tmp_path_factory, http):
    root = tmp_path_factory.mktemp("listing-policy")
    (root / "policy.yaml").write_text('"get_image": "role:admin or project_id:%(project_id)s"\n')
    conf = write_config(root, {"oslo_policy": {"policy_file": str(root / "policy.yaml")}})
    server = InProcessService(conf).start()
    try:
        for headers, visibility in ((ALICE, "private"), (BOB, "community"), (ADMIN, "public")):
            body = {"visibility": visibility, "owner": "project-b"} if headers is ADMIN else {"visibility": visibility}
            assert http.post(f"{server.url}/v2/images", json=body, headers=headers).status_code == 201
        listed = http.get(f"{server.url}/v2/images?visibility=all", headers=ALICE).json()["images"]
        # The public image of project-b is visible by the query but not by the operator's rule.
        assert [i["owner"] for i in listed] == ["project-a"]
        assert len(http.get(f"{server.url}/v2/images?visibility=all", headers=BOB).json()["images"]) == 2
    finally:
        server.stop()
