"""The fuzz tier: schemathesis drives the real glancelite-api (gunicorn) from its own OpenAPI description.

One server per module, with the functional tier's stores and the image cache on (so /v2/cache answers),
on SQLite, or on the session's PostgreSQL with GLANCELITE_TEST_DATABASE=postgresql.
"""

from __future__ import annotations

import pytest

from tests.support import postgres
from tests.support.server import Server, write_config


@pytest.fixture(scope="module")
def fuzzed_service(request, tmp_path_factory):
    database = None
    if postgres.wanted_backend() == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = cluster.create_database()
    root = tmp_path_factory.mktemp("fuzzed")
    config = write_config(root, {"DEFAULT": {"image_cache_dir": str(root / "cache")}}, database=database)
    server = Server(config).start()
    yield server
    server.stop()
    if database:
        cluster.drop_database(database)
