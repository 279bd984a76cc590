"""The cluster tier: three glancelite-api nodes (separate gunicorn processes on their own ports)
sharing one PostgreSQL database, one Redis job board (tools/backends/redis-start.sh), the image
stores and one staging directory. Each node keeps its own tasks store.

Without redis-server (tools/backends/install-backends.sh installs it) or the PostgreSQL server
binaries the tier skips saying so; under CI=true it fails instead.
"""

from __future__ import annotations

import pytest
import requests

from tests.support import postgres
from tests.support.cluster import Cluster, Redis, RedisUnavailable
from tests.support.imports import WebSource


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = Redis(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except RedisUnavailable as exc:
        if postgres.in_ci():
            pytest.fail(f"no Redis for the job board (CI=true: the cluster tier must run): {exc}", pytrace=False)
        pytest.skip(f"no Redis for the job board: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web():
    source = WebSource()
    yield source
    source.close()


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory, redis, web):
    pg = request.getfixturevalue("postgres_cluster")
    database = pg.create_database()
    nodes = Cluster(
        tmp_path_factory.mktemp("cluster"),
        database=database,
        redis_url=redis.url,
        extra={"import_filtering_opts": web.filtering_opts},
    )
    try:
        yield nodes.start()
    finally:
        nodes.stop()
        pg.drop_database(database)


@pytest.fixture
def http():
    with requests.Session() as session:
        session.headers["Accept"] = "application/json"
        yield session
