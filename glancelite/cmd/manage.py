"""glancelite-manage: database and configuration administration.

    glancelite-manage --config-file glance-api.conf db sync|version|expand|migrate|contract|check
    glancelite-manage --config-file glance-api.conf db sync --check
    glancelite-manage --config-file glance-api.conf db load_metadefs [--path DIR] [--merge [--prefer_new] [--overwrite]]
    glancelite-manage --config-file glance-api.conf db unload_metadefs | export_metadefs [--path DIR]
    glancelite-manage --config-file glance-api.conf db purge [--age_in_days 30] [--max_rows 100]
    glancelite-manage --config-file glance-api.conf db purge_images_table [--age_in_days 180] [--max_rows 100]
    glancelite-manage --config-file glance-api.conf config check
    glancelite-manage --config-file glance-api.conf store audit [--remove-orphans-older-than AGE]

Glance's legacy spellings (``db_sync``, ``db_version``, ...) are accepted.
``db check`` exits 0 when current, 3/4/5 when expand/migrate/contract is next.
``store audit`` (glancelite's own; cmd/store_audit.py) exits 0 clean, 1 findings, 2 error.
Any other failure is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import time

from glancelite import errors
from glancelite.cmd import common, store_audit
from glancelite.db import engine as db_engine
from glancelite.db import metadef_files, migration, purge

USAGE_ERROR = 2


def _engine(loaded):
    return db_engine.create_engine(loaded.settings.database)


def _db_check(loaded, args) -> int:
    engine = migration.readonly_engine(db_engine.database_url(loaded.settings.database))
    try:
        verdict, message = migration.check(engine)
    finally:
        engine.dispose()
    print(message)
    return int(verdict)


def _db_sync(loaded, args) -> int:
    if args.check:
        return _db_check(loaded, args)
    if not migration.sync(_engine(loaded)):
        print("Database is up to date. No migrations needed.")
        return 0
    print("Database is synced successfully.")
    return 0


def _db_version(loaded, args) -> int:
    revisions = migration.version(_engine(loaded))
    if not revisions:
        print(
            "Database is either not under migration control or under legacy migration control, "
            'please run "glancelite-manage db sync" to place the database under migration control.'
        )
        return 0
    print(", ".join(revisions))
    return 0


def _db_expand(loaded, args) -> int:
    migration.expand(_engine(loaded))
    print("Database expanded successfully.")
    return 0


def _db_migrate(loaded, args) -> int:
    rows = migration.migrate(_engine(loaded))
    print(f"Migrated {rows} rows" if rows else "Database migration is up to date. No migration needed.")
    return 0


def _db_contract(loaded, args) -> int:
    migration.contract(_engine(loaded))
    print("Database is up to date. No migrations needed.")
    return 0


def _db_load_metadefs(loaded, args) -> int:
    outcomes = metadef_files.load(
        _engine(loaded),
        args.path or metadef_files.DEFAULT_PATH,
        merge=args.merge,
        prefer_new=args.prefer_new,
        overwrite=args.overwrite,
    )
    for namespace, outcome in outcomes.items():
        print(f"{outcome}: {namespace}")
    return 0


def _db_unload_metadefs(loaded, args) -> int:
    print(f"Deleted {metadef_files.unload(_engine(loaded))} namespaces")
    return 0


def _db_export_metadefs(loaded, args) -> int:
    for file in metadef_files.export(_engine(loaded), args.path or metadef_files.DEFAULT_PATH):
        print(f"exported: {file}")
    return 0


class UsageError(ValueError):
    """A bad argument: its message, exit 1 (glance-manage's sys.exit(message))."""


def _purge_limits(args, default_age: int) -> tuple[int, int]:
    """glance-manage's checks of --age_in_days and --max_rows, with its messages."""
    age, rows = args.age_in_days if args.age_in_days is not None else str(default_age), args.max_rows
    try:
        age_in_days = int(age)
    except ValueError:
        raise UsageError(f"Invalid int value for age_in_days: {age}") from None
    try:
        max_rows = int(rows)
    except ValueError:
        raise UsageError(f"Invalid int value for max_rows: {rows}") from None
    if age_in_days < 0:
        raise UsageError("Must supply a non-negative value for age.")
    if age_in_days >= int(time.time()) // 86400:
        raise UsageError("Maximal age is count of days since epoch.")
    if max_rows < -1:
        raise UsageError("Minimal rows limit is -1.")
    if max_rows > purge.MAX_ROWS_LIMIT:
        raise UsageError(f"'max_rows' value out of range, must not exceed {purge.MAX_ROWS_LIMIT}.")
    return age_in_days, max_rows


def _report_purged(counts: dict[str, int]) -> int:
    for table, rows in counts.items():
        print(f"Deleted {rows} row(s) from table {table}")
    return 0


def _db_purge(loaded, args) -> int:
    age_in_days, max_rows = _purge_limits(args, default_age=30)
    return _report_purged(purge.purge(_engine(loaded), age_in_days, max_rows))


def _db_purge_images_table(loaded, args) -> int:
    age_in_days, max_rows = _purge_limits(args, default_age=180)
    return _report_purged(purge.purge_images(_engine(loaded), age_in_days, max_rows))


def _config_check(loaded, args) -> int:
    # The same verdict glancelite-api gives before it serves: options, then stores and policy;
    # a check changes nothing (no store directory is created).
    common.check_collaborators_or_exit(loaded, prepare=False)
    print("Configuration is valid.")
    return 0


def _store_audit(loaded, args) -> int:
    # Its own exit codes: 2 for anything that kept the audit from answering (1 means findings).
    try:
        return store_audit.run(loaded, args.remove_orphans_older_than)
    except store_audit.BadAge as exc:
        print(f"glancelite-manage: {exc}", file=sys.stderr)
    except errors.ConfigError as exc:
        print(f"glancelite: invalid configuration: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - one line for the operator (--debug shows the traceback)
        if args.debug:
            raise
        print(f"glancelite-manage: ERROR: {_one_line(exc)}", file=sys.stderr)
    return store_audit.FAILED


COMMANDS = {
    ("db", "sync"): _db_sync,
    ("db", "version"): _db_version,
    ("db", "expand"): _db_expand,
    ("db", "migrate"): _db_migrate,
    ("db", "contract"): _db_contract,
    ("db", "check"): _db_check,
    ("db", "load_metadefs"): _db_load_metadefs,
    ("db", "unload_metadefs"): _db_unload_metadefs,
    ("db", "export_metadefs"): _db_export_metadefs,
    ("db", "purge"): _db_purge,
    ("db", "purge_images_table"): _db_purge_images_table,
    ("config", "check"): _config_check,
    ("store", "audit"): _store_audit,
}
# COMPAT: glance-manage's legacy one-word spellings.
LEGACY = {f"db_{action}": ("db", action) for category, action in COMMANDS if category == "db"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glancelite-manage",
        description="Database, configuration and store administration for glancelite.",
        epilog="commands: " + ", ".join(f"{c} {a}" for c, a in COMMANDS) + "; legacy: " + ", ".join(LEGACY),
    )
    common.add_config_arg(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("category", help="db, config or store (or a legacy name such as db_sync)")
    parser.add_argument("action", nargs="?")
    parser.add_argument("--check", action="store_true", help="with 'db sync': only report, as 'db check'")
    # db load_metadefs / export_metadefs, as glance-manage spells them.
    parser.add_argument("--path", help="metadef JSON folder (default /etc/glance/metadefs)")
    parser.add_argument("--merge", action="store_true", help="load_metadefs: merge into existing namespaces")
    parser.add_argument("--prefer_new", action="store_true", help="with --merge: the files win over the database")
    parser.add_argument(
        "--overwrite", action="store_true", help="with --merge: drop existing objects, properties, tags"
    )
    # db purge / purge_images_table, as glance-manage spells them.
    parser.add_argument("--age_in_days", help="purge rows deleted more than this many days ago (30; images 180)")
    parser.add_argument("--max_rows", default="100", help="at most this many rows per table; -1 for all")
    # store audit (glancelite's own).
    parser.add_argument(
        "--remove-orphans-older-than",
        "--remove_orphans_older_than",
        dest="remove_orphans_older_than",
        metavar="AGE",
        help="store audit: remove orphans and leftovers unchanged for longer than AGE (seconds, or 30m, 12h, 7d)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    key = LEGACY.get(args.category) if args.action is None else (args.category, args.action)
    handler = COMMANDS.get(key) if key else None
    if handler is None:
        parser.print_usage(sys.stderr)
        given = " ".join(x for x in (args.category, args.action) if x)
        print(f"glancelite-manage: unknown command {given!r}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    loaded = common.load_or_exit(args.config_file)
    try:
        code = handler(loaded, args)
    except errors.ConfigError as exc:
        print(f"glancelite: invalid configuration: {exc}", file=sys.stderr)
        code = 1
    except UsageError as exc:
        print(exc, file=sys.stderr)
        code = 1
    except Exception as exc:  # noqa: BLE001 - an operator gets one line, not a traceback (--debug shows it)
        if args.debug:
            raise
        print(f"glancelite-manage: ERROR: {_one_line(exc)}", file=sys.stderr)
        code = 1
    sys.exit(code)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    main()
