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


def setup_logging(debug: bool, log_file: str | None = None) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        filename=log_file,
        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s",
    )
