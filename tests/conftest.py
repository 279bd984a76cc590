"""Shared fixtures: a real service per test module, identities as headers."""

from __future__ import annotations

import pytest
import requests

from tests.support import postgres
from tests.support.server import Server, write_config


def identity(project: str = "project-a", roles: str = "reader,member", user: str = "user-a") -> dict:
    """Trusted identity headers, as keystonemiddleware would set them."""
    return {"X-Identity-Status": "Confirmed", "X-Project-Id": project, "X-User-Id": user, "X-Roles": roles}


ADMIN = identity("admin-project", "admin,reader,member", "admin-user")


@pytest.fixture(scope="module")
def service(request, tmp_path_factory):
    """A glancelite-api with two file stores (fast, slow) and the reserved stores.

    GLANCELITE_TEST_DATABASE=postgresql runs it on a fresh database of the session's PostgreSQL.
    """
    database = None
    if postgres.wanted_backend() == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = cluster.create_database()
    server = Server(write_config(tmp_path_factory.mktemp("service"), database=database)).start()
    yield server
    server.stop()
    if database:
        cluster.drop_database(database)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def json_http():
    """A session asking for Glance's JSON error bodies, so a test can read the messages."""
    with requests.Session() as session:
        session.headers["Accept"] = "application/json"
        yield session


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's private PostgreSQL (tools/pg-start.sh), stopped by PID at the end."""
    try:
        cluster = postgres.PostgresCluster.start()
    except postgres.PostgresUnavailable as exc:
        postgres.unavailable(str(exc))
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh, empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'glance.sqlite'}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


# Seconds spent per tier (tests/<tier>/...: setup, call and teardown, session fixtures included
# in the first test that needs them), printed at the end so a whole run says what each tier costs.
_TIER_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    parts = report.nodeid.split("/")
    tier = parts[1] if len(parts) > 2 and parts[0] == "tests" else "other"
    _TIER_SECONDS[tier] = _TIER_SECONDS.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if len(_TIER_SECONDS) > 1:
        times = ", ".join(f"{tier} {seconds:.0f} s" for tier, seconds in sorted(_TIER_SECONDS.items()))
        terminalreporter.write_line(f"time per tier: {times}")
