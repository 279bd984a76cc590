"""Workers stopped by signals while data is moving.

SIGTERM (gunicorn's graceful stop) lets the transfers under way finish, an upload, a stage, a
glance-direct import and a copy-image: each ends with its bytes stored and checksummed. SIGKILL of
the workers writing an upload or a stage, or running a glance-direct import or a copy-image, ends
within a minute of gunicorn's replacement workers starting in a consistent image: queued again
(a failed task, the image as it was before an import), nothing staged or half-written left
behind. The imports go into a moto S3 store frozen with SIGSTOP, which holds them mid-transfer for
as long as the test needs. SIGKILL and SIGTERM during a web-download import are in
test_import_crash.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time

import pytest
import requests

from tests.conftest import ADMIN
from tests.faults.conftest import assert_audit_clean, bucket_contents
from tests.support.imports import get_image, image_tasks, stage, start_import, wait_task
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}
STORES = 4  # fast, slow, staging, tasks


def _partials(root) -> list[str]:
    return [
        p.name
        for d in ("fast", "staging")
        if (root / d).exists()
        for p in (root / d).iterdir()
        if p.name.startswith(".partial-")
    ]


def test_sigterm_lets_running_upload_and_stage_finish(tmp_path, http):
    config = write_config(tmp_path)
    service = Server(config).start()
    try:
        uploaded, staged = (
            http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
            for _ in range(2)
        )
        data = {uploaded: raw_bytes(6 * MIB), staged: raw_bytes(5 * MIB + 7)}
        half_sent = {uploaded: threading.Event(), staged: threading.Event()}
        term_sent = threading.Event()
        answers: dict[str, object] = {}

        def slow(image_id):
            body = data[image_id]
            for i in range(0, len(body), 256 * 1024):
                if i >= len(body) // 2:
                    half_sent[image_id].set()
                    term_sent.wait(30)  # the rest goes up after SIGTERM has landed
                yield body[i : i + 256 * 1024]
                time.sleep(0.02)

        def send(image_id, target):
            try:
                answers[image_id] = requests.put(
                    f"{service.url}/v2/images/{image_id}/{target}", data=slow(image_id), headers=OCTET, timeout=60
                ).status_code
            except requests.RequestException as exc:
                answers[image_id] = exc

        senders = [
            threading.Thread(target=send, args=(uploaded, "file")),
            threading.Thread(target=send, args=(staged, "stage")),
        ]
        for sender in senders:
            sender.start()
        for event in half_sent.values():
            assert event.wait(30)
        deadline = time.monotonic() + 10
        while len(_partials(tmp_path)) < 2:  # both are being written
            assert time.monotonic() < deadline, _partials(tmp_path)
            time.sleep(0.05)
        service.proc.send_signal(signal.SIGTERM)
        time.sleep(1)  # the workers have it: no new connection is taken from here on
        term_sent.set()
        for sender in senders:
            sender.join(60)
        assert answers == {uploaded: 204, staged: 204}
        assert service.proc.wait(60) == 0
    finally:
        service.stop()

    service = Server(config).start()
    try:
        done = http.get(f"{service.url}/v2/images/{uploaded}").json()
        assert (done["status"], done["size"]) == ("active", len(data[uploaded]))
        assert done["os_hash_value"] == hashlib.sha512(data[uploaded]).hexdigest()
        assert http.get(f"{service.url}/v2/images/{uploaded}/file").content == data[uploaded]
        held = http.get(f"{service.url}/v2/images/{staged}").json()
        assert (held["status"], held["size"]) == ("uploading", len(data[staged]))
        assert (tmp_path / "staging" / staged).read_bytes() == data[staged]
        assert _partials(tmp_path) == []
        assert_audit_clean(config, stores=STORES)
    finally:
        service.stop()


def test_sigkill_of_the_workers_mid_upload_and_stage(tmp_path, http):
    """Only the workers writing are killed (the master stays): their replacements recover both images."""
    config = write_config(tmp_path)
    service = Server(config).start()
    stop = threading.Event()
    try:
        uploaded, staged = (
            http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
            for _ in range(2)
        )

        def endless():
            while not stop.is_set():
                yield b"\0" * (256 * 1024)
                time.sleep(0.02)

        def send(image_id, target):
            try:
                requests.put(f"{service.url}/v2/images/{image_id}/{target}", data=endless(), headers=OCTET, timeout=60)
            except requests.RequestException:
                pass  # its worker died under it, which is the point

        senders = [
            threading.Thread(target=send, args=(uploaded, "file")),
            threading.Thread(target=send, args=(staged, "stage")),
        ]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 20
        while len(_partials(tmp_path)) < 2:
            assert time.monotonic() < deadline, _partials(tmp_path)
            time.sleep(0.05)
        assert http.get(f"{service.url}/v2/images/{uploaded}").json()["status"] == "saving"
        # A partial file is named .partial-<image>.<host>.<pid>.<random>: its writer's pid.
        writers = {int(name.rsplit(".", 2)[1]) for name in _partials(tmp_path)}
        assert writers <= set(service.worker_pids())
        for pid in writers:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        stop.set()
        for sender in senders:
            sender.join(30)

        # gunicorn starts replacements; starting, each recovers what dead processes left.
        while True:
            try:
                states = [http.get(f"{service.url}/v2/images/{i}").json()["status"] for i in (uploaded, staged)]
            except requests.ConnectionError:
                states = []
            if states == ["queued", "queued"] and not _partials(tmp_path):
                break
            assert time.monotonic() - killed < 60, (states, _partials(tmp_path))
            time.sleep(0.2)
        while writers & set(service.worker_pids()):  # the master reaps the killed ones in its own time
            assert time.monotonic() - killed < 60, (writers, service.worker_pids())
            time.sleep(0.2)
        assert service.proc.poll() is None
        assert os.listdir(tmp_path / "fast") == [] and os.listdir(tmp_path / "staging") == []
        assert_audit_clean(config, stores=STORES)
        # Both images take data again.
        assert http.put(f"{service.url}/v2/images/{uploaded}/file", data=b"again", headers=OCTET).status_code == 204
        assert stage(service, http, staged, b"again").status_code == 204
    finally:
        stop.set()
        service.stop()


# -- SIGKILL of the worker running an import ---------------------------------------------------


@pytest.fixture
def s3_service(tmp_path, moto):
    """fast and slow file stores plus ``cheap`` on moto; 2 workers, so gunicorn replaces a killed one."""
    config = write_config(
        tmp_path / "svc",
        {"DEFAULT": {"enabled_backends": "fast:file, slow:file, cheap:s3"}, "cheap": moto.store_options()},
    )
    server = Server(config).start()
    yield server
    server.stop()


def kill_worker_mid_import(service, http, moto, image_id, method, **body) -> tuple[str, float]:
    """Start an import into ``cheap`` with moto frozen (its worker blocks mid-transfer), SIGKILL that worker,
    thaw moto; returns the task id and when the worker was killed."""
    moto.freeze()
    try:
        resp = start_import(service, http, image_id, {"name": method}, headers=ADMIN, stores=["cheap"], **body)
        assert resp.status_code == 202, resp.text
        (task,) = image_tasks(service, http, image_id)[-1:]
        marker = service.config.parent / "tasks" / f"{task['id']}.owner"
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, f"task {task['id']} never started"
            time.sleep(0.05)
        pid = json.loads(marker.read_text())["pid"]
        assert pid in service.worker_pids()
        time.sleep(1)  # the worker is now waiting on moto
        assert image_tasks(service, http, image_id)[-1]["status"] == "processing"
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
    finally:
        moto.thaw()
    return task["id"], killed


def wait_recovered(service, http, image_id, task_id, killed) -> tuple[dict, dict]:
    """The task failed and the image's import lock released, within a minute of the kill."""
    while True:
        try:
            task = next(t for t in image_tasks(service, http, image_id) if t["id"] == task_id)
            image = get_image(service, http, image_id)
        except (requests.ConnectionError, AssertionError):
            task, image = {}, {}
        if task.get("status") == "failure" and image and "os_glance_import_task" not in image:
            return task, image
        assert time.monotonic() - killed < 60, f"not recovered a minute after the kill: {task} {image}"
        time.sleep(0.2)


def assert_nothing_left(service, moto, image_id):
    root = service.config.parent
    assert os.listdir(root / "staging") == []
    assert os.listdir(root / "tasks") == []
    assert [n for n in bucket_contents(moto) if image_id in n] == []


def test_sigkill_during_glance_direct_import(s3_service, http, moto):
    service = s3_service
    data = raw_bytes(12 * MIB)
    image_id = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]
    assert stage(service, http, image_id, data).status_code == 204
    task_id, killed = kill_worker_mid_import(service, http, moto, image_id, "glance-direct")
    task, image = wait_recovered(service, http, image_id, task_id, killed)
    assert "stopped" in task["message"], task
    # As any failed glance-direct import leaves it: queued again, the staged data dropped.
    assert (image["status"], image["size"], image.get("stores")) == ("queued", None, None), image
    assert image["os_glance_failed_import"] == "cheap"
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert_nothing_left(service, moto, image_id)
    assert_audit_clean(service.config, stores=5)
    # The image takes data again.
    assert stage(service, http, image_id, data).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, stores=["cheap"]).status_code == 202
    assert wait_task(service, http, image_id, count=2, timeout=60)["status"] == "success"
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    assert_audit_clean(service.config, stores=5)


def test_sigkill_during_copy_image(s3_service, http, moto):
    service = s3_service
    data = raw_bytes(12 * MIB)
    image_id = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]
    assert http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    task_id, killed = kill_worker_mid_import(service, http, moto, image_id, "copy-image")
    task, image = wait_recovered(service, http, image_id, task_id, killed)
    assert "stopped" in task["message"], task
    assert (image["status"], image["size"], image["stores"]) == ("active", len(data), "fast"), image
    assert image["os_glance_failed_import"] == "cheap"
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    assert_nothing_left(service, moto, image_id)
    assert_audit_clean(service.config, stores=5)


@pytest.mark.parametrize("method", ["glance-direct", "copy-image"])
def test_sigterm_lets_a_running_import_finish(s3_service, http, moto, method):
    """SIGTERM while the import into cheap is held up by a frozen moto: the stop waits for it to finish."""
    service = s3_service
    data = raw_bytes(7 * MIB)
    image_id = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()[
        "id"
    ]
    if method == "glance-direct":
        assert stage(service, http, image_id, data).status_code == 204
    else:
        assert http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    moto.freeze()
    try:
        resp = start_import(service, http, image_id, {"name": method}, headers=ADMIN, stores=["cheap"])
        assert resp.status_code == 202, resp.text
        assert get_image(service, http, image_id)["os_glance_importing_to_stores"] == "cheap"
        http.close()  # no keep-alive connection may hold a worker open
        service.proc.send_signal(signal.SIGTERM)
        time.sleep(2)  # the workers have the signal; only the import keeps one of them
        assert service.proc.poll() is None
    finally:
        moto.thaw()
    assert service.proc.wait(60) == 0
    service.start()
    task = image_tasks(service, http, image_id)[-1]
    assert task["status"] == "success", task["message"]
    image = get_image(service, http, image_id)
    expected = ["cheap"] if method == "glance-direct" else ["cheap", "fast"]
    assert (image["status"], sorted(image["stores"].split(","))) == ("active", expected)
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert http.get(f"{service.url}/v2/images/{image_id}/file", headers={}).content == data
    assert bucket_contents(moto) == [image_id]
    root = service.config.parent
    assert os.listdir(root / "staging") == [] and os.listdir(root / "tasks") == []
    assert_audit_clean(service.config, stores=5)
