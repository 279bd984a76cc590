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
import itertools
import logging
import os
import random
import time
import traceback
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from glancelite import errors
from glancelite.metrics import Metrics
from glancelite.settings import DatabaseSettings

LOG = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_LOCK_RETRIES = 8
BUSY_MESSAGE = "The database is busy; try again."


class DatabaseUnavailable(errors.Unavailable):
    default_message = "The database is unavailable."


def database_url(database: DatabaseSettings) -> sa.engine.URL:
    """[database] connection with connection_parameters appended to its query, as oslo.db does."""
    try:
        url = sa.engine.make_url(database.connection)
    except sa.exc.ArgumentError as exc:
        raise errors.ConfigError("database", "connection", f"not a database URL: {database.connection!r}") from exc
    if database.connection_parameters:
        url = url.update_query_string(database.connection_parameters, append=True)
    return url


def create_engine(database: DatabaseSettings, *, metrics: Metrics | None = None) -> Engine:
    """Build the one engine of a process from [database]; the URL decides the dialect's tuning.

    Nothing connects here: a worker started while the database is away must still boot
    (the wait at start is ``wait_for_database``'s, in the master). ``metrics`` (the process's)
    counts the connections checked out and the errors seen.
    """
    url = database_url(database)
    _log_sql(database.connection_debug)
    try:
        pool_class = url.get_dialect().get_pool_class(url)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise errors.ConfigError("database", "connection", f"no driver for {url.drivername!r}: {exc}") from exc
    engine_args: dict = {"pool_recycle": database.connection_recycle_time}
    # SQLAlchemy rejects the queue options on its other pools (an in-memory SQLite
    # database lives in one connection of a SingletonThreadPool).
    if issubclass(pool_class, sa.pool.QueuePool):
        engine_args["pool_size"] = database.max_pool_size
        engine_args["max_overflow"] = database.max_overflow
        if database.pool_timeout is not None:
            engine_args["pool_timeout"] = database.pool_timeout
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, database.sqlite_synchronous, engine_args)
    else:
        try:
            engine = sa.create_engine(url, **engine_args)
        except ImportError as exc:  # the dialect is known, its driver module is not installed
            raise errors.ConfigError("database", "connection", f"no driver for {url.drivername!r}: {exc}") from exc
    if url.get_backend_name() != "sqlite":  # a file has no server to lose
        _ping_idle_connections(engine)
    if database.connection_trace:
        _trace_statements(engine)
    if metrics is not None:
        _record_metrics(engine, metrics)
    return engine


def ping(engine: Engine) -> None:
    """One round trip to the database (the detailed health check); DatabaseUnavailable when it fails."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        raise DatabaseUnavailable() from exc


# A pooled connection back in the pool for longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic reconnect without a round trip per request: a connection that sat in the pool
    for over a second is pinged when checked out, and replaced when the server dropped it
    (restart, failover, idle timeout). One that served a request a moment ago is used as it is.

    SQLAlchemy's pool_pre_ping pings at every checkout: one more round trip for every request,
    ~10% of an image create on PostgreSQL. What a ping would have caught within the second
    instead fails the statement: SQLAlchemy sees the disconnect and invalidates the pool, and
    the request answers 503 as any request does while the database is away.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        # record.info belongs to this DBAPI connection: a replacement starts without the mark.
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise sa.exc.DisconnectionError(f"pooled connection lost: {_one_line(exc)}") from exc


def _record_metrics(engine: Engine, metrics: Metrics) -> None:
    in_use = metrics.db_connections_in_use

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_conn, _record, _proxy):
        in_use.inc()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, _record):
        in_use.dec()

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        metrics.db_errors.labels("disconnect" if context.is_disconnect else "error").inc()


def _log_sql(connection_debug: int) -> None:
    """oslo.db's levels for the ``sqlalchemy.engine`` logger: 50 logs statements, 100 also rows.

    A logger level is process-wide; below 50 SQLAlchemy's own default (warnings only) stays.
    """
    if connection_debug >= 100:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    elif connection_debug >= 50:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)


def _sqlite_engine(url: sa.engine.URL, synchronous: bool, engine_args: dict) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **engine_args,
    )
    # sqlite_synchronous = true keeps a synchronous mode: NORMAL, which in WAL mode never
    # corrupts the file (a power loss may drop the last commits); false is OFF, as in oslo.db.
    synchronous_mode = "NORMAL" if synchronous else "OFF"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not pysqlite, emit BEGIN (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if url.database and url.database != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous_mode}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A read (run_read) takes a snapshot and no write lock: WAL readers never wait for writers.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def _trace_statements(engine: Engine) -> None:
    """connection_trace: each statement carries, as an SQL comment, the glancelite frames that ran it."""
    here = os.path.abspath(__file__)
    package_dir = os.path.dirname(os.path.dirname(here))
    package = package_dir + os.sep

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _add_trace(_conn, _cursor, statement, parameters, _context, _executemany):
        frames = [
            f"{os.path.relpath(f.filename, os.path.dirname(package_dir))}:{f.lineno} {f.name}"
            for f in traceback.extract_stack()
            if f.filename.startswith(package) and os.path.abspath(f.filename) != here
        ]
        if not frames:
            return statement, parameters
        # Drivers scan the whole text for placeholders ('%', '?'); a comment must hold neither.
        trace = " | ".join(frames).replace("%", "").replace("?", "").replace("*/", "")
        return f"{statement} /* {trace} */", parameters


def wait_for_database(database: DatabaseSettings) -> None:
    """At start: connect, retrying ``max_retries`` times ``retry_interval`` seconds apart (-1: for ever).

    Raises DatabaseUnavailable, whose cause is the driver's last error, when every attempt failed.
    max_retries = 0 does not try at all (the service starts and answers 503 until the database is up);
    neither is SQLite waited for.
    """
    if database.max_retries == 0:
        return
    if sa.engine.make_url(database.connection).get_backend_name() == "sqlite":
        # A local file has no server to wait for, and connecting would create it before the
        # schema check can refuse a database that was never synced.
        return
    engine = create_engine(database)
    attempts = itertools.count(1) if database.max_retries < 0 else range(1, database.max_retries + 1)
    try:
        for attempt in attempts:
            try:
                with engine.connect():
                    return
            except sa.exc.DBAPIError as exc:
                if attempt == database.max_retries:
                    raise DatabaseUnavailable(
                        f"cannot connect to the database after {attempt} attempt(s): {_one_line(exc.orig)}"
                    ) from exc
                left = "unlimited" if database.max_retries < 0 else database.max_retries - attempt
                LOG.warning(
                    "cannot connect to the database (%s); retrying in %ss, %s attempt(s) left",
                    _one_line(exc.orig),
                    database.retry_interval,
                    left,
                )
                time.sleep(database.retry_interval)
    finally:
        # The master forks the workers: none may inherit a pooled connection.
        engine.dispose()


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())


def _is_lock_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock detected" in text


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; retried by ``retry_on_lock`` callers, never here (the body may not be idempotent)."""
    try:
        with engine.begin() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
        _raise_unavailable(exc)


_READ_ONLY = "glancelite_read_only"


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for statements that only read, with ``transaction``'s error mapping.

    PostgreSQL: autocommit, so no BEGIN and COMMIT round trips (two of a listing's six). Under
    READ COMMITTED, PostgreSQL's default and oslo.db's, each statement of a transaction sees its
    own snapshot anyway, so the statements see nothing less consistent. SQLite: a deferred
    BEGIN, one snapshot for every statement and no write lock (BEGIN IMMEDIATE would queue
    every read behind the writers).
    """
    try:
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(engine.connect())
            if engine.dialect.name == "sqlite":
                stack.enter_context(conn.execution_options(**{_READ_ONLY: True}).begin())
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
    except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
        _raise_unavailable(exc)


def _raise_unavailable(exc: Exception) -> None:
    """The one mapping of a connection's failures: lock errors go on to the retry, the rest is
    DatabaseUnavailable (the driver's text names hosts and socket paths: log only)."""
    if isinstance(exc, sa.exc.TimeoutError):
        # Every connection the pool may open (max_pool_size + max_overflow) stayed in use for pool_timeout.
        LOG.warning("no database connection free within pool_timeout: %s", exc)
        raise DatabaseUnavailable(BUSY_MESSAGE) from exc
    if _is_lock_error(exc):
        raise exc
    LOG.error("database unavailable: %s", exc.orig)
    raise DatabaseUnavailable() from exc


def run_read(engine: Engine, work, *args, **kwargs):
    """``run_in_transaction`` for ``work`` that only reads: on a ``reading`` connection."""
    return _run(engine, reading, work, args, kwargs)


def run_in_transaction(engine: Engine, work, *args, **kwargs):
    """Run ``work(conn, *args, **kwargs)`` in a transaction, retrying lock conflicts with backoff."""
    return _run(engine, transaction, work, args, kwargs)


def _run(engine: Engine, open_connection, work, args, kwargs):
    for attempt in range(_LOCK_RETRIES):
        try:
            with open_connection(engine) as conn:
                return work(conn, *args, **kwargs)
        except sa.exc.OperationalError as exc:
            if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                raise DatabaseUnavailable(BUSY_MESSAGE) from exc
            delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
            LOG.warning("database lock conflict, retrying in %.2fs", delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
