"""Location API v2.17 against the real service: POST/GET /v2/images/{id}/locations and the location_import task.

The service has an http store ``web`` next to the two file stores; image data
is served by a local web server on 127.0.0.1, allowed by [import_filtering_opts].
"""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.conftest import ADMIN, identity
from tests.support.imports import MIB, create_image, get_image, image_tasks, payload
from tests.support.inprocess import serve

JSON = {"Accept": "application/json"}
OWNER = identity("project-a", "reader,member", "alice")
OTHER = identity("project-b", "reader,member", "bob")
SERVICE = identity("project-a", "reader,service", "nova")
SIZE = 3 * MIB + 17


def _sections(web, do_secure_hash: bool) -> dict:
    return {
        "DEFAULT": {
            "enabled_backends": "fast:file, slow:file, web:http",
            "do_secure_hash": str(do_secure_hash),
            "http_retries": "2",
        },
        "web": {"store_description": "Read-only http store", "weight": "10"},
        "import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": f"80,443,{web.port}"},
    }


@pytest.fixture(scope="module")
def svc(request, tmp_path_factory, web):
    yield from serve(request, tmp_path_factory, "location-api", _sections(web, True))


def add_location(svc, http, image_id, url, validation_data=None, headers=OWNER):
    body = {"url": url, "validation_data": validation_data or {}}
    return http.post(f"{svc.url}/v2/images/{image_id}/locations", json=body, headers={**JSON, **headers})


def wait_task(svc, http, image_id, timeout=60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tasks = image_tasks(svc, http, image_id)
        if tasks and tasks[-1]["status"] in ("success", "failure"):
            for _ in range(50):  # the lock is released just after the task settles
                if "os_glance_import_task" not in get_image(svc, http, image_id):
                    break
                time.sleep(0.1)
            return tasks[-1]
        time.sleep(0.1)
    raise AssertionError(f"location task of {image_id} did not finish: {image_tasks(svc, http, image_id)}")


def locations(svc, http, image_id, headers=ADMIN):
    return http.get(f"{svc.url}/v2/images/{image_id}/locations", headers={**JSON, **headers})


def test_add_location_with_validation_data_hashes_and_activates(svc, http, web):
    data = payload(SIZE, seed=1)
    url = web.url(f"/data/{SIZE}?seed=1")
    image_id = create_image(svc, http, OWNER)
    sha256 = hashlib.sha256(data).hexdigest()
    resp = add_location(svc, http, image_id, url, {"os_hash_algo": "sha256", "os_hash_value": sha256})
    assert resp.status_code == 202, resp.text
    task = wait_task(svc, http, image_id)
    assert task["status"] == "success", task
    assert task["type"] == "location_import" and task["result"] == {"image_id": image_id}
    image = get_image(svc, http, image_id)
    assert image["status"] == "active" and image["size"] == SIZE
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha256", sha256)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["stores"] == "web"
    listed = locations(svc, http, image_id)
    assert listed.status_code == 200 and listed.json() == [{"url": url, "metadata": {"store": "web"}}]
    # The data is served through the http store.
    got = http.get(f"{svc.url}/v2/images/{image_id}/file", headers=OWNER)
    assert got.status_code == 200 and got.content == data


def test_add_location_without_validation_data_uses_the_configured_algorithm(svc, http, web):
    data = payload(1000, seed=2)
    image_id = create_image(svc, http, OWNER)
    assert add_location(svc, http, image_id, web.url("/stream/1000?seed=2")).status_code == 202
    assert wait_task(svc, http, image_id)["status"] == "success"
    image = get_image(svc, http, image_id)
    assert image["status"] == "active"
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert len(image_tasks(svc, http, image_id)) == 1


def test_hash_mismatch_fails_the_task_and_requeues_the_image(svc, http, web):
    image_id = create_image(svc, http, OWNER)
    wrong = {"os_hash_algo": "sha512", "os_hash_value": "beefdead" * 16}
    assert add_location(svc, http, image_id, web.url("/data/2048?seed=3"), wrong).status_code == 202
    task = wait_task(svc, http, image_id)
    assert task["status"] == "failure" and "not matched" in task["message"], task
    image = get_image(svc, http, image_id)
    assert image["status"] == "queued"
    assert image["os_hash_algo"] is None and image["os_hash_value"] is None and image["checksum"] is None
    # COMPAT: Glance keeps an http location it added (the http store cannot delete; tempest asserts it).
    assert image["stores"] == "web"
    assert "os_glance_import_task" not in image


def test_bad_bodies_are_400(svc, http, web):
    image_id = create_image(svc, http, OWNER)
    url = web.url("/data/10")
    sha512 = "ab" * 64
    bad = [
        {"os_hash_algo": "sha512", "os_hash_value": "dbc9e0f80d131e64b94913a7b40bb5"},  # too short for sha512
        {"os_hash_value": sha512},  # algo missing
        {"os_hash_algo": "sha512"},  # value missing
        {"os_hash_algo": "sha123", "os_hash_value": sha512},  # unknown algorithm
        {"os_hash_algo": "sha512", "os_hash_value": "ab" * 32},  # a sha256-sized value
        {"os_hash_algo": "sha256", "os_hash_value": "zz" * 32},  # not hex
    ]
    for validation in bad:
        resp = add_location(svc, http, image_id, url, validation)
        assert resp.status_code == 400, (validation, resp.text)
    for body in ({}, {"url": 5}, {"url": url, "extra": 1}, {"url": url, "validation_data": "x"}):
        resp = http.post(f"{svc.url}/v2/images/{image_id}/locations", json=body, headers={**JSON, **OWNER})
        assert resp.status_code == 400, (body, resp.text)
    for refused in ("file:///etc/passwd", "swift+config://ref/container/obj", "nonsense", "gopher://x/y"):
        resp = add_location(svc, http, image_id, refused, headers=ADMIN)
        assert resp.status_code == 400, (refused, resp.text)
    # A host outside [import_filtering_opts] allowed_hosts.
    resp = add_location(svc, http, image_id, f"http://127.0.0.2:{web.port}/data/10")
    assert resp.status_code == 400 and "does not pass filtering" in resp.text
    assert image_tasks(svc, http, image_id) == []
    assert get_image(svc, http, image_id)["status"] == "queued"


def test_non_queued_image_is_409(svc, http, web):
    image_id = create_image(svc, http, OWNER)
    assert add_location(svc, http, image_id, web.url("/data/64?seed=5")).status_code == 202
    assert wait_task(svc, http, image_id)["status"] == "success"
    resp = add_location(svc, http, image_id, web.url("/data/64?seed=6"))
    assert resp.status_code == 409, resp.text


def test_policy(svc, http, web):
    image_id = create_image(svc, http, OWNER)
    url = web.url("/data/32?seed=7")
    # Another project cannot see the (shared, memberless) image: 404; a reader may see it but not add: 403.
    assert add_location(svc, http, image_id, url, headers=OTHER).status_code == 404
    reader = identity("project-a", "reader", "carol")
    assert add_location(svc, http, image_id, url, headers=reader).status_code == 403
    # GET /locations is for the service role (or admin) only.
    assert locations(svc, http, image_id, headers=OWNER).status_code == 403
    listed = locations(svc, http, image_id, headers=SERVICE)
    assert listed.status_code == 200 and listed.json() == []
    assert locations(svc, http, image_id, headers=ADMIN).json() == []
    # A normal user may only add http locations.
    resp = add_location(svc, http, image_id, "s3://bucket/obj")
    assert resp.status_code == 403, resp.text


def test_delete_during_hash_calculation_cancels_it(svc, http, web):
    size = 8 * MIB
    image_id = create_image(svc, http, OWNER)
    gate = f"cancel-{image_id}"
    url = web.url(f"/gated/{size}?gate={gate}")
    assert add_location(svc, http, image_id, url).status_code == 202
    assert web.wait_started(gate, timeout=30), "the hash calculation never started reading"
    image = get_image(svc, http, image_id)
    assert image["status"] == "active" and image["os_hash_algo"] == "sha512" and image["os_hash_value"] is None
    (task,) = image_tasks(svc, http, image_id)
    # One location operation at a time: the image is locked (and no longer queued).
    assert add_location(svc, http, image_id, web.url("/data/64")).status_code == 409
    resp = http.delete(f"{svc.url}/v2/images/{image_id}", headers=OWNER)
    assert resp.status_code == 204, resp.text
    assert http.get(f"{svc.url}/v2/images/{image_id}", headers=OWNER).status_code == 404
    # The rest of the data arrives: the hashing worker notices the deletion and stops.
    web.open_gate(gate)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        task = http.get(f"{svc.url}/v2/tasks/{task['id']}", headers=ADMIN).json()
        if task["status"] in ("success", "failure"):
            break
        time.sleep(0.2)
    assert task["status"] == "failure" and "canceled" in task["message"], task


@pytest.fixture(scope="module")
def svc_no_hash(request, tmp_path_factory, web):
    yield from serve(request, tmp_path_factory, "location-api-nohash", _sections(web, False))


def test_do_secure_hash_false_activates_at_once(svc_no_hash, http, web):
    svc = svc_no_hash
    image_id = create_image(svc, http, OWNER)
    assert add_location(svc, http, image_id, web.url("/data/4096?seed=8")).status_code == 202
    assert wait_task(svc, http, image_id)["status"] == "success"
    image = get_image(svc, http, image_id)
    assert image["status"] == "active" and image["size"] == 4096
    assert image["checksum"] is None and image["os_hash_value"] is None
    # validation_data, when given, is recorded as is.
    other = create_image(svc, http, OWNER)
    given = {"os_hash_algo": "sha256", "os_hash_value": "cd" * 32}
    assert add_location(svc, http, other, web.url("/data/4096?seed=9"), given).status_code == 202
    assert wait_task(svc, http, other)["status"] == "success"
    image = get_image(svc, http, other)
    assert (image["status"], image["os_hash_algo"], image["os_hash_value"]) == ("active", "sha256", "cd" * 32)


def test_without_an_http_store_only_service_users_may_add_locations(service, http, web):
    """conftest's service has file stores only: Glance's 403 for members, 400 (no store serves http) for admin."""
    image_id = create_image(service, http, OWNER)
    url = web.url("/data/16")
    resp = add_location(service, http, image_id, url)
    assert resp.status_code == 403 and "http store must be enabled" in resp.text, resp.text
    resp = add_location(service, http, image_id, url, headers=ADMIN)
    assert resp.status_code == 400 and "no configured store serves http" in resp.text, resp.text
    assert image_tasks(service, http, image_id) == []
