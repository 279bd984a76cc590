"""Engine construction and the transaction helper every repository uses.

SQLite is the embedded default and must survive several gunicorn workers
writing at once. Glance answers 500 "database is locked" there, because a
DEFERRED transaction that reads and then writes fails at once when another
connection wrote in between. We open every SQLite transaction with
BEGIN IMMEDIATE (the write lock is taken up front, so the busy timeout
applies), run in WAL mode, and retry the few lock errors that remain.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from glancelite import errors

LOG = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_LOCK_RETRIES = 8


class DatabaseUnavailable(errors.Unavailable):
    default_message = "The database is unavailable."


def create_engine(url: str) -> Engine:
    """Build the one engine of a process; the URL decides the dialect's tuning."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise errors.ConfigError("database", "connection", f"not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, future=True)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise errors.ConfigError("database", "connection", f"no driver for {parsed.drivername!r}: {exc}") from exc


def _sqlite_engine(url: sa.engine.URL) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        future=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not pysqlite, emit BEGIN (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if url.database and url.database != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _is_lock_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock detected" in text


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; retried by ``retry_on_lock`` callers, never here (the body may not be idempotent)."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        if _is_lock_error(exc):
            raise
        # The driver's text names hosts and socket paths: it goes to the log, never to a client.
        LOG.error("database unavailable: %s", exc.orig)
        raise DatabaseUnavailable() from exc


def run_in_transaction(engine: Engine, work, *args, **kwargs):
    """Run ``work(conn, *args, **kwargs)`` in a transaction, retrying lock conflicts with backoff."""
    for attempt in range(_LOCK_RETRIES):
        try:
            with transaction(engine) as conn:
                return work(conn, *args, **kwargs)
        except sa.exc.OperationalError as exc:
            if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                raise DatabaseUnavailable("The database is busy; try again.") from exc
            delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
            LOG.warning("database lock conflict, retrying in %.2fs", delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
