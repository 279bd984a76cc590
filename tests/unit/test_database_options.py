"""[database] options (oslo.db's names and defaults) -> DatabaseSettings -> the real SQLAlchemy engine."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest
import sqlalchemy as sa
from oslo_db import options as oslo_db_options

from glancelite import config, opts
from glancelite.db import engine as db_engine
from glancelite.db import tables
from glancelite.db import tasks as task_repo
from glancelite.errors import ConfigError, NotFound
from glancelite.settings import DatabaseSettings
from tests.support.server import free_port, write_config

PG_URL = "postgresql://glance:secret@127.0.0.1:{port}/glance"


def database_of(tmp_path, options: dict[str, str]) -> DatabaseSettings:
    return config.load([str(write_config(tmp_path, {"database": options}))]).settings.database


def test_defaults_are_oslo_dbs(tmp_path):
    database = database_of(tmp_path, {})
    oslo_defaults = {o.dest: o.default for o in oslo_db_options.database_opts}
    for name in opts.APPLIED_OSLO_DB_OPTIONS:
        expected = oslo_defaults[name]
        if name == "connection_parameters":
            expected = expected or ""
        assert getattr(database, name) == expected, name
    assert (database.max_pool_size, database.max_overflow, database.pool_timeout) == (5, 50, None)
    assert (database.max_retries, database.retry_interval, database.connection_recycle_time) == (10, 10, 3600)


def test_options_reach_the_settings(tmp_path):
    database = database_of(
        tmp_path,
        {
            "max_pool_size": "1",
            "max_overflow": "0",
            "pool_timeout": "7",
            "connection_recycle_time": "600",
            "max_retries": "-1",
            "retry_interval": "2",
            "sqlite_synchronous": "false",
            "connection_debug": "50",
            "connection_trace": "true",
            "connection_parameters": "connect_timeout=3",
        },
    )
    assert database == DatabaseSettings(
        connection=database.connection,
        connection_parameters="connect_timeout=3",
        max_pool_size=1,
        max_overflow=0,
        pool_timeout=7,
        connection_recycle_time=600,
        max_retries=-1,
        retry_interval=2,
        sqlite_synchronous=False,
        connection_debug=50,
        connection_trace=True,
    )


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("max_pool_size", "-1", "must be at least 0"),
        ("max_retries", "-2", "must be at least -1"),
        ("retry_interval", "-1", "must be at least 0"),
        ("pool_timeout", "-5", "must be at least 0"),
        ("max_overflow", "lots", "invalid value 'lots'"),
        ("connection_debug", "101", "invalid value '101'"),
    ],
)
def test_bad_values_name_the_option(tmp_path, option, value, fragment):
    with pytest.raises(ConfigError) as info:
        database_of(tmp_path, {option: value})
    assert str(info.value).startswith(f"[database] {option}: "), str(info.value)
    assert fragment in str(info.value)


def test_not_applicable_options_are_named_once_and_applied_ones_not_at_all(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {"database": {"mysql_sql_mode": "TRADITIONAL", "slave_connection": "sqlite://", "max_pool_size": "3"}},
    )
    config.load([str(path)])
    config.load([str(path)])  # a gunicorn worker loads the same files again
    messages = [r.getMessage() for r in caplog.records if "[database]" in r.getMessage()]
    assert sorted(messages) == [
        "option [database] mysql_sql_mode is not applicable to glancelite (SQLAlchemy on SQLite or PostgreSQL) "
        "and is ignored",
        "option [database] slave_connection is not applicable to glancelite (SQLAlchemy on SQLite or PostgreSQL) "
        "and is ignored",
    ]


def test_every_oslo_db_option_is_applied_or_not_applicable():
    """A new oslo.db option must be decided on: applied in db/engine.py or named not applicable."""
    applied = {o.dest for o in opts.DATABASE_OPTS}
    undecided = {o.dest for o in oslo_db_options.database_opts} - applied - opts.DATABASE_NOT_APPLICABLE
    assert not undecided
    assert not applied & opts.DATABASE_NOT_APPLICABLE


def test_postgresql_pool_takes_the_options():
    url = PG_URL.format(port=free_port())
    engine = db_engine.create_engine(
        DatabaseSettings(connection=url, max_pool_size=3, max_overflow=4, pool_timeout=7, connection_recycle_time=600)
    )
    try:
        assert isinstance(engine.pool, sa.pool.QueuePool)
        assert engine.pool.size() == 3
        assert engine.pool._max_overflow == 4
        assert engine.pool._timeout == 7
        assert engine.pool._recycle == 600
        assert engine.pool._pre_ping is False  # pinged only after an idle while: db/engine.py
    finally:
        engine.dispose()


def test_postgresql_pool_defaults_are_glances():
    engine = db_engine.create_engine(DatabaseSettings(connection=PG_URL.format(port=free_port())))
    try:
        # oslo.db: 5 + 50, SQLAlchemy's 30 s timeout when pool_timeout is unset, recycled hourly.
        assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (5, 50, 30)
        assert engine.pool._recycle == 3600
    finally:
        engine.dispose()


def test_connection_parameters_are_appended_to_the_url():
    engine = db_engine.create_engine(
        DatabaseSettings(
            connection=PG_URL.format(port=free_port()) + "?application_name=glance",
            connection_parameters="connect_timeout=3&sslmode=disable",
        )
    )
    try:
        assert dict(engine.url.query) == {
            "application_name": "glance",
            "connect_timeout": "3",
            "sslmode": "disable",
        }
    finally:
        engine.dispose()


def test_sqlite_file_pool_takes_the_options_and_works(tmp_path):
    database = DatabaseSettings(
        connection=f"sqlite:///{tmp_path / 'g.sqlite'}", max_pool_size=2, max_overflow=1, pool_timeout=4
    )
    engine = db_engine.create_engine(database)
    try:
        assert isinstance(engine.pool, sa.pool.QueuePool)
        assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (2, 1, 4)
        with db_engine.transaction(engine) as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_in_memory_sqlite_keeps_its_single_connection_pool():
    """The queue options do not apply to SQLAlchemy's pool for ':memory:' (it would refuse them)."""
    engine = db_engine.create_engine(
        DatabaseSettings(connection="sqlite://", max_pool_size=1, max_overflow=0, pool_timeout=1)
    )
    try:
        assert isinstance(engine.pool, sa.pool.SingletonThreadPool)
        tables.metadata.create_all(engine)
        with db_engine.transaction(engine) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM images").scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("synchronous, pragma", [(True, 1), (False, 0)])  # 1 NORMAL, 0 OFF
def test_sqlite_synchronous(tmp_path, synchronous, pragma):
    engine = db_engine.create_engine(
        DatabaseSettings(connection=f"sqlite:///{tmp_path / 'g.sqlite'}", sqlite_synchronous=synchronous)
    )
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
    finally:
        engine.dispose()


def test_exhausted_pool_is_a_503_error_not_a_hang(tmp_path):
    engine = db_engine.create_engine(
        DatabaseSettings(
            connection=f"sqlite:///{tmp_path / 'g.sqlite'}", max_pool_size=1, max_overflow=0, pool_timeout=1
        )
    )
    try:
        with engine.connect():  # the pool's only connection
            started = time.monotonic()
            with pytest.raises(db_engine.DatabaseUnavailable) as info:
                with db_engine.transaction(engine):
                    pass
            assert time.monotonic() - started < 5
        assert info.value.message == "The database is busy; try again."
        assert isinstance(info.value.__cause__, sa.exc.TimeoutError)
        with db_engine.transaction(engine) as conn:  # the connection is back: served again
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


def test_connection_debug_logs_statements(tmp_path, caplog):
    logger = logging.getLogger("sqlalchemy.engine")
    level = logger.level
    try:
        engine = db_engine.create_engine(
            DatabaseSettings(connection=f"sqlite:///{tmp_path / 'g.sqlite'}", connection_debug=50)
        )
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            with db_engine.transaction(engine) as conn:
                conn.exec_driver_sql("SELECT 42")
        assert any("SELECT 42" in r.getMessage() for r in caplog.records)
        engine.dispose()
    finally:
        logger.setLevel(level)


def test_connection_debug_zero_leaves_sqlalchemy_quiet(tmp_path):
    level = logging.getLogger("sqlalchemy.engine").level
    db_engine.create_engine(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'g.sqlite'}")).dispose()
    assert logging.getLogger("sqlalchemy.engine").level == level


def test_connection_trace_names_the_glancelite_caller(tmp_path):
    engine = db_engine.create_engine(
        DatabaseSettings(connection=f"sqlite:///{tmp_path / 'g.sqlite'}", connection_trace=True)
    )
    statements: list[str] = []

    @sa.event.listens_for(engine, "connect")
    def _record(dbapi_conn: sqlite3.Connection, _record):
        dbapi_conn.set_trace_callback(statements.append)

    try:
        tables.metadata.create_all(engine)
        with pytest.raises(NotFound):
            task_repo.get_task(engine, "no-such-task")
        [select] = [s for s in statements if s.startswith("SELECT") and "FROM tasks" in s]
        assert "/* glancelite/db/tasks.py:" in select
    finally:
        engine.dispose()


def test_wait_for_database_gives_up_after_max_retries():
    database = DatabaseSettings(connection=PG_URL.format(port=free_port()), max_retries=2, retry_interval=0)
    started = time.monotonic()
    with pytest.raises(db_engine.DatabaseUnavailable) as info:
        db_engine.wait_for_database(database)
    assert time.monotonic() - started < 10
    assert info.value.message.startswith("cannot connect to the database after 2 attempt(s): ")
    assert "\n" not in info.value.message


def test_sqlite_is_not_waited_for_nor_created(tmp_path):
    # The never-synced check that follows must find no file (tests/functional/test_startup.py).
    db_engine.wait_for_database(DatabaseSettings(connection=f"sqlite:///{tmp_path / 'g.sqlite'}", max_retries=-1))
    assert not (tmp_path / "g.sqlite").exists()


def test_max_retries_zero_does_not_wait():
    database = DatabaseSettings(connection=PG_URL.format(port=free_port()), max_retries=0, retry_interval=60)
    started = time.monotonic()
    db_engine.wait_for_database(database)  # nothing listens there: not tried at all
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("url", ["nosuchdialect://h/db", "mysql+mysqldb://glance:secret@127.0.0.1/glance"])
def test_a_url_without_a_dialect_or_driver_is_a_config_error(url):
    with pytest.raises(ConfigError) as info:
        db_engine.create_engine(DatabaseSettings(connection=url))
    assert str(info.value).startswith("[database] connection: no driver for "), str(info.value)
