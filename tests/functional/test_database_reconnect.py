"""A pooled PostgreSQL connection the server dropped is replaced before use once it has sat idle.

glancelite pings a pooled connection only when it comes back to use after PING_AFTER_IDLE_SECONDS
in the pool (db/engine.py), instead of before every checkout: no round trip is added to a busy
worker's requests, and a connection that died while idle (restart, failover) is still replaced.
"""

from __future__ import annotations

import time

import psycopg
import sqlalchemy as sa

from glancelite.db import engine as db_engine
from glancelite.settings import DatabaseSettings


def _backend_pid(conn) -> int:
    return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def test_an_idle_connection_the_server_dropped_is_replaced(postgres_cluster):
    url = postgres_cluster.create_database()
    engine = db_engine.create_engine(DatabaseSettings(connection=url, max_pool_size=1, max_overflow=0))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        with engine.connect() as conn:
            first = _backend_pid(conn)
        with engine.connect() as conn:  # back at once: reused, not pinged
            assert _backend_pid(conn) == first
        assert statements == ["SELECT pg_backend_pid()"] * 2
        with psycopg.connect(postgres_cluster.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        time.sleep(db_engine.PING_AFTER_IDLE_SECONDS + 0.2)
        with engine.connect() as conn:  # idle long enough: pinged, found dead, replaced
            assert _backend_pid(conn) != first
    finally:
        engine.dispose()
        postgres_cluster.drop_database(url)
