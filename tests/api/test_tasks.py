"""The tasks API against a real glancelite-api: list, show, filters, paging, policy, image tasks."""

from __future__ import annotations

import urllib.parse

import pytest
import requests

from tests.conftest import ADMIN, identity
from tests.support.imports import create_image, stage, start_import, wait_task

ALICE = identity("project-alice", "reader,member", "alice")
BOB = identity("project-bob", "reader,member", "bob")


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


@pytest.fixture(scope="module")
def imported(service):
    """Three images of alice imported with glance-direct; returns (image_id, task) pairs."""
    done = []
    with requests.Session() as http:
        for i in range(3):
            image_id = create_image(service, http, ALICE)
            assert stage(service, http, image_id, b"data-%d" % i, ALICE).status_code == 204
            assert start_import(service, http, image_id, {"name": "glance-direct"}, ALICE).status_code == 202
            done.append((image_id, wait_task(service, http, image_id)))
    return done


def test_list_is_admin_only(service, http, imported):
    assert http.get(service.url + "/v2/tasks", headers=ALICE).status_code == 403
    assert http.get(f"{service.url}/v2/tasks/{imported[0][1]['id']}", headers=ALICE).status_code == 403
    resp = http.get(service.url + "/v2/tasks", headers=ADMIN)
    assert resp.status_code == 200
    body = resp.json()
    assert body["schema"] == "/v2/schemas/tasks" and body["first"] == "/v2/tasks"
    ids = [t["id"] for t in body["tasks"]]
    assert {t["id"] for _, t in imported} <= set(ids)
    stub = body["tasks"][0]
    assert set(stub) == {"id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "self", "schema"}


def test_show_task(service, http, imported):
    image_id, task = imported[0]
    resp = http.get(f"{service.url}/v2/tasks/{task['id']}", headers=ADMIN)
    assert resp.status_code == 200
    shown = resp.json()
    assert shown["status"] == "success"
    assert shown["type"] == "api_image_import"
    assert shown["owner"] == "project-alice" and shown["user_id"] == "alice" and shown["image_id"] == image_id
    assert shown["result"] == {"image_id": image_id}
    assert shown["input"]["image_id"] == image_id
    assert shown["input"]["import_req"]["method"] == {"name": "glance-direct"}
    assert shown["message"] == ""
    assert shown["self"] == f"/v2/tasks/{task['id']}" and shown["schema"] == "/v2/schemas/task"
    assert shown["expires_at"].endswith("Z") and shown["expires_at"] > shown["updated_at"]
    assert shown["request_id"].startswith("req-")
    missing = http.get(f"{service.url}/v2/tasks/00000000-0000-0000-0000-000000000000", headers=ADMIN)
    assert missing.status_code == 404


def test_filters_sorting_and_paging(service, http, imported):
    url = service.url + "/v2/tasks"
    ok = http.get(url, params={"status": "success"}, headers=ADMIN).json()["tasks"]
    assert {t["id"] for _, t in imported} <= {t["id"] for t in ok}
    assert http.get(url, params={"status": "processing"}, headers=ADMIN).json()["tasks"] == []
    # COMPAT: the type filter knows only 'import'.
    assert http.get(url, params={"type": "import"}, headers=ADMIN).json()["tasks"] == []
    bad_type = http.get(url, params={"type": "api_image_import"}, headers=ADMIN)
    assert bad_type.status_code == 400 and "Invalid type value" in bad_type.json()["message"]
    assert http.get(url, params={"status": "done"}, headers=ADMIN).status_code == 400
    assert http.get(url, params={"marker": "not-a-uuid"}, headers=ADMIN).status_code == 400
    assert http.get(url, params={"sort_dir": "sideways"}, headers=ADMIN).status_code == 400
    assert http.get(url, params={"limit": "x"}, headers=ADMIN).status_code == 400

    everything = [t["id"] for t in http.get(url, params={"sort_dir": "asc"}, headers=ADMIN).json()["tasks"]]
    pages, params = [], {"limit": 2, "sort_dir": "asc"}
    while True:
        body = http.get(url, params=params, headers=ADMIN).json()
        pages.extend(t["id"] for t in body["tasks"])
        if "next" not in body:
            break
        assert body["next"].startswith("/v2/tasks?")
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(body["next"]).query))
    assert pages == everything


def test_delete_is_not_allowed(service, http, imported):
    resp = http.delete(f"{service.url}/v2/tasks/{imported[0][1]['id']}", headers=ADMIN)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


def test_image_tasks_follow_image_visibility(service, http, imported):
    image_id, task = imported[1]
    resp = http.get(f"{service.url}/v2/images/{image_id}/tasks", headers=ALICE)
    assert resp.status_code == 200
    (raw,) = resp.json()["tasks"]
    assert raw["id"] == task["id"] and raw["image_id"] == image_id
    assert raw["deleted"] is False and raw["deleted_at"] is None
    assert raw["input"]["backend"] == ["fast"]
    # Raw DB timestamps with microseconds, no Z.
    assert "." in raw["created_at"] and not raw["created_at"].endswith("Z")
    assert http.get(f"{service.url}/v2/images/{image_id}/tasks", headers=BOB).status_code == 404
    assert http.get(f"{service.url}/v2/images/{image_id}/tasks", headers=ADMIN).status_code == 200


@pytest.fixture(scope="module")
def task_service(tmp_path_factory, web):
    from tests.support.inprocess import InProcessService
    from tests.support.server import write_config

    root = tmp_path_factory.mktemp("tasks-import")
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_import_methods": "web-download,copy-image"},
            "import_filtering_opts": web.filtering_opts,
        },
    )
    server = InProcessService(config).start()
    yield server
    server.stop()


def test_legacy_import_task(task_service, http, web):
    from tests.support.imports import payload

    service = task_service
    body = {
        "type": "import",
        "input": {
            "import_from": web.url("/data/5000?seed=21"),
            "import_from_format": "raw",
            "image_properties": {"name": "legacy", "container_format": "bare"},
        },
    }
    assert http.post(service.url + "/v2/tasks", json=body, headers=ALICE).status_code == 403
    resp = http.post(service.url + "/v2/tasks", json=body, headers=ADMIN)
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["type"] == "import" and task["status"] in ("pending", "processing", "success")
    assert resp.headers["Location"].endswith(f"/v2/tasks/{task['id']}")
    image_id = task["image_id"]
    done = wait_task(service, http, image_id)
    assert done["id"] == task["id"] and done["status"] == "success"
    shown = http.get(f"{service.url}/v2/tasks/{task['id']}", headers=ADMIN).json()
    assert shown["result"] == {"image_id": image_id}
    assert shown["input"] == body["input"]
    image = http.get(f"{service.url}/v2/images/{image_id}", headers=ADMIN).json()
    assert image["name"] == "legacy" and image["status"] == "active" and image["disk_format"] == "raw"
    assert http.get(f"{service.url}/v2/images/{image_id}/file", headers=ADMIN).content == payload(5000, seed=21)
    assert http.get(service.url + "/v2/tasks", params={"type": "import"}, headers=ADMIN).json()["tasks"]


def test_legacy_import_task_refusals(task_service, http):
    url = task_service.url + "/v2/tasks"
    good_input = {"import_from": "http://127.0.0.1:1/x", "import_from_format": "raw", "image_properties": {}}
    cases = [
        ({"input": good_input}, "Task 'type' is required"),
        ({"type": "import"}, "Task 'input' is required"),
        ({"type": "import", "input": {"import_from": "http://x/"}}, "import_from_format"),
        ({"type": "import", "input": {**good_input, "import_from": "file:///etc/passwd"}}, "does not pass filtering"),
        ({"type": "import", "input": good_input}, "does not pass filtering"),
    ]
    before = len(http.get(task_service.url + "/v2/images", headers=ADMIN).json()["images"])
    for body, text in cases:
        resp = http.post(url, json=body, headers=ADMIN)
        assert resp.status_code == 400, (body, resp.text)
        assert text in resp.json()["message"]
    # A refused task leaves no image behind.
    assert len(http.get(task_service.url + "/v2/images", headers=ADMIN).json()["images"]) == before


def test_import_methods_follow_configuration(task_service, http):
    """This server enables only web-download and copy-image."""
    service = task_service
    info = http.get(service.url + "/v2/info/import").json()
    assert info["import-methods"]["value"] == ["web-download", "copy-image"]
    resp = http.post(service.url + "/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert resp.headers["OpenStack-image-import-methods"] == "web-download,copy-image"
    image_id = resp.json()["id"]
    staged = http.put(
        f"{service.url}/v2/images/{image_id}/stage", data=b"x", headers={"Content-Type": "application/octet-stream"}
    )
    assert staged.status_code == 404
    refused = start_import(service, http, image_id, {"name": "glance-direct"})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Unknown import method name 'glance-direct'.")
