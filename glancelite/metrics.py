"""The metrics glancelite records (Prometheus, through prometheus_client), in one place.

The composition root builds one ``Metrics`` per process and hands it to the few places that
already know what happened: the request middleware (route template, status, latency), the
StoreSet (bytes and transfers per store, live capabilities), the import runner (outcomes and
durations), the database engine (pool use, errors). Labels are bounded: route templates,
configured store ids, import methods, fixed outcome words; never an image or task id.

Under glancelite-api with ``[metrics] enabled`` every gunicorn process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode); glancelite-api
makes a fresh directory per start before any worker exists, and the exporter in the gunicorn
master adds the files up at scrape time (``cmd/metrics_exporter.py``). prometheus_client picks
where values live when it is first imported, so it is imported here lazily, after
glancelite-api has set that variable.
"""

from __future__ import annotations

from collections.abc import Mapping

# The HTTP methods a route can have; anything else is counted as "other" (bounded labels).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route label of a request no route matched (404 before any resource).
UNMATCHED_ROUTE = "unmatched"

# Import outcomes: succeeded; reverted (failed, and every step it had done was undone);
# failed (failed, and could not be undone completely, or failed before its flow ran).
IMPORT_OUTCOMES = ("succeeded", "reverted", "failed")

# Imports take from a second (a small glance-direct) to an hour (a large copy to several stores).
IMPORT_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """Every metric of a glancelite process; none is registered in prometheus_client's global
    registry (``registry=None``): the exporter reads the multiprocess files, tests read
    ``sample()``."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.http_requests = Counter(
            "glancelite_http_requests",
            "API requests answered, by HTTP method, route template and status code.",
            ["method", "route", "status"],
            registry=None,
        )
        self.http_request_duration = Histogram(
            "glancelite_http_request_duration_seconds",
            "Time from a request's arrival to its response headers (a download's body streams after), "
            "by HTTP method and route template.",
            ["method", "route"],
            registry=None,
        )
        self.store_written = Counter(
            "glancelite_store_written_bytes",
            "Bytes written into each store (uploads, staging, imports), counted as they go in.",
            ["store"],
            registry=None,
        )
        self.store_read = Counter(
            "glancelite_store_read_bytes",
            "Bytes read from each store (downloads, imports, copies), counted when a read ends.",
            ["store"],
            registry=None,
        )
        self.store_transfers = Gauge(
            "glancelite_store_transfers_in_flight",
            "Reads and writes of image data under way, by store and direction (read or write).",
            ["store", "direction"],
            multiprocess_mode="livesum",
            registry=None,
        )
        self.store_capability = Gauge(
            "glancelite_store_capability",
            "1 when the store has the capability now (its live state, as last probed), else 0.",
            ["store", "capability"],
            multiprocess_mode="livemostrecent",
            registry=None,
        )
        self.imports_started = Counter(
            "glancelite_image_imports_started",
            "Image imports started, by method and target store (an import to n stores counts n times).",
            ["method", "store"],
            registry=None,
        )
        self.imports_finished = Counter(
            "glancelite_image_imports_finished",
            "Image imports ended, by method, target store and outcome (succeeded, reverted, failed).",
            ["method", "store", "outcome"],
            registry=None,
        )
        self.import_duration = Histogram(
            "glancelite_image_import_duration_seconds",
            "How long image imports ran, by method and outcome.",
            ["method", "outcome"],
            buckets=IMPORT_DURATION_BUCKETS,
            registry=None,
        )
        self.db_connections_in_use = Gauge(
            "glancelite_db_pool_connections_in_use",
            "Database connections checked out of the pools of the live processes.",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.db_errors = Counter(
            "glancelite_db_errors",
            "Database errors seen by the engine, by kind (disconnect or error).",
            ["kind"],
            registry=None,
        )

    # -- recording -------------------------------------------------------------------

    def request_done(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        route = route or UNMATCHED_ROUTE
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_request_duration.labels(method, route).observe(seconds)

    def capabilities(self, store_id: str, present: Mapping[str, bool]) -> None:
        """A store's live capabilities after a probe: {capability name: present}."""
        for name, has in present.items():
            self.store_capability.labels(store_id, name.lower()).set(1 if has else 0)

    def import_started(self, method: str, stores: tuple[str, ...]) -> None:
        for store_id in stores:
            self.imports_started.labels(method, store_id).inc()

    def import_finished(self, method: str, stores: tuple[str, ...], outcome: str, seconds: float) -> None:
        if outcome not in IMPORT_OUTCOMES:
            raise ValueError(f"unknown import outcome {outcome!r}")
        for store_id in stores:
            self.imports_finished.labels(method, store_id, outcome).inc()
        self.import_duration.labels(method, outcome).observe(seconds)

    # -- reading (tests, and whoever wants a value without an exporter) -------------

    def sample(self, name: str, **labels: str) -> float | None:
        """The current value of one sample of this process, e.g.
        ``sample("glancelite_store_written_bytes_total", store="fast")``; None when absent."""
        for metric in vars(self).values():
            for family in metric.collect():
                for s in family.samples:
                    if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                        return s.value
        return None
