"""PostgreSQL gone under a running service: 503 in Glance's shape, with nothing of the driver's text.

The cluster is this module's own (the session's is shared by every other test), stopped by PID
through tools/pg-stop.sh while the API keeps running.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.conftest import identity
from tests.support import postgres
from tests.support.server import Server, write_config

pytestmark = pytest.mark.postgres

ALICE = identity("alice-project")


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
def service_on_own_cluster(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("outage")
    # One worker: readiness then means every worker has built its services (a worker still booting
    # when the database goes away cannot build them, which is a start-up failure, not this case).
    sections = {"DEFAULT": {"workers": "1"}}
    server = Server(write_config(root, sections, database=cluster.create_database())).start()
    try:
        yield server
    finally:
        server.stop()


def test_requests_during_an_outage_get_a_plain_503(cluster, service_on_own_cluster):
    url = service_on_own_cluster.url
    assert requests.post(f"{url}/v2/images", json={"name": "before"}, headers=ALICE, timeout=30).status_code == 201
    cluster.stop()
    for method, path, body in (("GET", "/v2/images", None), ("POST", "/v2/images", {"name": "during"})):
        headers = {**ALICE, "Accept": "application/json"}
        resp = requests.request(method, f"{url}{path}", json=body, headers=headers, timeout=60)
        assert resp.status_code == 503, resp.text[:300]
        assert resp.json() == {
            "code": "503 Service Unavailable",
            "title": "Service Unavailable",
            "message": "The database is unavailable.<br /><br />\n\n",
        }
        text = resp.text.lower()
        # The driver's message names the server, its port and the socket directory: none of it may leak.
        for leak in (cluster.directory.lower(), str(cluster.port), "psycopg", "connection to server", "sqlalchemy"):
            assert leak not in text, (leak, resp.text[:300])


def test_a_worker_started_during_an_outage_boots_and_answers_503(cluster, service_on_own_cluster):
    """gunicorn stops the whole service when a worker fails to boot: a replacement worker started
    while the database is away must come up (its start-up recovery waits for the next worker)."""
    server = service_on_own_cluster
    cluster.stop()  # already down after the test above; stopping twice is harmless
    [old_worker] = server.worker_pids()
    os.kill(old_worker, signal.SIGKILL)
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline and server.proc.poll() is None:
        workers = server.worker_pids()
        if workers and old_worker not in workers:
            try:
                status = requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=30).status_code
            except requests.RequestException:
                status = None
            if status == 503:
                break
        time.sleep(0.2)
    assert server.proc.poll() is None, server.output()
    assert status == 503, server.output()
    assert "Worker failed to boot" not in server.output()
