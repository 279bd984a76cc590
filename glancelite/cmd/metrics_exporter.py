"""The Prometheus exporter of glancelite-api: its own listener in the gunicorn master.

``[metrics] enabled`` turns it on (off by default). glancelite-api then makes a fresh
PROMETHEUS_MULTIPROC_DIR before gunicorn starts (``prepare_directory``), so every worker writes
its values there; the master serves ``[metrics] path`` on ``[metrics] bind_host:bind_port``
from a thread (``start``), adding up the workers' files at each scrape, marks each worker that
exits as dead (its live gauges stop counting) and removes the directory when it stops. The
API's own port never serves metrics.

Two values are read by the master itself at scrape time, as they belong to no worker: whether
the stop file exists, and how many bytes the staging and tasks stores hold.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
from wsgiref import simple_server

from glancelite.settings import Settings

LOG = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_directory() -> str:
    """A fresh directory for the workers' metric files, named in the environment they inherit."""
    if "prometheus_client" in sys.modules:
        # It chose in-process values when imported: the workers' values would never reach the files.
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    directory = tempfile.mkdtemp(prefix="glancelite-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory


def remove_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def worker_exited(directory: str, pid: int) -> None:
    """gunicorn's child_exit: a dead worker's live gauges (in-flight transfers, pool use) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)


class StopFileCollector:
    """glancelite_stop_file_present: 1 while the stop file exists (the node is draining)."""

    def __init__(self, path: str | None):
        self.path = path

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "glancelite_stop_file_present",
            "1 while [healthcheck] disable_by_file_path exists: /healthcheck answers 503, no new import starts.",
        )
        family.add_metric([], 1 if self.path and os.path.exists(self.path) else 0)
        yield family


class ReservedStoreUsage:
    """glancelite_reserved_store_used_bytes{store}: bytes in the staging and tasks stores' directories."""

    def __init__(self, directories: dict[str, list[str]]):
        self.directories = directories

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "glancelite_reserved_store_used_bytes",
            "Bytes held in the staging and tasks stores (staged uploads, import work files).",
            labels=["store"],
        )
        for store_id, paths in self.directories.items():
            family.add_metric([store_id], sum(_tree_bytes(p) for p in paths))
        yield family


def _tree_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while we walked
                continue
    return total


def _reserved_directories(settings: Settings) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for store in settings.stores:
        if not store.reserved:
            continue
        datadir = store.options.get("filesystem_store_datadir")
        datadirs = store.options.get("filesystem_store_datadirs") or ()
        paths = ([datadir] if datadir else []) + [str(d).rsplit(":", 1)[0] for d in datadirs]
        found[store.id] = paths
    return found


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every few seconds is not worth a log line
        pass


class Exporter:
    """The listener: ``path`` answers the metrics, anything else 404."""

    def __init__(self, settings: Settings, directory: str):
        from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        registry.register(StopFileCollector(settings.healthcheck_disable_file))
        registry.register(ReservedStoreUsage(_reserved_directories(settings)))
        self.path = settings.metrics.path
        self._metrics_app = make_wsgi_app(registry)
        self._server = simple_server.make_server(
            settings.metrics.bind_host,
            settings.metrics.bind_port,
            self._app,
            server_class=_Server6 if ":" in settings.metrics.bind_host else _Server,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-exporter", daemon=True)

    def _app(self, environ, start_response):
        if environ.get("PATH_INFO") != self.path:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found\n"]
        return self._metrics_app(environ, start_response)

    @property
    def port(self) -> int:
        """The port bound (the configured one, or the one the system chose for 0)."""
        return self._server.server_address[1]

    def start(self) -> Exporter:
        self._thread.start()
        LOG.info(
            "metrics exporter listening on %s port %s, path %s", self._server.server_address[0], self.port, self.path
        )
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
