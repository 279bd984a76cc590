"""[database] options on the real service: a one-connection pool on PostgreSQL, and the wait at start."""

from __future__ import annotations

import concurrent.futures
import subprocess
import time

import psycopg
import pytest
import requests

from tests.conftest import identity
from tests.support import postgres
from tests.support.server import BIN, Server, free_port, manage, write_config

ALICE = {**identity("alice-project"), "Accept": "application/json"}
ONE_CONNECTION = {"max_pool_size": "1", "max_overflow": "0", "pool_timeout": "1"}


def listening(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/versions", timeout=1)
    except requests.ConnectionError:
        return False
    return True


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


@pytest.fixture(scope="module")
def one_connection_service(postgres_cluster, tmp_path_factory):
    url = postgres_cluster.create_database()
    root = tmp_path_factory.mktemp("pool")
    sections = {"DEFAULT": {"workers": "1"}, "database": ONE_CONNECTION}
    server = Server(write_config(root, sections, database=url)).start()
    try:
        yield server, url
    finally:
        server.stop()
        postgres_cluster.drop_database(url)


@pytest.mark.postgres
def test_a_one_connection_pool_serves_concurrent_requests(one_connection_service):
    server, _ = one_connection_service
    assert requests.post(f"{server.url}/v2/images", json={"name": "a"}, headers=ALICE, timeout=30).status_code == 201

    def listing(_):
        return requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(listing, range(24)))
    assert statuses == [200] * 24


@pytest.mark.postgres
def test_an_exhausted_pool_answers_503_in_glances_shape(one_connection_service):
    """The one connection waits on a table lock; the next request gets no connection within pool_timeout."""
    server, url = one_connection_service
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as locker, concurrent.futures.ThreadPoolExecutor(1) as pool:
        locker.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")
        blocked = pool.submit(requests.get, f"{server.url}/v2/images", headers=ALICE, timeout=60)

        def waiting_on_the_lock():
            with psycopg.connect(postgres_cluster_admin(url)) as admin:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    (database,),
                ).fetchone()
            return row[0] > 0

        wait_for(waiting_on_the_lock, 30, "the service's only connection waiting on the lock")
        started = time.monotonic()
        resp = requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=30)
        elapsed = time.monotonic() - started
        locker.rollback()  # the lock goes: the first request completes
        assert blocked.result().status_code == 200
    assert resp.status_code == 503, resp.text[:300]
    assert resp.json() == {
        "code": "503 Service Unavailable",
        "title": "Service Unavailable",
        "message": "The database is busy; try again.<br /><br />\n\n",
    }
    assert elapsed < 10, f"took {elapsed:.1f}s with pool_timeout = 1"
    for leak in ("queuepool", "sqlalchemy", "timeout", "psycopg"):
        assert leak not in resp.text.lower(), resp.text
    assert "no database connection free within pool_timeout" in server.log.read_text()
    # And the service is whole again.
    assert requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=30).status_code == 200


def postgres_cluster_admin(url: str) -> str:
    """The cluster's superuser database, next to ``url``'s."""
    return url.rsplit("/", 1)[0] + "/postgres"


@pytest.mark.postgres
def test_the_service_waits_for_the_database_at_start(tmp_path):
    """PostgreSQL is not there when glancelite-api starts; it comes up later and the service serves.

    The service retries while nothing listens, then while its database does not exist yet; the
    database then appears at once with its tables (a copy of a synced template), because a
    service reaching an empty database would fail its start-up recovery, as Glance's would.
    """
    port = free_port()
    sections = {"DEFAULT": {"workers": "1"}, "database": {"max_retries": "-1", "retry_interval": "1"}}
    url = f"postgresql://postgres@127.0.0.1:{port}/glance"
    server = Server(write_config(tmp_path / "api", sections, database=url))
    server.proc = subprocess.Popen(
        [str(BIN / "glancelite-api"), "--config-file", str(server.config)],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "api" / "api.stderr", "ab"),
        start_new_session=True,
    )
    cluster = None
    try:
        wait_for(lambda: retries_logged(server) >= 1, 30, "a retry logged")
        assert server.proc.poll() is None, server.output()
        assert not listening(server.port), "serving before the database is there"
        try:
            cluster = postgres.PostgresCluster.start(port=port)
        except postgres.PostgresUnavailable as exc:
            postgres.unavailable(str(exc))
        template = cluster.create_database("glance_template")
        manage(write_config(tmp_path / "template", database=template), "db", "sync")
        seen = retries_logged(server)
        wait_for(lambda: retries_logged(server) > seen, 30, "a retry while the database does not exist")
        assert not listening(server.port), "serving before the database is there"
        cluster.create_database("glance", template="glance_template")
        wait_for(lambda: listening(server.port) or server.proc.poll() is not None, 30, "serving")
        assert server.proc.poll() is None, server.output()
        assert requests.get(f"{server.url}/v2/images", headers=ALICE, timeout=30).status_code == 200
        assert "retrying in 1s, unlimited attempt(s) left" in server.log.read_text()
    finally:
        server.stop()
        if cluster is not None:
            cluster.stop()


def retries_logged(server: Server) -> int:
    return server.log.read_text().count("cannot connect to the database") if server.log.exists() else 0


def test_the_service_refuses_to_start_after_max_retries(tmp_path):
    port = free_port()  # nothing listens there
    sections = {"database": {"max_retries": "2", "retry_interval": "1"}}
    conf = write_config(tmp_path, sections, database=f"postgresql://glance:secret@127.0.0.1:{port}/glance")
    started = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "glancelite-api"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("glancelite: cannot connect to the database after 2 attempt(s): "), lines[0]
    assert "secret" not in lines[0]
    assert elapsed < 15, f"took {elapsed:.1f}s to give up after 2 attempts 1s apart"
    assert not listening(Server(conf).port)
    assert (tmp_path / "api.log").read_text().count("cannot connect to the database") == 1  # the one retry
