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

from tests.faults.conftest import assert_audit_clean
from tests.support.imports import (
    MIB,
    create_image,
    get_image,
    image_tasks,
    payload,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, write_config

STORES = 4  # fast, slow, staging, tasks


@pytest.fixture(scope="module")
def config(tmp_path_factory, web):
    root = tmp_path_factory.mktemp("crash")
    return write_config(
        root,
        {"import_filtering_opts": web.filtering_opts},
    )


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


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
    # Recovery claims the task first (failing it is the compare-and-set that keeps two
    # workers from both undoing it), then undoes the image and releases its lock.
    end = time.monotonic() + timeout
    tasks, image = [], {}
    while time.monotonic() < end:
        try:
            tasks = image_tasks(service, http, image_id)
            image = get_image(service, http, image_id)
        except (requests.ConnectionError, AssertionError):
            tasks = []
        if tasks and tasks[0]["status"] == "failure" and "os_glance_import_task" not in image:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"task {task_id} was not failed and its image released after the crash: {tasks} {image}")
    assert "stopped" in tasks[0]["message"]
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
        assert_audit_clean(config, stores=STORES)
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
        assert_audit_clean(config, stores=STORES)
    finally:
        service.stop()


def _database(config):
    import configparser

    from glancelite.db import engine as db_engine
    from glancelite.settings import DatabaseSettings

    cp = configparser.RawConfigParser()
    cp.read(config)
    return db_engine.create_engine(DatabaseSettings(connection=cp["database"]["connection"]))


def test_lock_of_a_dead_task_is_taken_over(config, web, http):
    """A lock whose task is gone, finished, or owned by a dead process does not block a new import."""
    import uuid

    from glancelite.db import images as images_db
    from glancelite.db import tasks as tasks_db

    service = Server(config).start()
    engine = _database(config)
    try:
        uri = web.url("/data/2048?seed=31")
        # 1. The lock names a task that does not exist.
        ghost = create_image(service, http)
        images_db.acquire_property_lock(engine, ghost, "os_glance_import_task", str(uuid.uuid4()))
        assert start_import(service, http, ghost, {"name": "web-download", "uri": uri}).status_code == 202
        assert wait_task(service, http, ghost)["status"] == "success"

        # 2. The lock names a processing task whose worker process is dead (pid of a finished child).
        stuck = create_image(service, http)
        dead_task = str(uuid.uuid4())
        tasks_db.create_task(
            engine,
            {"id": dead_task, "type": "api_image_import", "image_id": stuck, "status": "pending"},
            {"image_id": stuck, "import_req": {"method": {"name": "web-download"}}, "backend": ["fast"]},
        )
        tasks_db.update_task(engine, dead_task, status="processing")
        images_db.update_image(
            engine,
            stuck,
            expected_status="queued",
            values={"status": "importing"},
            properties_set={"os_glance_import_task": dead_task, "os_glance_importing_to_stores": "fast"},
        )
        import socket
        import subprocess

        child = subprocess.Popen(["true"])
        child.wait()
        marker = service.config.parent / "tasks" / f"{dead_task}.owner"
        marker.write_text(json.dumps({"host": socket.gethostname(), "pid": child.pid, "start": None}))
        resp = start_import(service, http, stuck, {"name": "web-download", "uri": uri})
        assert resp.status_code == 202, resp.text
        assert wait_task(service, http, stuck, count=2)["status"] == "success"
        dead = tasks_db.get_task(engine, dead_task)
        assert dead.status == "failure" and "taken over" in dead.message
        assert not marker.exists()
        image = get_image(service, http, stuck)
        assert image["status"] == "active" and image.get("os_glance_failed_import", "") == ""

        # 3. A live task's lock is respected: 409.
        alive = create_image(service, http)
        gate = f"alive-{alive}"
        assert (
            start_import(
                service, http, alive, {"name": "web-download", "uri": web.url(f"/gated/{2 * MIB}?gate={gate}")}
            ).status_code
            == 202
        )
        assert web.wait_started(gate)
        second = start_import(service, http, alive, {"name": "web-download", "uri": uri})
        assert second.status_code == 409 and "active task" in second.json()["message"]
        web.open_gate(gate)
        assert wait_task(service, http, alive)["status"] == "success"
        assert_audit_clean(config, stores=STORES)
    finally:
        engine.dispose()
        service.stop()


def test_graceful_stop_lets_running_import_finish(config, web, http):
    import threading

    service = Server(config).start()
    try:
        image_id, task, _pid = running_import(service, http, web, size=3 * MIB)
        http.close()  # no keep-alive connection may hold the worker open
        stopper = threading.Thread(target=service.stop, kwargs={"timeout": 30})
        stopper.start()
        time.sleep(2.5)  # SIGTERM is in and the requests are done; only the import keeps the worker
        web.open_gate(f"crash-{image_id}")
        stopper.join(40)
        assert service.proc.returncode is not None
        service = Server(config).start()
        (done,) = image_tasks(service, http, image_id)
        assert done["status"] == "success", done
        assert get_image(service, http, image_id)["status"] == "active"
        assert http.get(f"{service.url}/v2/images/{image_id}/file").content == payload(3 * MIB)
        assert_audit_clean(config, stores=STORES)
    finally:
        service.stop()
