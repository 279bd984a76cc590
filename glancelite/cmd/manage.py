"""glancelite-manage: database and configuration administration."""

from __future__ import annotations

import argparse
import sys

from glancelite.cmd import common
from glancelite.db import engine as db_engine
from glancelite.db import migration


def _db_sync(loaded) -> int:
    migration.sync(db_engine.create_engine(loaded.settings.database_connection))
    print("Database is synced successfully.")
    return 0


def _db_version(loaded) -> int:
    revs = migration.current_revisions(db_engine.create_engine(loaded.settings.database_connection))
    print(", ".join(sorted(revs)) or "None")
    return 0


def _config_check(loaded) -> int:
    print("Configuration is valid.")
    return 0


COMMANDS = {
    ("db", "sync"): _db_sync,
    ("db", "version"): _db_version,
    ("config", "check"): _config_check,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="glancelite-manage", description=__doc__)
    common.add_config_arg(parser)
    parser.add_argument("category", choices=sorted({c for c, _ in COMMANDS}))
    parser.add_argument("action")
    args = parser.parse_args(argv)
    handler = COMMANDS.get((args.category, args.action))
    if handler is None:
        parser.error(f"unknown command: {args.category} {args.action}")
    loaded = common.load_or_exit(args.config_file)
    sys.exit(handler(loaded))


if __name__ == "__main__":
    main()
