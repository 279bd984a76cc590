"""glancelite-scrubber: delete the data of images that a delayed delete left pending_delete.

    glancelite-scrubber --config-file glance-api.conf              one pass (from cron or a timer)
    glancelite-scrubber --config-file glance-api.conf --daemon     a pass every wakeup_time seconds
    glancelite-scrubber --config-file glance-api.conf --restore ID a pending_delete image back to active

As Glance's glance-scrubber: the options come from the configuration files
([DEFAULT] scrub_time, scrub_pool_size, wakeup_time, daemon; [database]; the stores),
``--daemon`` and ``--restore`` may not be combined, and a failed restore exits with
``ERROR: <reason>``. Any other failure is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from glancelite import app, errors
from glancelite.cmd import common
from glancelite.db import migration

LOG = logging.getLogger("glancelite.scrubber")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glancelite-scrubber", description=__doc__.split("\n")[0])
    common.add_config_arg(parser)
    daemon = parser.add_mutually_exclusive_group()
    daemon.add_argument(
        "-D", "--daemon", dest="daemon", action="store_true", default=None, help="a pass every wakeup_time seconds"
    )
    daemon.add_argument("--nodaemon", dest="daemon", action="store_false", help="one pass, then exit")
    parser.add_argument("--restore", metavar="<IMAGE_ID>", help="bring a pending_delete image back to active")
    parser.add_argument("--debug", action="store_true", help="debug logging (as [DEFAULT] debug) and tracebacks")
    return parser


def _refuse_unsynced(database_connection: str) -> None:
    engine = migration.readonly_engine(database_connection)
    try:
        verdict, message = migration.check(engine)
    finally:
        engine.dispose()
    if verdict == migration.Status.EXPAND_NEEDED:
        sys.exit(f"glancelite-scrubber: the database schema is not current ({message})")


def _run_daemon(scrubber, wakeup_time: int) -> None:
    """A pass, then wait wakeup_time; SIGTERM or SIGINT ends it after the pass under way."""
    stop = threading.Event()

    def _stop(signum, _frame):
        LOG.info("scrubber: signal %d, stopping after the current pass", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    LOG.info("scrubber daemon: a pass every %d s", wakeup_time)
    while not stop.is_set():
        try:
            scrubber.run()
        except errors.GlanceliteError as exc:  # the database is down: try again next time
            LOG.error("scrubber pass failed: %s", exc)
        stop.wait(wakeup_time)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    loaded = common.load_or_exit(args.config_file)
    settings = loaded.settings  # logging is set up from [DEFAULT]'s oslo.log options by now
    if args.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    daemon = settings.scrubber_daemon if args.daemon is None else args.daemon
    if args.restore and daemon:
        sys.exit(
            "ERROR: The restore and daemon options should not be set together. "
            "Please use either of them in one request."
        )
    try:
        _refuse_unsynced(settings.database.connection)
        services = app.build_scrubber(settings)
    except errors.GlanceliteError as exc:
        sys.exit(f"glancelite-scrubber: {exc}")
    try:
        if args.restore:
            image = services.scrubber.restore(args.restore)
            print(f"Image {image.id} restored to {image.status}.")
        elif daemon:
            _run_daemon(services.scrubber, settings.scrubber_wakeup_time)
        else:
            services.scrubber.run()
    except (errors.NotFound, errors.Conflict) as exc:
        sys.exit(f"ERROR: {exc}")
    except errors.GlanceliteError as exc:
        if args.debug:
            raise
        sys.exit(f"glancelite-scrubber: ERROR: {exc}")
    finally:
        services.close()


if __name__ == "__main__":
    main()
