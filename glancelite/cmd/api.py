"""glancelite-api: validate the configuration, then serve it under gunicorn."""

from __future__ import annotations

import argparse
import os

from gunicorn.app.base import BaseApplication

from glancelite import wsgi
from glancelite.api import admission
from glancelite.cmd import common, metrics_exporter
from glancelite.cmd.gunicorn_log import ACCESS_LOG_FORMAT, OsloLogger
from glancelite.tasks import runner as task_runner


class GunicornServer(BaseApplication):
    """Each worker builds its own application (engines and executors are not shared across fork)."""

    def __init__(self, files: list[str], options: dict):
        self.files = files
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn >= 25 opens a control socket at one per-user path (~/.gunicorn/gunicorn.ctl),
            # which two glancelite-api on one host would share; glancelite does not use it.
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from glancelite import config

        return wsgi.build_application(config.load(self.files))


def _drain_imports(_server, _worker) -> None:
    task_runner.drain_process_runner()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="glancelite-api", description=__doc__)
    common.add_config_arg(parser)
    args = parser.parse_args(argv)
    loaded = common.load_or_exit(args.config_file)
    # Prometheus' multiprocess mode: a fresh directory for this start, named in the environment
    # before anything imports prometheus_client (the checks below already build a StoreSet).
    directory = metrics_exporter.prepare_directory() if loaded.settings.metrics.enabled else None
    master = os.getpid()
    try:
        _serve(args.config_file, loaded, directory)
    finally:
        # A worker's exit unwinds through here too (gunicorn forks inside run()): only the master removes it.
        if directory is not None and os.getpid() == master:
            metrics_exporter.remove_directory(directory)


def _serve(files: list[str], loaded, metrics_directory: str | None) -> None:
    settings = loaded.settings
    # In a child: what the checks import and build would otherwise stay in every worker.
    common.in_child_process(lambda: _check_before_serving(loaded))
    # Workers re-read the same files; the environment carries them to wsgi.application_from_env too.
    os.environ[wsgi.CONFIG_ENV] = ":".join(os.path.abspath(f) for f in files)
    threads = admission.server_threads(settings.max_transfers_per_worker)
    options = {
        "bind": f"{settings.bind_host}:{settings.bind_port}",
        "workers": settings.workers,
        # One thread per transfer in flight plus a reserve for metadata requests
        # (api/admission.py keeps transfers to their share): a slow client only ever
        # holds its own thread. The worker heartbeat runs apart from requests, so long
        # transfers are not killed. README "Concurrency" has the measurements.
        "worker_class": "gthread",
        "threads": threads,
        # Connections a worker holds, kept-alive ones included; gunicorn's default
        # unless the threads alone come near it.
        "worker_connections": max(1000, 2 * threads),
        "timeout": 120,
        "graceful_timeout": 60,
        "keepalive": 5,
        # Both logs go through oslo.log's handlers (OsloLogger); "-" only switches the access log on.
        "logger_class": OsloLogger,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "proc_name": "glancelite-api",
        # COMPAT: whether a proxy's X-Forwarded-Proto/Host or Forwarded header counts is
        # [oslo_middleware] enable_proxy_headers_parsing's decision alone (HTTPProxyToWSGI, as in
        # Glance). gunicorn trusts no peer for its own forwarded handling: by default it takes
        # X-Forwarded-Proto (and SCRIPT_NAME-style headers) from 127.0.0.1, a local proxy.
        "forwarded_allow_ips": "",
        # A worker stopping gracefully lets its running imports finish before it exits.
        "worker_exit": _drain_imports,
    }
    if metrics_directory is not None:
        options.update(_exporter_hooks(settings, metrics_directory))
    GunicornServer(files, options).run()


def _check_before_serving(loaded) -> None:
    common.check_collaborators_or_exit(loaded)
    common.wait_for_database_or_exit(loaded)
    common.check_schema_or_exit(loaded)


def _exporter_hooks(settings, directory: str) -> dict:
    """gunicorn hooks: the exporter starts in the master once it is ready and stops with it; a
    worker that exits is marked dead, so its live gauges stop counting."""
    exporters: list[metrics_exporter.Exporter] = []

    def start_exporter(_arbiter) -> None:
        exporters.append(metrics_exporter.Exporter(settings, directory).start())

    def stop_exporter(_arbiter) -> None:
        for exporter in exporters:
            exporter.stop()

    return {
        "when_ready": start_exporter,
        "child_exit": lambda _arbiter, worker: metrics_exporter.worker_exited(directory, worker.pid),
        "on_exit": stop_exporter,
    }


if __name__ == "__main__":
    main()
