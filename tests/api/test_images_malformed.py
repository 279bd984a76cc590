"""A sweep of malformed requests at every images/members/tags endpoint: always 4xx, never 500 or a hang."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import identity

ALICE = identity("project-a", "reader,member", "alice")
PATCH_CT = "application/openstack-images-v2.1-json-patch"

BAD_BODIES = [
    b"{",
    b"not json",
    b"\xff\xfe\x00garbage",
    b"null",
    b"42",
    b'"string"',
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    b'{"name": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    json.dumps({"name": "x" * 100_000}).encode(),
    json.dumps({"min_ram": 10**40}).encode(),
    json.dumps({"min_disk": 1.5}).encode(),
    json.dumps({"protected": None}).encode(),
    json.dumps({"tags": [1, 2]}).encode(),
    json.dumps({"tags": ["a"] * 100_000}).encode(),
    json.dumps({"id": "1234"}).encode(),
    json.dumps({"id": 5}).encode(),
    json.dumps({"visibility": None}).encode(),
    json.dumps({"os_hidden": "true"}).encode(),
    json.dumps({"unknown_number": 1}).encode(),
    json.dumps({"nested": {"a": "b"}}).encode(),
    json.dumps({"": "empty key"}).encode(),
    json.dumps({"name": "nul\u0000inside"}).encode(),
    json.dumps({"prop\u0000": "x"}).encode(),
    json.dumps({"tags": ["a\u0000"]}).encode(),
    json.dumps({"member": "m\u0000", "status": "accepted\u0000"}).encode(),
    json.dumps([{"op": "replace", "path": "/name", "value": "x"}]).encode(),
    b"x" * (2 * 1024 * 1024),
]

VALID_CREATES = {json.dumps({"tags": ["a"] * 100_000}).encode(), json.dumps({"": "empty key"}).encode()}


@pytest.fixture(scope="module")
def image_id(service):
    import requests

    resp = requests.post(f"{service.url}/v2/images", json={"name": "target"}, headers=ALICE)
    assert resp.status_code == 201
    return resp.json()["id"]


def assert_client_error(resp):
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_create_with_bad_bodies(service, http, body):
    resp = http.post(
        f"{service.url}/v2/images",
        data=body,
        headers={"Content-Type": "application/json", **ALICE},
        timeout=30,
    )
    if body.startswith(b'{"unknown_number"') or body.startswith(b'{"nested"'):
        assert resp.status_code == 400
    if body in VALID_CREATES:
        assert resp.status_code == 201  # a tag list is a set; an empty property name is a name
    else:
        assert_client_error(resp)


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_patch_with_bad_bodies(service, http, image_id, body):
    resp = http.patch(
        f"{service.url}/v2/images/{image_id}",
        data=body,
        headers={"Content-Type": PATCH_CT, **ALICE},
        timeout=30,
    )
    if body.startswith(b'[{"op"'):
        assert resp.status_code == 200  # the one well-formed patch
    else:
        assert_client_error(resp)


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_member_endpoints_with_bad_bodies(service, http, image_id, body):
    headers = {"Content-Type": "application/json", **ALICE}
    url = f"{service.url}/v2/images/{image_id}/members"
    assert_client_error(http.post(url, data=body, headers=headers, timeout=30))
    assert_client_error(http.put(f"{url}/someone", data=body, headers=headers, timeout=30))


@pytest.mark.parametrize(
    "path",
    [
        "/v2/images/not-a-uuid",
        "/v2/images/%00",
        "/v2/images/" + "a" * 5000,
        "/v2/images/{uuid}/members",
        "/v2/images/{uuid}/members/x",
        "/v2/images/{uuid}/tags/x",
        "/v2/images/{uuid}/tags/%00",
        "/v2/images/{uuid}/members/%00",
        "/v2/images/%ff%fe/tags/%ff",
        "/v2/images/{uuid}/actions/deactivate",
        "/v2/images/{uuid}/actions/explode",
        "/v2/schemas/nothing",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_bad_paths(service, http, path, method):
    url = service.url + path.replace("{uuid}", str(uuid.uuid4()))
    resp = http.request(method, url, headers={"Content-Type": PATCH_CT, **ALICE}, timeout=30)
    assert_client_error(resp)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "application/json-patch+json",
        "application/openstack-images-v2.2-json-patch",
        "",
    ],
)
def test_patch_content_types(service, http, image_id, content_type):
    resp = http.patch(
        f"{service.url}/v2/images/{image_id}", data=b"[]", headers={"Content-Type": content_type}, timeout=30
    )
    assert resp.status_code == 415


@pytest.mark.parametrize(
    "query",
    [
        "limit=%ff",
        "marker=%00",
        "sort_key=" + "a" * 300,
        "a" * 300 + "=1",
        "&&&=&=",
        "tag=%ff%fe",
        "name=in:",
        "limit=1e999",
    ],
)
def test_bad_query_strings(service, http, query):
    resp = http.get(f"{service.url}/v2/images?{query}", headers=ALICE, timeout=30)
    assert resp.status_code < 500, resp.text[:300]


@pytest.mark.parametrize("key", ["size_min", "size_max", "min_disk", "min_ram"])
@pytest.mark.parametrize("value", [str(2**64), str(-(2**70))])
def test_integer_filters_past_64_bits_are_a_400_naming_the_parameter(service, http, key, value):
    resp = http.get(f"{service.url}/v2/images?{key}={value}", headers=ALICE, timeout=30)
    assert resp.status_code == 400, resp.text[:300]
    assert key in resp.text


def test_nul_in_path_parameters_of_a_real_image(service, http, image_id):
    base = f"{service.url}/v2/images/{image_id}"
    assert http.put(f"{base}/tags/a%00b", headers=ALICE).status_code == 400
    assert http.delete(f"{base}/tags/a%00b", headers=ALICE).status_code == 400
    for method in ("GET", "PUT", "DELETE"):
        resp = http.request(method, f"{base}/members/m%00", json={"status": "accepted"}, headers=ALICE)
        assert resp.status_code == 400, (method, resp.status_code)
