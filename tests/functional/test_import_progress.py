"""Import progress seen from the client side of a real glancelite-api (tasks/progress.py).

A client polls GET /v2/images/{id}/tasks, GET /v2/tasks/{id} and the image while imports run: a
web-download from a source that trickles its bytes, a large staged image copied into two stores,
and an import whose second store fails. python-glanceclient and openstacksdk read the image and
the task, mid-import and after, unchanged.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest
import requests

from tests.conftest import ADMIN, identity
from tests.support.imports import (
    MIB,
    create_image,
    get_image,
    payload,
    stage,
    start_import,
    wait_task,
)
from tests.support.server import Server, write_config

SLOW_SIZE = 12 * MIB
SLOW_CHUNK = 256 * 1024
SLOW_PAUSE = 0.05  # 256 KiB every 50 ms: about 5 MiB/s, so the download takes ~2.5 s
STAGED_SIZE = 96 * MIB
ALICE = identity("project-alice", "reader,member", "alice")


class TricklingSource:
    """A 127.0.0.1 web-download source sending ``/<size>`` slowly, with Content-Length.

    ``/gated/<size>`` sends the first MiB and waits for ``release`` before the rest.
    """

    def __init__(self):
        self.release = threading.Event()
        source = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                gated = self.path.startswith("/gated/")
                size = int(self.path.rsplit("/", 1)[1])
                data = payload(size, seed=7)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    if gated:
                        self.wfile.write(data[:MIB])
                        self.wfile.flush()
                        source.release.wait(60)
                        self.wfile.write(data[MIB:])
                        return
                    for i in range(0, size, SLOW_CHUNK):
                        self.wfile.write(data[i : i + SLOW_CHUNK])
                        self.wfile.flush()
                        time.sleep(SLOW_PAUSE)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def source():
    src = TricklingSource()
    yield src
    src.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, source):
    root = tmp_path_factory.mktemp("progress")
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, slow:file, spare:file"},
            "spare": {"filesystem_store_datadir": str(root / "spare"), "weight": "50"},
            "import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": str(source.port)},
            # A shorter time throttle than the default second, so a poll sees more steps.
            "image_import_opts": {"import_progress_interval": "0.2"},
        },
    )
    server = Server(config).start()
    server.root = root
    yield server
    server.stop()


class Poller:
    """Polls the image's task list, the task and the image in a thread until the import ends."""

    def __init__(self, service, image_id: str):
        self.service, self.image_id = service, image_id
        self.seen: list[dict] = []  # each: {"task": ..., "listed": ..., "image": ...}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        http = requests.Session()
        while not self._stop.is_set():
            listed = http.get(f"{self.service.url}/v2/images/{self.image_id}/tasks", timeout=10).json()["tasks"]
            if listed:
                task = http.get(f"{self.service.url}/v2/tasks/{listed[-1]['id']}", timeout=10).json()
                image = http.get(f"{self.service.url}/v2/images/{self.image_id}", timeout=10).json()
                self.seen.append({"task": task, "listed": listed[-1], "image": image})
                if task["status"] in ("success", "failure"):
                    return
            time.sleep(0.05)


def progress_of(task: dict) -> dict | None:
    return (task.get("result") or {}).get("import_progress")


def assert_grows(values: list[int], what: str) -> None:
    assert values == sorted(values), f"{what} went back: {values}"


def test_web_download_from_a_slow_source_shows_growing_progress(service, source):
    image_id = create_image(service, requests)
    with Poller(service, image_id) as poller:
        resp = start_import(
            service,
            requests,
            image_id,
            {"name": "web-download", "uri": source.url(f"/{SLOW_SIZE}")},
            stores=["fast", "slow"],
        )
        assert resp.status_code == 202, resp.text
        final = wait_task(service, requests, image_id, timeout=90)
    assert final["status"] == "success", final
    running = [s for s in poller.seen if s["task"]["status"] == "processing" and progress_of(s["task"])]
    sources = [progress_of(s["task"])["source"] for s in running if "source" in progress_of(s["task"])]
    done = [s["bytes_done"] for s in sources]
    assert_grows(done, "downloaded bytes")
    assert {s["bytes_total"] for s in sources} == {SLOW_SIZE}
    # The source trickles for ~2.5 s and the task is written at most every 0.2 s: the client saw
    # the download part-way several times, not just its start and end.
    assert len({d for d in done if 0 < d < SLOW_SIZE}) >= 3, done
    assert any(s["task"]["message"].startswith("Downloaded ") for s in running)
    # The listing (GET /v2/images/{id}/tasks, polled just before the task) shows the same progress.
    listed = [
        progress_of(s["listed"])["source"]["bytes_done"]
        for s in running
        if "source" in (progress_of(s["listed"]) or {})
    ]
    assert_grows(listed, "downloaded bytes in the image's task list")
    assert len({d for d in listed if 0 < d < SLOW_SIZE}) >= 2, listed

    # Every value stays within the total; the import ends with Glance's own result, and the image
    # holds all of it.
    assert max(done) <= SLOW_SIZE
    assert final["result"] == {"image_id": image_id} and final["message"] == ""
    image = get_image(service, requests, image_id)
    assert image["status"] == "active" and image["os_glance_importing_to_stores"] == ""
    assert image["size"] == SLOW_SIZE


def test_large_staged_image_into_two_stores_reaches_the_total_in_order(service):
    data = payload(STAGED_SIZE, seed=5)
    image_id = create_image(service, requests)
    assert stage(service, requests, image_id, data).status_code == 204
    with Poller(service, image_id) as poller:
        resp = start_import(service, requests, image_id, {"name": "glance-direct"}, stores=["fast", "slow"])
        assert resp.status_code == 202, resp.text
        final = wait_task(service, requests, image_id, timeout=120)
    assert final["status"] == "success", final
    rank = {"pending": 0, "importing": 1, "done": 2}
    views = [progress_of(s["task"]) for s in poller.seen if progress_of(s["task"])]
    for store in ("fast", "slow"):
        per_store = [v["stores"][store] for v in views]
        assert_grows([p["bytes_done"] for p in per_store], f"bytes copied into {store}")
        assert_grows([rank[p["status"]] for p in per_store], f"status of {store}")
        assert all(p["bytes_done"] <= STAGED_SIZE for p in per_store)
    # The first store reached the total while the second still copied (written as it ended, and
    # the second copy takes far longer than a poll); the second's end is the task's success.
    assert {"status": "done", "bytes_done": STAGED_SIZE, "bytes_total": STAGED_SIZE} in [
        v["stores"]["fast"] for v in views
    ]
    assert any(v["stores"]["slow"]["status"] == "importing" for v in views)
    # One store after the other: slow never started before fast was done.
    for v in views:
        assert "source" not in v  # glance-direct acquires nothing
        if v["stores"]["slow"]["status"] != "pending":
            assert v["stores"]["fast"]["status"] == "done", v
    assert final["result"] == {"image_id": image_id}
    assert get_image(service, requests, image_id)["size"] == STAGED_SIZE


def test_a_failed_store_is_failed_in_the_progress_and_on_the_image(service):
    """Partial success allowed: spare fails first, and the task says so while fast still copies."""
    spare = service.root / "spare"
    spare.rmdir()
    spare.write_text("not a directory")  # the spare store cannot write
    try:
        image_id = create_image(service, requests)
        assert stage(service, requests, image_id, payload(STAGED_SIZE, seed=6)).status_code == 204
        with Poller(service, image_id) as poller:
            resp = start_import(
                service,
                requests,
                image_id,
                {"name": "glance-direct"},
                stores=["spare", "fast"],
                all_stores_must_succeed=False,
            )
            assert resp.status_code == 202, resp.text
            final = wait_task(service, requests, image_id, timeout=120)
    finally:
        spare.unlink()
        spare.mkdir()
    assert final["status"] == "success", final  # partial success allowed
    copying = [
        s["task"]
        for s in poller.seen
        if s["task"]["status"] == "processing"
        and progress_of(s["task"])  # processing starts a moment before the first progress write
        and progress_of(s["task"])["stores"]["fast"]["status"] == "importing"
    ]
    assert copying, poller.seen[-3:]
    for task in copying:
        assert progress_of(task)["stores"]["spare"]["status"] == "failed"
        assert task["message"].startswith("Copied ") and task["message"].endswith("0 of 2 stores done; failed: spare")
    image = get_image(service, requests, image_id)
    assert image["os_glance_failed_import"] == "spare" and image["os_glance_importing_to_stores"] == ""
    assert image["status"] == "active"


def test_a_failed_import_keeps_its_progress_with_the_failed_stores(service):
    """All stores must succeed: fast's copy is reverted when spare fails; the result says both failed."""
    spare = service.root / "spare"
    spare.rmdir()
    spare.write_text("not a directory")
    try:
        image_id = create_image(service, requests)
        assert stage(service, requests, image_id, payload(MIB, seed=8)).status_code == 204
        resp = start_import(service, requests, image_id, {"name": "glance-direct"}, stores=["fast", "spare"])
        assert resp.status_code == 202, resp.text
        final = wait_task(service, requests, image_id, timeout=60)
    finally:
        spare.unlink()
        spare.mkdir()
    assert final["status"] == "failure", final
    assert final["message"] and "import_progress" not in final["message"]
    # The result is written just after the status; give it its moment.
    end = time.monotonic() + 10
    while time.monotonic() < end:
        task = requests.get(f"{service.url}/v2/tasks/{final['id']}", timeout=10).json()
        stores = progress_of(task)["stores"]
        if stores["fast"]["status"] == "failed":
            break
        time.sleep(0.1)
    assert stores["fast"]["status"] == "failed" and stores["spare"]["status"] == "failed", stores
    image = get_image(service, requests, image_id)
    assert sorted(image["os_glance_failed_import"].split(",")) == ["fast", "spare"]


def test_glanceclient_and_openstacksdk_read_the_task_and_image_mid_import(service, source):
    import openstack
    from glanceclient import Client
    from keystoneauth1 import noauth, session

    # The clients send the trusted identity headers keystonemiddleware would set: the owner reads
    # the image and its task list; GET /v2/tasks/{id} is admin's (Glance's tasks_api_access).
    def sessions(headers):
        return session.Session(auth=noauth.NoAuth(), additional_headers=headers)

    glance, glance_admin = (Client("2", endpoint=service.url, session=sessions(h)) for h in (ALICE, ADMIN))
    sdk, sdk_admin = (
        openstack.connection.Connection(session=sessions(h), image_endpoint_override=service.url)
        for h in (ALICE, ADMIN)
    )
    source.release.clear()
    image_id = create_image(service, requests, ALICE)
    resp = start_import(
        service,
        requests,
        image_id,
        {"name": "web-download", "uri": source.url(f"/gated/{4 * MIB}")},
        headers=ALICE,
        stores=["fast"],
    )
    assert resp.status_code == 202, resp.text
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:  # until the first MiB shows in the task
            listed = requests.get(f"{service.url}/v2/images/{image_id}/tasks", headers=ALICE, timeout=10).json()[
                "tasks"
            ]
            if listed and (progress_of(listed[-1]) or {}).get("source", {}).get("bytes_done"):
                break
            time.sleep(0.1)
        task_id = listed[-1]["id"]
        assert progress_of(listed[-1])["source"]["bytes_total"] == 4 * MIB

        # python-glanceclient validates the task against /v2/schemas/task (warlock) as it builds it.
        gc_task = glance_admin.tasks.get(task_id)
        assert gc_task.status == "processing" and gc_task.result["import_progress"]["source"]["bytes_total"] == 4 * MIB
        assert gc_task.message.startswith("Downloaded ")
        associated = glance.images.get_associated_image_tasks(image_id)["tasks"]
        assert [t["id"] for t in associated] == [task_id]
        # That call hands back raw JSON: build glanceclient's task model from it, which validates it.
        assert glance_admin.tasks.model(**associated[0]).result["import_progress"]["source"]["bytes_total"] == 4 * MIB
        gc_image = glance.images.get(image_id)
        assert gc_image.status == "importing" and gc_image.os_glance_importing_to_stores == "fast"

        sdk_task = sdk_admin.image.get_task(task_id)
        assert (
            sdk_task.status == "processing"
            and sdk_task.result["import_progress"]["stores"]["fast"]["status"] == "pending"
        )
        assert [t.id for t in sdk.image.image_tasks(image_id)] == [task_id]
        sdk_image = sdk.image.get_image(image_id)
        assert sdk_image.status == "importing" and sdk_image.properties["os_glance_importing_to_stores"] == "fast"
    finally:
        source.release.set()
    as_alice = requests.Session()
    as_alice.headers.update(ALICE)
    final = wait_task(service, as_alice, image_id, timeout=60)
    assert final["status"] == "success", final
    assert glance_admin.tasks.get(final["id"]).result == {"image_id": image_id}
    assert sdk_admin.image.get_task(final["id"]).result == {"image_id": image_id}
    assert glance.images.get(image_id).status == "active"
