"""Glance's notifications, as a consumer on a real RabbitMQ receives them from a real glancelite-api.

One worker, so every event goes through one queue and their order is the order glancelite
emits them (across workers, as across Glance's processes, events of different requests may
interleave). The sequences are Glance's (glance/notifier.py wrapping the repositories and
set_data; the import flow's saves and task transitions).
"""

from __future__ import annotations

import hashlib
import time

import pytest
import requests

from tests.conftest import ADMIN, identity
from tests.support.imports import OCTET, WebSource, create_image, image_tasks, payload, stage, start_import
from tests.support.server import Server, free_port, write_config

OWNER = identity("project-a", "reader,member", "user-a")
OTHER = identity("project-b", "reader,member", "user-b")
DATA = payload(300 * 1024, seed=16)


@pytest.fixture(scope="module")
def web():
    source = WebSource()
    yield source
    source.close()


def _service(tmp_path_factory, name: str, transport_url: str, sections=None, **extra_default) -> Server:
    config = write_config(
        tmp_path_factory.mktemp(name),
        {
            "DEFAULT": {"workers": "1", "transport_url": transport_url, **extra_default},
            "oslo_messaging_notifications": {"driver": "messagingv2"},
            **(sections or {}),
        },
    )
    return Server(config).start()


@pytest.fixture(scope="module")
def service(broker, tmp_path_factory, web):
    # web-download from the test's own 127.0.0.1 server must pass the import filter
    server = _service(tmp_path_factory, "notify", broker.url, {"import_filtering_opts": web.filtering_opts})
    yield server
    server.stop()


def _of_image(messages, image_id: str, task_ids=()) -> list[dict]:
    def ours(m):
        p = m["payload"]
        if not isinstance(p, dict):
            return image_id in str(p)
        return p.get("id") == image_id or p.get("image_id") == image_id or p.get("id") in task_ids

    return [m for m in messages if ours(m)]


def _types(messages) -> list[str]:
    return [m["event_type"] for m in messages]


def _wait_types(listener, image_id, expected: list[str], task_ids=()) -> list[dict]:
    got = listener.wait_for(lambda ms: len(_of_image(ms, image_id, task_ids)) >= len(expected))
    return _of_image(got, image_id, task_ids)


def _upload(service, image_id: str, data: bytes = DATA, headers=OWNER) -> None:
    resp = requests.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers={**OCTET, **headers})
    assert resp.status_code == 204, resp.text


def _wait_status(service, image_id: str, status: str, timeout: float = 30) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        image = requests.get(f"{service.url}/v2/images/{image_id}", headers=OWNER).json()
        if image["status"] == status and not image.get("os_glance_importing_to_stores"):
            return image
        time.sleep(0.1)
    raise AssertionError(f"image {image_id} did not become {status}: {image}")


def _task_ids(service, image_id: str) -> set[str]:
    return {t["id"] for t in image_tasks(service, requests, image_id, OWNER)}


def _wait_task_done(service, image_id: str) -> set[str]:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        tasks = image_tasks(service, requests, image_id, OWNER)
        if tasks and all(t["status"] in ("success", "failure") for t in tasks):
            return {t["id"] for t in tasks}
        time.sleep(0.1)
    raise AssertionError(f"the tasks of image {image_id} did not finish")


def test_create_upload_activate(service, listener):
    image_id = create_image(service, requests, OWNER, name="notified", visibility="private", tags=["t1"], foo="bar")
    _upload(service, image_id)
    events = _wait_types(listener, image_id, ["x"] * 6)
    # Glance: the repository's add; the upload's save to saving; set_data's prepare, upload and
    # activate; the save of the active image.
    assert _types(events) == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.update",
    ]
    assert all(m["publisher_id"] == "image.localhost" and m["priority"] == "INFO" for m in events)
    create, prepare, upload, activate = events[0]["payload"], events[2]["payload"], events[3], events[4]["payload"]
    assert create["status"] == "queued" and create["name"] == "notified" and create["owner"] == "project-a"
    assert create["visibility"] == "private" and create["is_public"] is False and create["tags"] == ["t1"]
    assert create["properties"] == {"foo": "bar"} and create["deleted"] is False and create["deleted_at"] is None
    assert create["created_at"].endswith("Z") and "locations" not in create
    assert prepare["status"] == "saving" and prepare["backend"] == "fast"
    assert prepare["os_glance_importing_to_stores"] == [] and prepare["os_glance_failed_import"] == []
    upload = upload["payload"]
    assert upload["status"] == "active" and upload["size"] == len(DATA)
    assert upload["checksum"] == hashlib.md5(DATA).hexdigest()
    assert (
        activate["status"] == "active" and activate["disk_format"] == "raw" and activate["container_format"] == "bare"
    )
    assert set(create) >= {
        "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum",
        "owner", "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility",
        "properties", "tags", "deleted", "deleted_at",
    }  # fmt: skip


def test_glance_direct_import(service, listener):
    image_id = create_image(service, requests, OWNER)
    assert stage(service, requests, image_id, DATA, OWNER).status_code == 204
    assert start_import(service, requests, image_id, {"name": "glance-direct"}, OWNER).status_code == 202
    task_ids = _wait_task_done(service, image_id)
    expected = [
        "image.create",
        "image.update",  # staged: uploading
        "task.create",
        "task.run",
        "task.processing",
        "image.update",  # importing
        "image.prepare",
        "image.upload",
        "image.activate",
        "task.success",
    ]
    events = _wait_types(listener, image_id, expected, task_ids)
    assert _types(events) == expected
    by_type = {m["event_type"]: m["payload"] for m in events}
    assert by_type["image.update"]["status"] == "importing"
    assert by_type["image.prepare"]["backend"] == "fast"
    assert by_type["image.prepare"]["os_glance_importing_to_stores"] == ["fast"]
    assert by_type["image.upload"]["os_glance_importing_to_stores"] == []
    assert by_type["image.activate"]["status"] == "active"
    task = by_type["task.success"]
    assert task["type"] == "api_image_import" and task["status"] == "success" and task["owner"] == "project-a"
    assert task["result"] is None and task["message"] is None and "input" not in task  # Glance leaves them out
    assert by_type["task.create"]["status"] == "pending" and by_type["task.processing"]["status"] == "processing"


def test_web_download(service, web, listener):
    image_id = create_image(service, requests, OWNER)
    resp = start_import(service, requests, image_id, {"name": "web-download", "uri": web.url("/data/4096")}, OWNER)
    assert resp.status_code == 202, resp.text
    task_ids = _wait_task_done(service, image_id)
    expected = [
        "image.create",
        "task.create",
        "task.run",
        "task.processing",
        "image.update",
        "image.prepare",
        "image.upload",
        "image.activate",
        "task.success",
    ]
    events = _wait_types(listener, image_id, expected, task_ids)
    assert _types(events) == expected
    assert events[-2]["payload"]["size"] == 4096


def test_copy_image(service, listener):
    image_id = create_image(service, requests, OWNER)
    _upload(service, image_id)
    resp = start_import(service, requests, image_id, {"name": "copy-image"}, ADMIN, stores=["slow"])
    assert resp.status_code == 202, resp.text
    task_ids = _wait_task_done(service, image_id)
    copy = ["task.create", "task.run", "task.processing", "image.prepare", "image.upload", "task.success"]
    events = _wait_types(listener, image_id, ["x"] * 6 + copy, task_ids)
    assert _types(events)[6:] == copy  # no activate: the image is active already
    prepare = events[9]["payload"]
    assert prepare["backend"] == "slow" and prepare["status"] == "active"
    assert prepare["os_glance_importing_to_stores"] == ["slow"]


def test_members(service, listener):
    image_id = create_image(service, requests, OWNER, visibility="shared")
    members = f"{service.url}/v2/images/{image_id}/members"
    assert requests.post(members, json={"member": "project-b"}, headers=OWNER).status_code == 200
    resp = requests.put(f"{members}/project-b", json={"status": "accepted"}, headers=OTHER)
    assert resp.status_code == 200, resp.text
    assert requests.delete(f"{members}/project-b", headers=OWNER).status_code == 204
    events = _wait_types(listener, image_id, ["x"] * 4)
    assert _types(events) == ["image.create", "image.member.create", "image.member.update", "image.member.delete"]
    create, update, delete = (m["payload"] for m in events[1:])
    assert create == {**create, "image_id": image_id, "member_id": "project-b", "status": "pending", "deleted": False}
    assert update["status"] == "accepted" and update["deleted_at"] is None
    assert delete["deleted"] is True and delete["deleted_at"].endswith("Z")
    assert set(create) == {"image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at"}


def test_update_download_delete(service, listener):
    image_id = create_image(service, requests, OWNER, name="before")
    _upload(service, image_id)
    patch = [{"op": "replace", "path": "/name", "value": "after"}, {"op": "add", "path": "/color", "value": "blue"}]
    resp = requests.patch(
        f"{service.url}/v2/images/{image_id}",
        json=patch,
        headers={**OWNER, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert resp.status_code == 200, resp.text
    got = requests.get(f"{service.url}/v2/images/{image_id}/file", headers=OTHER | OWNER)
    assert got.content == DATA
    ranged = requests.get(f"{service.url}/v2/images/{image_id}/file", headers={**OWNER, "Range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert requests.delete(f"{service.url}/v2/images/{image_id}", headers=OWNER).status_code == 204
    events = _wait_types(listener, image_id, ["x"] * 10)[6:]
    assert _types(events) == ["image.update", "image.send", "image.send", "image.delete"]
    update, send, ranged_send, delete = (m["payload"] for m in events)
    assert update["name"] == "after" and update["properties"] == {"color": "blue"}
    assert send == {
        "bytes_sent": len(DATA),
        "image_id": image_id,
        "owner_id": "project-a",
        "receiver_tenant_id": "project-a",
        "receiver_user_id": "user-a",
    }
    assert ranged_send["bytes_sent"] == 100 and events[2]["priority"] == "INFO"
    assert delete["status"] == "deleted" and delete["deleted"] is True and delete["deleted_at"].endswith("Z")
    assert delete["name"] == "after" and delete["size"] == len(DATA)


def test_disabled_notifications(broker, tmp_path_factory, listener):
    """image.update by type, image.member.* and task.* by group (the two spellings)."""
    server = _service(
        tmp_path_factory, "notify-disabled", broker.url, disabled_notifications="image.update,image.member,task.*"
    )
    try:
        image_id = create_image(server, requests, OWNER, visibility="shared")
        _upload(server, image_id)
        members = f"{server.url}/v2/images/{image_id}/members"
        assert requests.post(members, json={"member": "project-b"}, headers=OWNER).status_code == 200
        resp = start_import(server, requests, image_id, {"name": "copy-image"}, ADMIN, stores=["slow"])
        assert resp.status_code == 202, resp.text
        task_ids = _wait_task_done(server, image_id)
        assert requests.delete(f"{server.url}/v2/images/{image_id}", headers=OWNER).status_code == 204
        listener.wait_for(lambda ms: "image.delete" in _types(_of_image(ms, image_id)))
        events = _of_image(listener.quiet_for(1.0), image_id, task_ids)
    finally:
        server.stop()
    assert _types(events) == [
        "image.create",
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.prepare",  # the copy into slow
        "image.upload",
        "image.delete",
    ]


def test_dead_broker_never_fails_a_request(broker, service, tmp_path_factory):
    """RabbitMQ stopped under a running service, and a service started with no broker at all:
    every request answers as usual and in time; the failure is logged. (Last: it stops the broker.)"""
    broker.stop()
    absent = _service(tmp_path_factory, "notify-absent", f"rabbit://guest:guest@127.0.0.1:{free_port()}/")
    try:
        for server in (service, absent):
            started = time.monotonic()
            for _ in range(3):  # more events than one blocked send: they queue behind it
                image_id = create_image(server, requests, OWNER)
                _upload(server, image_id)
                assert requests.get(f"{server.url}/v2/images/{image_id}/file", headers=OWNER).content == DATA
                resp = requests.patch(
                    f"{server.url}/v2/images/{image_id}",
                    json=[{"op": "add", "path": "/k", "value": "v"}],
                    headers={**OWNER, "Content-Type": "application/openstack-images-v2.1-json-patch"},
                )
                assert resp.status_code == 200
                assert requests.delete(f"{server.url}/v2/images/{image_id}", headers=OWNER).status_code == 204
            assert time.monotonic() - started < 10, "requests waited on the broker"
        # Logged by oslo.messaging (the stopped broker's reconnection attempts, the send that failed).
        end = time.monotonic() + 15
        while time.monotonic() < end and "is unreachable" not in service.log.read_text():
            time.sleep(0.2)
        assert "is unreachable" in service.log.read_text()
        assert "Could not send notification" in absent.log.read_text()
        assert "EventletDeprecationWarning" not in absent.output()  # a quiet start
    finally:
        absent.stop()
