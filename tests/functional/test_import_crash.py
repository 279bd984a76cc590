"""Crash safety: a worker killed (SIGKILL) in the middle of an import leaves nothing stuck.

The download is held open by the local web server after its first MiB, so
the kill lands while the import is running. The worker that owns the task is
found from the task's owner marker in the tasks store.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests

from tests.functional._import_support import (
    MIB,
    WebSource,
    create_image,
    get_image,
    image_tasks,
    payload,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, write_config


@pytest.fixture(scope="module")
def web():
    source = WebSource()
    yield source
    source.close()


@pytest.fixture(scope="module")
def config(tmp_path_factory, web):
    root = tmp_path_factory.mktemp("crash")
    return write_config(
        root,
        {"import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": str(web.port)}},
    )


@pytest.fixture
def http():
    with requests.Session() as session:
        session.headers["Accept"] = "application/json"
        yield session


def running_import(service, http, web, size=8 * MIB) -> tuple[str, dict, int]:
    """Start a web-download that stalls after 1 MiB; returns (image id, task, pid of its worker)."""
    image_id = create_image(service, http)
    gate = f"crash-{image_id}"
    uri = web.url(f"/gated/{size}?gate={gate}")
    assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
    assert web.wait_started(gate)
    (task,) = image_tasks(service, http, image_id)
    marker = service.config.parent / "tasks" / f"{task['id']}.owner"
    owner = json.loads(marker.read_text())
    assert get_image(service, http, image_id)["status"] == "importing"
    download = service.config.parent / "tasks" / f"{task['id']}.download"
    for _ in range(100):  # the first MiB is on its way into the work file
        if download.exists() and download.stat().st_size > 0:
            break
        time.sleep(0.05)
    assert download.exists()
    return image_id, task, owner["pid"]


def assert_recovered(service, http, image_id, task_id, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            tasks = image_tasks(service, http, image_id)
        except (requests.ConnectionError, AssertionError):
            tasks = []
        if tasks and tasks[0]["status"] == "failure":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"task {task_id} was not failed after the crash: {tasks}")
    assert "stopped" in tasks[0]["message"]
    image = get_image(service, http, image_id)
    assert image["status"] == "queued"
    assert "os_glance_import_task" not in image
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert image["os_glance_failed_import"] == "fast"
    root = service.config.parent
    for store in ("fast", "slow", "staging"):
        assert store_files(root, store, image_id) == [], store
    assert [n for n in os.listdir(root / "tasks") if n.startswith(task_id)] == []


def assert_importable_again(service, http, web, image_id):
    data = payload(MIB, seed=11)
    uri = web.url(f"/data/{len(data)}?seed=11")
    resp = start_import(service, http, image_id, {"name": "web-download", "uri": uri})
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id, count=2)["status"] == "success"
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data


def test_killed_worker_is_recovered_by_its_replacement(config, web, http):
    service = Server(config).start()
    try:
        image_id, task, pid = running_import(service, http, web)
        assert pid in service.worker_pids()
        os.kill(pid, signal.SIGKILL)
        # gunicorn starts a replacement worker; building its services recovers the import.
        assert_recovered(service, http, image_id, task["id"])
        assert pid not in service.worker_pids()
        assert_importable_again(service, http, web, image_id)
        web.open_gate(f"crash-{image_id}")
    finally:
        service.stop()


def test_whole_service_killed_then_restarted(config, web, http):
    service = Server(config).start()
    try:
        image_id, task, _pid = running_import(service, http, web)
        os.killpg(service.proc.pid, signal.SIGKILL)
        service.proc.wait(10)
        web.open_gate(f"crash-{image_id}")
        service = Server(config).start()
        assert_recovered(service, http, image_id, task["id"])
        assert_importable_again(service, http, web, image_id)
    finally:
        service.stop()
