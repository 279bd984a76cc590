"""A module-scoped service with extra options, on SQLite or (GLANCELITE_TEST_DATABASE=postgresql) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

from tests.support import postgres
from tests.support.server import Server, write_config


def serve(request, tmp_path_factory, name: str, sections: dict | None = None) -> Iterator[Server]:
    database = None
    if postgres.wanted_backend() == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = cluster.create_database()
    root = tmp_path_factory.mktemp(name)
    server = Server(write_config(root, sections, database=database)).start()
    server.root = root
    try:
        yield server
    finally:
        server.stop()
        if database:
            cluster.drop_database(database)
