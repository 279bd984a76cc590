"""Schema upgrades as Glance organises them: expand, data migrations, contract.

alembic is driven from code (no alembic.ini): the caller's engine is passed
in. Revisions live in two branches forked from the base revision: ``expand``
(additive only, safe while old code runs) and ``contract`` (removals, each
revision ``depends_on`` its expand revision). Between them ``migrate`` runs
the data migrations in migrations/data_migrations. ``check`` reads and never writes.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from glancelite import errors
from glancelite.db.engine import DatabaseUnavailable
from glancelite.db.migrations.data_migrations import MIGRATIONS as DATA_MIGRATIONS

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
EXPAND_BRANCH = "expand"
CONTRACT_BRANCH = "contract"


class MigrationError(errors.GlanceliteError):
    """A step asked for out of order (contract before migrate, ...)."""


class Status(enum.IntEnum):
    """``db check`` verdicts; the values are glance-manage's exit codes."""

    UP_TO_DATE = 0
    EXPAND_NEEDED = 3
    MIGRATE_NEEDED = 4
    CONTRACT_NEEDED = 5


MESSAGES = {
    Status.UP_TO_DATE: "Database is up to date. No upgrades needed.",
    Status.EXPAND_NEEDED: "Your database is not up to date. Your first step is to run `glancelite-manage db expand`.",
    Status.MIGRATE_NEEDED: "Your database is not up to date. Your next step is to run `glancelite-manage db migrate`.",
    Status.CONTRACT_NEEDED: "Your database is not up to date. Your next step is to run `glancelite-manage db contract`.",
}


def alembic_config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def branch_head(branch: str) -> str:
    return script_directory().revision_map.get_current_head(branch)


@contextlib.contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    """A connection, with a failure to reach the database turned into one readable error."""
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot connect to the database {where}: {reason}") from None
    with conn:
        yield conn


@contextlib.contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction for a whole step; SQLite's foreign keys off while batch mode rebuilds tables."""
    with _connect(engine) as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # Must precede BEGIN (the pragma is ignored inside a transaction);
            # DROP TABLE of a parent during a rebuild would fail otherwise.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def current_revisions(engine: Engine) -> set[str]:
    with _connect(engine) as conn:
        return _heads(conn)


# The foundation skeleton shipped a single revision, base01, that built today's
# whole schema; such a database is current. (Glance rewrites its old stamps the same way.)
_RESTAMPED = {"base01": ("contract01", "expand02")}


def _raw_heads(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def _heads(conn: Connection) -> set[str]:
    heads = set()
    for rev in _raw_heads(conn):
        heads.update(_RESTAMPED.get(rev, (rev,)))
    return heads


def _restamp(conn: Connection) -> None:
    old = _raw_heads(conn) & _RESTAMPED.keys()
    if old:
        command.stamp(alembic_config(conn), sorted(_heads(conn)), purge=True)


def version(engine: Engine) -> list[str]:
    """The current revision of each branch, sorted; empty when not under migration control."""
    return sorted(current_revisions(engine))


def _status(conn: Connection) -> Status:
    heads = _heads(conn)
    if branch_head(EXPAND_BRANCH) not in heads:
        return Status.EXPAND_NEEDED
    if any(m.has_migrations(conn) for m in DATA_MIGRATIONS):
        return Status.MIGRATE_NEEDED
    if branch_head(CONTRACT_BRANCH) not in heads:
        return Status.CONTRACT_NEEDED
    return Status.UP_TO_DATE


def status(engine: Engine) -> Status:
    with _connect(engine) as conn:
        try:
            return _status(conn)
        finally:
            conn.rollback()


def check(engine: Engine) -> tuple[Status, str]:
    """The verdict and the message naming the next command. Reads only."""
    verdict = status(engine)
    return verdict, MESSAGES[verdict]


def readonly_engine(url: str | sa.engine.URL) -> Engine:
    """An engine for ``check``: it cannot create, lock or convert the database it looks at."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not os.path.exists(path):
            # Opening a missing file would create it; an empty in-memory
            # database gives the same verdict (expand needed).
            return sa.create_engine("sqlite://")
        return sa.create_engine(f"sqlite:///file:{os.path.abspath(path)}?mode=ro&uri=true")
    connect_args = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["options"] = "-c default_transaction_read_only=on"
    return sa.create_engine(parsed, connect_args=connect_args, poolclass=sa.pool.NullPool)


def _upgrade(engine: Engine, target: str) -> None:
    with _migration_connection(engine) as conn:
        _restamp(conn)
        command.upgrade(alembic_config(conn), target)


def expand(engine: Engine) -> None:
    """Apply every expand revision (the base revision included)."""
    _upgrade(engine, f"{EXPAND_BRANCH}@head")


def migrate(engine: Engine) -> int:
    """Run the pending data migrations; the number of rows they moved."""
    with _migration_connection(engine) as conn:
        if branch_head(EXPAND_BRANCH) not in _heads(conn):
            raise MigrationError("Data migration requires the expand step first: run `glancelite-manage db expand`.")
        return sum(m.migrate(conn) for m in DATA_MIGRATIONS)


def contract(engine: Engine) -> None:
    """Apply the contract revisions; refused until expand and migrate are done."""
    verdict = status(engine)
    if verdict == Status.EXPAND_NEEDED:
        raise MigrationError("Contract requires the expand step first: run `glancelite-manage db expand`.")
    if verdict == Status.MIGRATE_NEEDED:
        raise MigrationError("Contract requires the data migrations first: run `glancelite-manage db migrate`.")
    _upgrade(engine, f"{CONTRACT_BRANCH}@head")


def sync(engine: Engine) -> bool:
    """expand, migrate, contract; a no-op (False) when the database is already current."""
    if status(engine) == Status.UP_TO_DATE:
        return False
    expand(engine)
    migrate(engine)
    contract(engine)
    return True


def upgrade(engine: Engine, target: str = "heads") -> None:
    """Plain alembic upgrade (glance-manage's ``db upgrade``)."""
    _upgrade(engine, target)
