"""Shared command-line plumbing: --config-file and the one-line failure."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable

import sqlalchemy as sa

from glancelite import config, logs
from glancelite.errors import ConfigError

LOG = logging.getLogger(__name__)


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file",
        action="append",
        default=[],
        metavar="PATH",
        help="glance-api.conf to read; may be given more than once.",
    )


def load_or_exit(files: list[str]) -> config.LoadedConfig:
    """The configuration, with logging set up from it (oslo.log) before it is validated,
    so its warnings go where the operator told them to; one line and exit 1 if unusable."""
    try:
        conf = config.read(files)
        logs.setup(conf)
        return config.build(conf, files)
    except ConfigError as exc:
        print(f"glancelite: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def check_collaborators_or_exit(loaded: config.LoadedConfig, *, prepare: bool = True) -> None:
    """Build what start-up builds from the configuration (stores, policy) once, before any fork,
    so a bad driver option or policy file stops the service with one line instead of a traceback per worker.

    ``prepare=False`` (config check) validates the stores without creating their directories."""
    from glancelite.services.policy import Policy
    from glancelite.store.stores import StoreSet

    try:
        Policy(loaded.conf)
        StoreSet(loaded.settings, prepare=prepare).close()
    except ConfigError as exc:
        print(f"glancelite: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def check_schema_or_exit(loaded: config.LoadedConfig) -> None:
    """Refuse, in one line and before any worker forks, a database whose schema this code cannot use.

    Never synced: name ``glancelite-manage db sync``. Expand still to run: say what ``db check``
    says. Migrate or contract still to run is a rolling upgrade in progress (the expanded schema
    serves this code): a warning. A database that cannot be reached is not refused: the workers
    start and answer 503 until it is back.
    """
    with _quiet_alembic():  # importing alembic logs its plugins
        from glancelite.db import migration
    from glancelite.db.engine import DatabaseUnavailable

    url = loaded.settings.database.connection
    where = sa.engine.make_url(url).render_as_string(hide_password=True)
    engine = migration.readonly_engine(url)
    try:
        with _quiet_alembic():
            revisions = migration.current_revisions(engine)
            verdict, message = migration.check(engine)
    except DatabaseUnavailable as exc:
        LOG.warning("cannot check the database schema before serving: %s", exc)
        return
    finally:
        engine.dispose()
    if not revisions:
        _refuse(f"the database {where} has no glancelite schema: run `glancelite-manage db sync` first")
    if verdict is migration.Status.EXPAND_NEEDED:
        _refuse(f"the database {where} is behind this code: {message}")
    if verdict is not migration.Status.UP_TO_DATE:
        LOG.warning("the database schema upgrade is not finished: %s", message)


@contextlib.contextmanager
def _quiet_alembic():
    """alembic's INFO lines (plugins, "Context impl") say nothing about a read-only check at each
    start; silenced unless the operator gave alembic a level (default_log_levels, logging.conf)."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level != logging.NOTSET:
        yield
        return
    alembic_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_log.setLevel(logging.NOTSET)


def _refuse(reason: str) -> None:
    print(f"glancelite: {reason}", file=sys.stderr)
    raise SystemExit(1)


def wait_for_database_or_exit(loaded: config.LoadedConfig) -> None:
    """[database] max_retries/retry_interval: wait for the database before serving, or stop with one line.

    In the master, before any worker forks: a worker that starts later, while the database is
    away, still boots and answers 503 (app.build_services never waits).
    """
    from glancelite.db import engine as db_engine

    try:
        db_engine.wait_for_database(loaded.settings.database)
    except db_engine.DatabaseUnavailable as exc:
        print(f"glancelite: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


def in_child_process(check: Callable[[], None]) -> None:
    """Run ``check`` in a forked child and stop as it stopped (its exit status; its output is ours).

    The master gunicorn forks its workers from must stay small: a worker's memory starts as a
    copy of the master's. The start-up checks import alembic (with mako and pygments) and build
    stores and policy once; done in the master they would stay in every worker (~15 MiB each).
    While the child runs, SIGTERM and SIGINT are passed on to it, so stopping a service that is
    still waiting for its database stops the wait too.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            check()
            code = 0
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def pass_on(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(code if code > 0 else 1)
