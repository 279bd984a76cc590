"""The detailed health check of a real glancelite-api on PostgreSQL with a file and an S3 store.

PostgreSQL is this module's own cluster and S3 its own moto server, both stopped by PID mid-module
to see the answer flip; the plain /healthcheck keeps answering as before.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN, identity
from tests.support import postgres
from tests.support.server import Server, free_port, write_config

pytestmark = pytest.mark.postgres

DETAILED = "/healthcheck/detailed"
MOTO = Path(sys.executable).parent / "moto_server"


class Moto:
    """A moto S3 server on a free 127.0.0.1 port, stopped by PID."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                requests.get(self.url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def cluster():
    try:
        own = postgres.PostgresCluster.start()
    except postgres.PostgresUnavailable as exc:
        postgres.unavailable(str(exc))
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
def moto():
    if not MOTO.exists():
        pytest.skip(f"{MOTO} is not installed (the test extra's moto[server])")
    server = Moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(cluster, moto, tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    sections = {
        # One worker: each request below sees the same process's state.
        "DEFAULT": {"workers": "1", "enabled_backends": "fast:file, cheap:s3"},
        "cheap": {
            "s3_store_host": moto.url,
            "s3_store_access_key": "testing",
            "s3_store_secret_key": "testing",
            "s3_store_bucket": "glancelite-health",
            "s3_store_create_bucket_on_put": "true",
            "weight": "50",
        },
    }
    server = Server(write_config(root, sections, database=cluster.create_database())).start()
    server.root = root
    try:
        yield server
    finally:
        server.stop()


def detailed(service, headers=None) -> requests.Response:
    return requests.get(service.url + DETAILED, headers=headers or {}, timeout=60)


def plain(service) -> requests.Response:
    return requests.get(service.url + "/healthcheck", timeout=30)


def test_all_parts_available(service):
    resp = detailed(service)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["available"] is True
    assert set(body) == {"available", "database", "stores", "stop_file"}
    assert body["database"]["available"] is True and body["database"]["latency_ms"] > 0
    assert set(body["stores"]) == {"fast", "cheap", "os_glance_staging_store", "os_glance_tasks_store"}
    for store_id, check in body["stores"].items():
        assert check["available"] is True, (store_id, check)
        assert "READ_ACCESS" in check["capabilities"] and "WRITE_ACCESS" in check["capabilities"]
        assert check["latency_ms"] >= 0
        assert check["reserved"] is store_id.startswith("os_glance_")
    assert body["stop_file"] == {"available": True, "reason": "OK", "latency_ms": body["stop_file"]["latency_ms"]}
    # The plain answer is untouched.
    assert (plain(service).status_code, plain(service).text) == (200, "OK")


def test_only_admins_or_local_callers(service):
    """A proxied request is not local: it goes through the API's identity and must be an admin."""
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    member = detailed(service, {**proxied, **identity("p1", "reader,member", "u1")})
    assert member.status_code == 403, member.text
    assert "database" not in member.text
    admin = detailed(service, {**proxied, **ADMIN})
    assert admin.status_code == 200 and admin.json()["available"] is True


def test_stop_file_makes_it_503(service):
    stop_file = service.root / "healthcheck_disable"
    stop_file.touch()
    try:
        resp = detailed(service)
        assert resp.status_code == 503
        body = resp.json()
        assert body["available"] is False and body["stop_file"]["available"] is False
        assert "drained" in body["stop_file"]["reason"]
        assert body["database"]["available"] is True
        assert plain(service).status_code == 503  # as before: DISABLED BY FILE
    finally:
        stop_file.unlink()
    assert detailed(service).status_code == 200


def test_store_going_away_makes_it_503(service, moto):
    assert detailed(service).status_code == 200
    moto.stop()
    resp = detailed(service)
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["available"] is False
    assert body["stores"]["cheap"]["available"] is False
    assert "unreachable" in body["stores"]["cheap"]["reason"]
    assert body["stores"]["cheap"]["capabilities"] == ["DRIVER_REUSABLE"]
    assert body["stores"]["fast"]["available"] is True and body["database"]["available"] is True
    assert (plain(service).status_code, plain(service).text) == (200, "OK")  # stays exactly as it is


def test_database_going_away_makes_it_503(service, cluster):
    cluster.stop()
    resp = detailed(service)
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["database"] == {
        "available": False,
        "reason": "the database cannot be reached",
        "latency_ms": body["database"]["latency_ms"],
    }
    assert "psycopg" not in resp.text and "OperationalError" not in resp.text  # nothing of the driver's text
    assert body["stores"]["fast"]["available"] is True
    assert (plain(service).status_code, plain(service).text) == (200, "OK")
