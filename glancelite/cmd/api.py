"""glancelite-api: validate the configuration, then serve it under gunicorn."""

from __future__ import annotations

import argparse
import os

from gunicorn.app.base import BaseApplication

from glancelite import wsgi
from glancelite.cmd import common


class GunicornServer(BaseApplication):
    """Each worker builds its own application (engines and executors are not shared across fork)."""

    def __init__(self, files: list[str], options: dict):
        self.files = files
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from glancelite import config

        return wsgi.build_application(config.load(self.files))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="glancelite-api", description=__doc__)
    common.add_config_arg(parser)
    args = parser.parse_args(argv)
    loaded = common.load_or_exit(args.config_file)
    settings = loaded.settings
    common.setup_logging(settings.debug, settings.log_file)
    common.check_collaborators_or_exit(loaded)
    common.wait_for_database_or_exit(loaded)
    # Workers re-read the same files; the environment carries them to wsgi.application_from_env too.
    os.environ[wsgi.CONFIG_ENV] = ":".join(os.path.abspath(f) for f in args.config_file)
    options = {
        "bind": f"{settings.bind_host}:{settings.bind_port}",
        "workers": settings.workers,
        # Threads serve slow uploads without blocking a whole worker; the worker
        # heartbeat runs apart from requests, so long transfers are not killed.
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 120,
        "graceful_timeout": 60,
        "keepalive": 5,
        "loglevel": "debug" if settings.debug else "info",
        "errorlog": settings.log_file or "-",
        "accesslog": settings.log_file or "-",
        "proc_name": "glancelite-api",
    }
    GunicornServer(args.config_file, options).run()


if __name__ == "__main__":
    main()
