"""Shared command-line plumbing: --config-file and the one-line failure."""

from __future__ import annotations

import argparse
import logging
import sys

from glancelite import config
from glancelite.errors import ConfigError


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file",
        action="append",
        default=[],
        metavar="PATH",
        help="glance-api.conf to read; may be given more than once.",
    )


def load_or_exit(files: list[str]) -> config.LoadedConfig:
    try:
        return config.load(files)
    except ConfigError as exc:
        print(f"glancelite: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def check_collaborators_or_exit(loaded: config.LoadedConfig) -> None:
    """Build what start-up builds from the configuration (stores, policy) once, before any fork,
    so a bad driver option or policy file stops the service with one line instead of a traceback per worker."""
    from glancelite.services.policy import Policy
    from glancelite.store.stores import StoreSet

    try:
        Policy(loaded.conf)
        StoreSet(loaded.settings).close()
    except ConfigError as exc:
        print(f"glancelite: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


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


def setup_logging(debug: bool, log_file: str | None = None) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        filename=log_file,
        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s",
    )
