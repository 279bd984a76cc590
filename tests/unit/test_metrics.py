"""The metrics module on its own: bounded labels, outcomes, and the dashboard naming only real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from glancelite.cmd.metrics_exporter import ReservedStoreUsage, StopFileCollector
from glancelite.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "etc" / "grafana" / "glancelite-dashboard.json"


def exposed_names() -> set[str]:
    """Every sample name a scrape can show: the workers' metrics and the master's own two."""
    metrics = Metrics()
    metrics.request_done("GET", "/v2/images", 200, 0.01)
    metrics.import_finished("glance-direct", ("fast",), "succeeded", 1.0)
    metrics.import_started("glance-direct", ("fast",))
    metrics.store_written.labels("fast").inc()
    metrics.store_read.labels("fast").inc()
    metrics.store_transfers.labels("fast", "read").set(0)
    metrics.capabilities("fast", {"WRITE_ACCESS": True})
    metrics.db_errors.labels("error").inc()
    names = set()
    collectors = [*vars(metrics).values(), StopFileCollector(None), ReservedStoreUsage({"os_glance_staging_store": []})]
    for collector in collectors:
        for family in collector.collect():
            names.update(s.name for s in family.samples)
    return names


def test_requests_use_bounded_labels():
    metrics = Metrics()
    metrics.request_done("BREW", None, 404, 0.002)
    metrics.request_done("GET", "/v2/images/{image_id}", 200, 0.01)
    assert metrics.sample("glancelite_http_requests_total", method="other", route="unmatched", status="404") == 1
    assert metrics.sample("glancelite_http_requests_total", method="GET", route="/v2/images/{image_id}") == 1
    assert metrics.sample("glancelite_http_request_duration_seconds_count", route="unmatched") == 1


def test_import_outcomes_are_a_fixed_set():
    metrics = Metrics()
    metrics.import_finished("copy-image", ("fast", "slow"), "reverted", 3.0)
    assert metrics.sample("glancelite_image_imports_finished_total", store="slow", outcome="reverted") == 1
    assert metrics.sample("glancelite_image_import_duration_seconds_count", method="copy-image") == 1
    with pytest.raises(ValueError):
        metrics.import_finished("copy-image", ("fast",), "partly", 1.0)


def test_dashboard_names_only_metrics_that_exist():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"glancelite_[a-z_]+", expr)}
    assert used, "the dashboard queries nothing"
    assert used - exposed_names() == set()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_exporter_serves_its_path_only(tmp_path, host):
    """The master's own values come without any worker file; IPv6 addresses bind too."""
    import socket

    import requests

    from glancelite.cmd.metrics_exporter import Exporter
    from glancelite.settings import MetricsSettings, Settings, StoreSettings

    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "image").write_bytes(b"x" * 1000)
    stop_file = tmp_path / "stop"
    stop_file.touch()
    settings = Settings(
        stores=(
            StoreSettings(
                "os_glance_staging_store", "file", None, 0, {"filesystem_store_datadir": str(staging)}, reserved=True
            ),
        ),
        healthcheck_disable_file=str(stop_file),
        metrics=MetricsSettings(enabled=True, bind_host=host, bind_port=0, path="/custom"),
    )
    (tmp_path / "mp").mkdir()
    exporter = Exporter(settings, str(tmp_path / "mp")).start()
    try:
        port = exporter.port
        base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        text = requests.get(base + "/custom", timeout=5).text
        assert "glancelite_stop_file_present 1.0" in text
        assert 'glancelite_reserved_store_used_bytes{store="os_glance_staging_store"} 1000.0' in text
        assert requests.get(base + "/metrics", timeout=5).status_code == 404
    finally:
        exporter.stop()
