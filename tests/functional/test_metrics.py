"""Prometheus metrics of a real glancelite-api (2 gunicorn workers) scraped from its own listener.

Each test takes the values before and after what it does and checks the difference, so the
order of tests does not matter. Stores: fast, slow, spare (broken on purpose for a failing
import) and ro, a 4 MiB tmpfs that tests remount read-only (root only).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN
from tests.support.imports import (
    MIB,
    OCTET,
    create_image,
    payload,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, free_port, write_config

EXPORTER_DIRS = os.path.join(tempfile.gettempdir(), "glancelite-metrics-*")


@pytest.fixture(scope="module")
def service(tmp_path_factory, web):
    root = tmp_path_factory.mktemp("metrics")
    (root / "ro").mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root / "ro")], capture_output=True)
    metrics_port = free_port()
    config = write_config(
        root,
        {
            "DEFAULT": {
                "enabled_backends": "fast:file, slow:file, spare:file, ro:file",
                "store_capability_refresh_interval": "0",
            },
            "spare": {"filesystem_store_datadir": str(root / "spare"), "weight": "50"},
            "ro": {"filesystem_store_datadir": str(root / "ro"), "weight": "10"},
            "metrics": {"enabled": "true", "bind_host": "127.0.0.1", "bind_port": str(metrics_port)},
            "import_filtering_opts": web.filtering_opts,
        },
    )
    before = set(glob.glob(EXPORTER_DIRS))
    server = Server(config)
    try:
        server.start()
        server.root = root
        server.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        server.tmpfs = mounted.returncode == 0
        server.tmpfs_error = mounted.stderr.decode().strip()
        server.exporter_dirs = set(glob.glob(EXPORTER_DIRS)) - before
        yield server
    finally:
        server.stop()
        if mounted.returncode == 0:
            subprocess.run(["umount", str(root / "ro")], capture_output=True)


def scrape(service) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exporter: (name, labels) -> value."""
    resp = requests.get(service.metrics_url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    """One sample's value; 0 when it does not exist yet (a counter that never moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def eventually(service, check, timeout: float = 15.0):
    """Scrape until ``check(samples)`` holds (an import's outcome lands just after its task settles)."""
    end = time.monotonic() + timeout
    while True:
        samples = scrape(service)
        if check(samples) or time.monotonic() > end:
            return samples
        time.sleep(0.2)


def both_workers_writing(service, directory: str | None = None) -> tuple[set[int], set[int]]:
    """(worker pids, pids with files in the multiprocess directory), once both workers write there.

    Each records its stores' capabilities when it has built its services; the second may still be
    doing so when the first answers.
    """
    directory = directory or next(iter(service.exporter_dirs))
    end = time.monotonic() + 30
    while True:
        writers = {int(name.rsplit("_", 1)[1].split(".")[0]) for name in os.listdir(directory)}
        workers = set(service.worker_pids())
        if (len(workers) == 2 and workers <= writers) or time.monotonic() > end:
            return workers, writers
        time.sleep(0.2)


def upload(service, data, store: str, headers=None):
    image_id = create_image(service, requests, headers)
    resp = requests.put(
        f"{service.url}/v2/images/{image_id}/file",
        data=data,
        headers={**OCTET, "X-Image-Meta-Store": store, **(headers or {})},
        timeout=60,
    )
    return image_id, resp


# ------------------------------------------------------------------ the listener


def test_exporter_has_its_own_listener_and_directory(service):
    on_api = requests.get(service.url + "/metrics", timeout=5)  # never on the API's port
    assert on_api.status_code == 300 and "glancelite_" not in on_api.text  # Glance's version document
    assert requests.get(service.metrics_url.replace("/metrics", "/other"), timeout=5).status_code == 404
    assert len(service.exporter_dirs) == 1  # glancelite-api made one fresh multiprocess directory
    workers, writers = both_workers_writing(service)
    assert len(workers) == 2 and workers <= writers, (workers, writers)


def test_directory_removed_when_the_service_stops(tmp_path):
    config = write_config(tmp_path, {"metrics": {"enabled": "true", "bind_port": str(free_port())}})
    before = set(glob.glob(EXPORTER_DIRS))
    server = Server(config).start()
    try:
        made = set(glob.glob(EXPORTER_DIRS)) - before
        assert len(made) == 1
        # Stop once both workers run: gunicorn loses a SIGTERM that reaches a worker still booting.
        workers, writers = both_workers_writing(server, next(iter(made)))
        assert len(workers) == 2 and workers <= writers
    finally:
        assert server.stop() == 0
    assert not os.path.exists(next(iter(made)))


def test_metrics_are_off_by_default(tmp_path):
    """Without [metrics] enabled no directory is made and no exporter listens."""
    config = write_config(tmp_path)
    before = set(glob.glob(EXPORTER_DIRS))
    server = Server(config).start()
    try:
        assert set(glob.glob(EXPORTER_DIRS)) == before
        assert "glancelite_" not in requests.get(server.url + "/metrics", timeout=5).text
    finally:
        server.stop()


# ------------------------------------------------------------------ requests


def test_requests_counted_by_route_template_across_workers(service):
    before = scrape(service)
    image_id = create_image(service, requests)
    # Fresh connections, so both workers answer some of them; the exporter adds their files up.
    for _ in range(12):
        assert requests.get(f"{service.url}/v2/images/{image_id}", timeout=10).status_code == 200
    assert requests.get(f"{service.url}/v2/images/not-an-image", timeout=10).status_code == 404
    assert requests.get(f"{service.url}/v2/no-such-thing", timeout=10).status_code == 404
    after = scrape(service)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    one = {"method": "GET", "route": "/v2/images/{image_id}"}
    assert moved("glancelite_http_requests_total", **one, status="200") == 12
    assert moved("glancelite_http_requests_total", **one, status="404") == 1
    assert moved("glancelite_http_requests_total", method="POST", route="/v2/images", status="201") == 1
    assert moved("glancelite_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert moved("glancelite_http_request_duration_seconds_count", **one) == 13
    assert moved("glancelite_http_request_duration_seconds_sum", **one) > 0
    # Bounded labels: the route template, never the id (nor the unknown path) itself.
    text = requests.get(service.metrics_url, timeout=10).text
    assert image_id not in text and "not-an-image" not in text and "no-such-thing" not in text


# ------------------------------------------------------------------ data path


def test_upload_and_download_bytes_per_store(service):
    data = payload(2 * MIB + 3, seed=1)
    before = scrape(service)
    image_id, resp = upload(service, data, "fast")
    assert resp.status_code == 204, resp.text
    got = requests.get(f"{service.url}/v2/images/{image_id}/file", timeout=30)  # sendfile path (file store)
    assert got.content == data
    ranged = requests.get(f"{service.url}/v2/images/{image_id}/file", headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206
    after = eventually(
        service,
        lambda s: (
            value(s, "glancelite_store_read_bytes_total", store="fast")
            - value(before, "glancelite_store_read_bytes_total", store="fast")
            >= len(data) + 100
        ),
    )
    written = value(after, "glancelite_store_written_bytes_total", store="fast") - value(
        before, "glancelite_store_written_bytes_total", store="fast"
    )
    read = value(after, "glancelite_store_read_bytes_total", store="fast") - value(
        before, "glancelite_store_read_bytes_total", store="fast"
    )
    assert (written, read) == (len(data), len(data) + 100)
    assert value(after, "glancelite_store_written_bytes_total", store="slow") == value(
        before, "glancelite_store_written_bytes_total", store="slow"
    )
    for direction in ("read", "write"):
        assert value(after, "glancelite_store_transfers_in_flight", store="fast", direction=direction) == 0


def test_upload_in_flight_is_seen_while_it_runs(service):
    image_id = create_image(service, requests)
    release = threading.Event()
    first_sent = threading.Event()

    def body():  # chunked; holds the upload open until the test has scraped
        yield b"x" * 65536
        first_sent.set()
        release.wait(30)
        yield b"y" * 65536

    result = {}

    def send():
        result["resp"] = requests.put(
            f"{service.url}/v2/images/{image_id}/file",
            data=body(),
            headers={**OCTET, "X-Image-Meta-Store": "slow"},
            timeout=60,
        )

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert first_sent.wait(10)
        during = eventually(
            service, lambda s: value(s, "glancelite_store_transfers_in_flight", store="slow", direction="write") == 1
        )
        assert value(during, "glancelite_store_transfers_in_flight", store="slow", direction="write") == 1
    finally:
        release.set()
        sender.join(30)
    assert result["resp"].status_code == 204, result["resp"].text
    after = scrape(service)
    assert value(after, "glancelite_store_transfers_in_flight", store="slow", direction="write") == 0


# ------------------------------------------------------------------ imports


def test_glance_direct_import_counted_with_staging(service):
    data = payload(MIB + 11, seed=2)
    before = scrape(service)
    image_id = create_image(service, requests)
    assert stage(service, requests, image_id, data).status_code == 204
    staged = scrape(service)
    assert value(staged, "glancelite_reserved_store_used_bytes", store="os_glance_staging_store") >= len(data)
    assert value(staged, "glancelite_store_written_bytes_total", store="os_glance_staging_store") - value(
        before, "glancelite_store_written_bytes_total", store="os_glance_staging_store"
    ) == len(data)

    resp = start_import(service, requests, image_id, {"name": "glance-direct"}, stores=["slow"])
    assert resp.status_code == 202, resp.text
    assert wait_task(service, requests, image_id)["status"] == "success"
    labels = {"method": "glance-direct", "store": "slow"}
    after = eventually(
        service,
        lambda s: (
            value(s, "glancelite_image_imports_finished_total", **labels, outcome="succeeded")
            > value(before, "glancelite_image_imports_finished_total", **labels, outcome="succeeded")
        ),
    )

    def moved(name, **lbl):
        return value(after, name, **lbl) - value(before, name, **lbl)

    assert moved("glancelite_image_imports_started_total", **labels) == 1
    assert moved("glancelite_image_imports_finished_total", **labels, outcome="succeeded") == 1
    assert moved("glancelite_image_imports_finished_total", **labels, outcome="reverted") == 0
    assert moved("glancelite_image_import_duration_seconds_count", method="glance-direct", outcome="succeeded") == 1
    assert moved("glancelite_store_written_bytes_total", store="slow") == len(data)
    # The whole staged file went to the store; the format check read its head before.
    assert len(data) <= moved("glancelite_store_read_bytes_total", store="os_glance_staging_store") < 2 * len(data)
    # The staged file went into the store and was deleted.
    assert value(after, "glancelite_reserved_store_used_bytes", store="os_glance_staging_store") == value(
        before, "glancelite_reserved_store_used_bytes", store="os_glance_staging_store"
    )


def test_failed_import_counted_as_reverted(service):
    """The spare store's directory is replaced by a file: the write fails and the flow is undone."""
    spare = service.root / "spare"
    shutil.rmtree(spare)
    spare.write_text("not a directory")
    try:
        before = scrape(service)
        image_id = create_image(service, requests)
        assert stage(service, requests, image_id, payload(4096, seed=3)).status_code == 204
        resp = start_import(service, requests, image_id, {"name": "glance-direct"}, stores=["spare"])
        assert resp.status_code == 202, resp.text
        assert wait_task(service, requests, image_id)["status"] == "failure"
    finally:
        spare.unlink()
        spare.mkdir()
    labels = {"method": "glance-direct", "store": "spare"}
    after = eventually(
        service,
        lambda s: (
            value(s, "glancelite_image_imports_finished_total", **labels, outcome="reverted")
            > value(before, "glancelite_image_imports_finished_total", **labels, outcome="reverted")
        ),
    )

    def moved(name, **lbl):
        return value(after, name, **lbl) - value(before, name, **lbl)

    assert moved("glancelite_image_imports_started_total", **labels) == 1
    assert moved("glancelite_image_imports_finished_total", **labels, outcome="reverted") == 1
    assert moved("glancelite_image_imports_finished_total", **labels, outcome="succeeded") == 0
    assert moved("glancelite_image_import_duration_seconds_count", method="glance-direct", outcome="reverted") == 1


def test_a_dead_workers_counts_stay_and_its_live_gauges_go(service):
    """SIGKILL one worker: gunicorn starts another, its counters still add up, its live files go."""
    workers, writers = both_workers_writing(service)
    assert workers <= writers
    create_image(service, requests)
    before = scrape(service)
    total = sum(v for (name, _), v in before.items() if name == "glancelite_http_requests_total")
    victim = service.worker_pids()[0]
    directory = next(iter(service.exporter_dirs))
    assert any(name.endswith(f"_{victim}.db") and "live" in name for name in os.listdir(directory))
    os.kill(victim, signal.SIGKILL)
    end = time.monotonic() + 30
    while (victim in service.worker_pids() or len(service.worker_pids()) < 2) and time.monotonic() < end:
        time.sleep(0.2)
    assert victim not in service.worker_pids() and len(service.worker_pids()) == 2
    after = scrape(service)
    assert sum(v for (name, _), v in after.items() if name == "glancelite_http_requests_total") == total
    assert not any(name.endswith(f"_{victim}.db") and "live" in name for name in os.listdir(directory))
    assert value(after, "glancelite_store_capability", store="fast", capability="write_access") == 1


# ------------------------------------------------------------------ stores, stop file, database


def test_store_going_read_only_shows_in_its_capabilities(service):
    if not service.tmpfs:
        pytest.skip(f"cannot mount a tmpfs ({service.tmpfs_error}); needs root/CAP_SYS_ADMIN")
    caps = {"store": "ro", "capability": "write_access"}
    assert value(scrape(service), "glancelite_store_capability", **caps) == 1
    assert value(scrape(service), "glancelite_store_capability", store="ro", capability="read_access") == 1
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(service.root / "ro")], capture_output=True)
    assert remounted.returncode == 0, remounted.stderr
    try:
        _image_id, resp = upload(service, b"refused", "ro")
        assert resp.status_code == 410, resp.text  # the one capability check saw WRITE_ACCESS go
        after = scrape(service)
        assert value(after, "glancelite_store_capability", **caps) == 0
        assert value(after, "glancelite_store_capability", store="ro", capability="read_access") == 1
        assert value(after, "glancelite_store_capability", store="fast", capability="write_access") == 1
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(service.root / "ro")], capture_output=True)
    _image_id, resp = upload(service, b"accepted", "ro")
    assert resp.status_code == 204, resp.text
    assert value(scrape(service), "glancelite_store_capability", **caps) == 1


def test_stop_file_state(service):
    stop_file = service.root / "healthcheck_disable"
    assert value(scrape(service), "glancelite_stop_file_present") == 0
    stop_file.touch()
    try:
        assert value(scrape(service), "glancelite_stop_file_present") == 1
    finally:
        stop_file.unlink()
    assert value(scrape(service), "glancelite_stop_file_present") == 0


def test_database_pool_in_use_returns_to_zero(service):
    create_image(service, requests, ADMIN)
    samples = scrape(service)
    assert ("glancelite_db_pool_connections_in_use", frozenset()) in samples
    assert value(samples, "glancelite_db_pool_connections_in_use") == 0


def test_store_going_read_only_during_an_import(service, web):
    """A web-download into ro; ro turns read-only while the source is held: the copy is refused,
    the import reverted, and every gauge the import moved comes back."""
    if not service.tmpfs:
        pytest.skip(f"cannot mount a tmpfs ({service.tmpfs_error}); needs root/CAP_SYS_ADMIN")
    size = MIB + MIB // 2
    labels = {"method": "web-download", "store": "ro"}
    before = scrape(service)
    image_id = create_image(service, requests)
    gate = f"ro-{image_id}"
    resp = start_import(
        service,
        requests,
        image_id,
        {"name": "web-download", "uri": web.url(f"/gated/{size}?gate={gate}")},
        stores=["ro"],
    )
    assert resp.status_code == 202, resp.text
    try:
        assert web.wait_started(gate)
        during = eventually(
            service,
            lambda s: (
                value(s, "glancelite_image_imports_started_total", **labels)
                > value(before, "glancelite_image_imports_started_total", **labels)
            ),
        )
        assert (
            value(during, "glancelite_image_imports_started_total", **labels)
            - value(before, "glancelite_image_imports_started_total", **labels)
            == 1
        )
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(service.root / "ro")], capture_output=True)
        assert remounted.returncode == 0, remounted.stderr
        web.open_gate(gate)
        task = wait_task(service, requests, image_id)
    finally:
        web.open_gate(gate)
        subprocess.run(["mount", "-o", "remount,rw", str(service.root / "ro")], capture_output=True)
    assert task["status"] == "failure", task
    assert "read-only" in task["message"] or "WRITE_ACCESS" in task["message"], task["message"]
    after = eventually(
        service,
        lambda s: (
            value(s, "glancelite_image_imports_finished_total", **labels, outcome="reverted")
            > value(before, "glancelite_image_imports_finished_total", **labels, outcome="reverted")
        ),
    )

    def moved(name, **lbl):
        return value(after, name, **lbl) - value(before, name, **lbl)

    assert moved("glancelite_image_imports_finished_total", **labels, outcome="reverted") == 1
    assert moved("glancelite_image_imports_finished_total", **labels, outcome="succeeded") == 0
    assert moved("glancelite_image_import_duration_seconds_count", method="web-download", outcome="reverted") == 1
    # The live probe in the copy saw the write access go (and nothing reached the store).
    assert value(after, "glancelite_store_capability", store="ro", capability="write_access") == 0
    assert moved("glancelite_store_written_bytes_total", store="ro") == 0
    for store in ("ro", "os_glance_staging_store", "os_glance_tasks_store"):
        for direction in ("read", "write"):
            assert value(after, "glancelite_store_transfers_in_flight", store=store, direction=direction) == 0
    assert value(after, "glancelite_reserved_store_used_bytes", store="os_glance_staging_store") == value(
        before, "glancelite_reserved_store_used_bytes", store="os_glance_staging_store"
    )
    # Writable again: the next probe brings the capability back.
    _image_id, resp = upload(service, b"accepted", "ro")
    assert resp.status_code == 204, resp.text
    assert value(scrape(service), "glancelite_store_capability", store="ro", capability="write_access") == 1


def test_refused_upload_to_a_read_only_store_is_counted_by_status(service):
    if not service.tmpfs:
        pytest.skip(f"cannot mount a tmpfs ({service.tmpfs_error}); needs root/CAP_SYS_ADMIN")
    route = {"method": "PUT", "route": "/v2/images/{image_id}/file"}
    before = scrape(service)
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(service.root / "ro")], capture_output=True)
    assert remounted.returncode == 0, remounted.stderr
    try:
        _image_id, resp = upload(service, b"refused", "ro")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(service.root / "ro")], capture_output=True)
    assert resp.status_code == 410, resp.text
    after = scrape(service)

    def moved(name, **lbl):
        return value(after, name, **lbl) - value(before, name, **lbl)

    assert moved("glancelite_http_requests_total", **route, status="410") == 1
    assert moved("glancelite_http_requests_total", **route, status="204") == 0
    assert moved("glancelite_store_written_bytes_total", store="ro") == 0
    assert value(after, "glancelite_store_transfers_in_flight", store="ro", direction="write") == 0


def test_failed_upload_mid_stream_counts_its_bytes_and_ends_its_transfer(service):
    """The client announces more than it sends: 400, the bytes that went in counted, nothing in flight."""
    before = scrape(service)
    image_id = create_image(service, requests)
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        conn.sendall(
            (
                f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                f"X-Image-Meta-Store: slow\r\nContent-Length: {2 * MIB}\r\n\r\n"
            ).encode()
            + b"z" * MIB
        )
        conn.shutdown(socket.SHUT_WR)  # the body ends half-way
        answer = conn.recv(65536).decode(errors="replace")
    after = eventually(
        service,
        lambda s: (
            value(s, "glancelite_store_written_bytes_total", store="slow")
            - value(before, "glancelite_store_written_bytes_total", store="slow")
            >= MIB
            and value(s, "glancelite_store_transfers_in_flight", store="slow", direction="write") == 0
        ),
    )
    assert requests.get(f"{service.url}/v2/images/{image_id}", timeout=10).json()["status"] == "queued", answer
    written = value(after, "glancelite_store_written_bytes_total", store="slow") - value(
        before, "glancelite_store_written_bytes_total", store="slow"
    )
    assert written == MIB  # counted as they went in, though the upload failed
    assert value(after, "glancelite_store_transfers_in_flight", store="slow", direction="write") == 0
    assert store_files(service.root, "slow", image_id) == []  # the driver removed the partial object
