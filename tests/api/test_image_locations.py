"""PATCH /locations with show_multiple_locations=True: add, remove, replace, and the views that show them."""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import ADMIN, identity
from tests.support.inprocess import serve

JSON = {"Accept": "application/json"}
V21 = {"Content-Type": "application/openstack-images-v2.1-json-patch", **JSON}
OWNER = identity("project-a", "reader,member", "alice")


@pytest.fixture(scope="module")
def svc(request, tmp_path_factory):
    sections = {
        "DEFAULT": {"show_multiple_locations": "true", "show_image_direct_url": "true", "image_location_quota": "2"}
    }
    yield from serve(request, tmp_path_factory, "locations", sections)


def active_image(svc, http, data=b"location data", headers=None):
    body = {"disk_format": "raw", "container_format": "bare"}
    image = http.post(f"{svc.url}/v2/images", json=body, headers={**JSON, **(headers or {})}).json()
    put = http.put(
        f"{svc.url}/v2/images/{image['id']}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )
    assert put.status_code == 204, put.text
    return http.get(f"{svc.url}/v2/images/{image['id']}", headers=JSON).json()


def copy_of(location_url: str, name: str) -> str:
    """A second file with the same bytes in the same store directory, as a file:// URL."""
    source = Path(urllib.parse.urlparse(location_url).path)
    target = source.with_name(name)
    shutil.copyfile(source, target)
    return f"file://{target}"


def patch(svc, http, image_id, ops, headers=None):
    return http.patch(f"{svc.url}/v2/images/{image_id}", json=ops, headers={**V21, **(headers or {})})


def test_views_show_locations_and_direct_url(svc, http):
    image = active_image(svc, http)
    assert len(image["locations"]) == 1 and image["locations"][0]["metadata"]["store"] == "fast"
    assert image["direct_url"] == image["locations"][0]["url"] and image["stores"] == "fast"
    queued = http.post(f"{svc.url}/v2/images", json={}, headers=JSON).json()
    assert queued["locations"] == [] and "direct_url" not in queued


def test_add_location_activates_a_queued_image(svc, http):
    source = active_image(svc, http, b"twelve bytes")
    url = copy_of(source["locations"][0]["url"], "copy-for-queued")
    target = http.post(f"{svc.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    op = {
        "op": "add",
        "path": "/locations/-",
        "value": {
            "url": url,
            "metadata": {},
            "validation_data": {"os_hash_algo": "sha512", "os_hash_value": source["os_hash_value"]},
        },
    }
    resp = patch(svc, http, target["id"], [op])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "active" and body["size"] == len(b"twelve bytes")
    assert body["os_hash_value"] == source["os_hash_value"] and body["stores"] == "fast"
    assert http.get(f"{svc.url}/v2/images/{target['id']}/file").content == b"twelve bytes"


def test_add_then_remove_a_second_location(svc, http):
    image = active_image(svc, http)
    first = image["locations"][0]["url"]
    second = copy_of(first, f"{image['id']}-second")
    resp = patch(
        svc, http, image["id"], [{"op": "add", "path": "/locations/-", "value": {"url": second, "metadata": {}}}]
    )
    assert resp.status_code == 200, resp.text
    assert {loc["url"] for loc in resp.json()["locations"]} == {first, second}
    # Duplicate URL, unknown URL, and the quota (2) are refused.
    dup = {"op": "add", "path": "/locations/-", "value": {"url": second, "metadata": {}}}
    assert patch(svc, http, image["id"], [dup]).status_code == 400
    third = copy_of(first, f"{image['id']}-third")
    over = {"op": "add", "path": "/locations/-", "value": {"url": third, "metadata": {}}}
    assert patch(svc, http, image["id"], [over]).status_code == 413
    # Remove the second (index in the list as shown) and its data goes too.
    index = [loc["url"] for loc in resp.json()["locations"]].index(second)
    resp = patch(svc, http, image["id"], [{"op": "remove", "path": f"/locations/{index}"}])
    assert resp.status_code == 200, resp.text
    assert [loc["url"] for loc in resp.json()["locations"]] == [first]
    assert not Path(urllib.parse.urlparse(second).path).exists()
    last = patch(svc, http, image["id"], [{"op": "remove", "path": "/locations/0"}], JSON)
    assert last.status_code == 403 and "Cannot remove last location in the image." in last.json()["message"]
    assert patch(svc, http, image["id"], [{"op": "remove", "path": "/locations/7"}]).status_code == 400


@pytest.mark.parametrize(
    "value",
    [
        {"url": "file:///etc/passwd", "metadata": {}},
        {"url": "nosuch://x", "metadata": {}},
        {"url": "file:///nonexistent/really", "metadata": {}},
        {"metadata": {}},
        {"url": "http://x"},
        "http://x",
    ],
)
def test_bad_locations_are_400(svc, http, value):
    image = http.post(f"{svc.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    resp = patch(svc, http, image["id"], [{"op": "add", "path": "/locations/-", "value": value}])
    assert resp.status_code == 400, resp.text


def test_replace_and_policies(svc, http):
    image = active_image(svc, http, headers=OWNER)
    assert patch(svc, http, image["id"], [{"op": "replace", "path": "/locations", "value": []}]).status_code == 403
    copy = copy_of(image["locations"][0]["url"], f"{image['id']}-replace")
    replace = {"op": "replace", "path": "/locations", "value": [{"url": copy, "metadata": {}}]}
    assert patch(svc, http, image["id"], [replace]).status_code == 400  # a different URL
    # The same URLs again may change their metadata (tempest's test_replace_location).
    same = [{**loc, "metadata": {**loc["metadata"], "date": "2015-10-15"}} for loc in image["locations"]]
    resp = patch(svc, http, image["id"], [{"op": "replace", "path": "/locations", "value": same}])
    assert resp.status_code == 200, resp.text
    assert resp.json()["locations"] == same
    # Removing a location is admin-only (delete_image_location).
    add = {"op": "add", "path": "/locations/-", "value": {"url": copy, "metadata": {}}}
    assert patch(svc, http, image["id"], [add], OWNER).status_code == 200
    assert patch(svc, http, image["id"], [{"op": "remove", "path": "/locations/1"}], OWNER).status_code == 403
    assert patch(svc, http, image["id"], [{"op": "remove", "path": "/locations/1"}], ADMIN).status_code == 200
    # Locations of a deactivated image cannot change.
    assert http.post(f"{svc.url}/v2/images/{image['id']}/actions/deactivate").status_code == 204
    assert patch(svc, http, image["id"], [add]).status_code == 409
