"""Draw etc/grafana/glancelite-dashboard.json's panels from real Prometheus data into one PNG.

    .venv/bin/python tools/render_dashboard.py [--seconds 240] [--out doc/dashboard.png]

Needs Debian's ``prometheus`` (apt-get install prometheus) and matplotlib (the ``dashboard`` extra:
``pip install -e .[dashboard]``). Grafana is not packaged here, so this is not Grafana's own
screenshot: it is each panel of the dashboard JSON, laid out on the dashboard's grid, its PromQL
(``$__rate_interval`` and ``$job`` substituted as Grafana would) evaluated by a real Prometheus
through its HTTP API (``/api/v1/query_range``) over data it scraped from a real glancelite-api.

What runs, all on 127.0.0.1 and stopped by PID at the end:

* glancelite-api, 2 workers, SQLite, file stores fast, slow and spare (spare broken on purpose
  part of the time, so imports into it fail and are reverted), [metrics] enabled;
* a local web server as the web-download source;
* prometheus scraping the metrics listener every 2 s into a temporary directory;
* a workload for ``--seconds``: uploads (1-24 MiB) into fast and slow, downloads, glance-direct and
  web-download imports (some into two stores), imports into the broken store, lookups of images
  that do not exist, and the stop file present for a while (the node draining).
"""

from __future__ import annotations

import argparse
import configparser
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DASHBOARD = ROOT / "etc" / "grafana" / "glancelite-dashboard.json"
MIB = 1 << 20
SCRAPE_SECONDS = 2
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval for a 2 s scrape: max(4 x scrape, step + scrape)
JOB = "glancelite"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, what: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer at {url}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


class Source:
    """``/<size>``: random bytes with Content-Length, sent at about 20 MiB/s."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                size = int(self.path.strip("/"))
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                sent = 0
                try:
                    while sent < size:
                        n = min(MIB, size - sent)
                        self.wfile.write(os.urandom(n))
                        sent += n
                        time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_service_config(root: Path, api_port: int, metrics_port: int, source_port: int) -> Path:
    cp = configparser.RawConfigParser()
    cp.optionxform = str
    cp["DEFAULT"] = {
        "bind_host": "127.0.0.1",
        "bind_port": str(api_port),
        "workers": "2",
        "log_file": str(root / "api.log"),
        "enabled_backends": "fast:file, slow:file, spare:file",
    }
    cp["database"] = {"connection": f"sqlite:///{root / 'glance.sqlite'}"}
    cp["healthcheck"] = {"disable_by_file_path": str(root / "stop")}
    cp["glance_store"] = {"default_backend": "fast", "store_capability_refresh_interval": "0"}
    for store in ("fast", "slow", "spare"):
        cp[store] = {"filesystem_store_datadir": str(root / store)}
    cp["os_glance_staging_store"] = {"filesystem_store_datadir": str(root / "staging")}
    cp["os_glance_tasks_store"] = {"filesystem_store_datadir": str(root / "tasks")}
    cp["import_filtering_opts"] = {"allowed_hosts": "127.0.0.1", "allowed_ports": str(source_port)}
    cp["metrics"] = {"enabled": "true", "bind_host": "127.0.0.1", "bind_port": str(metrics_port)}
    path = root / "glance-api.conf"
    with open(path, "w") as fh:
        cp.write(fh)
    return path


class Workload:
    def __init__(self, api: str, root: Path, source: Source, seconds: float):
        self.api, self.root, self.source, self.seconds = api, root, source, seconds
        self.rng = random.Random(15)
        self.images: list[str] = []
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def create(self, http) -> str:
        return http.post(
            f"{self.api}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=30
        ).json()["id"]

    def upload(self, http) -> None:
        image_id = self.create(http)
        size = self.rng.randint(1, 24) * MIB
        store = self.rng.choice(["fast", "fast", "slow"])
        resp = http.put(
            f"{self.api}/v2/images/{image_id}/file",
            data=os.urandom(size),
            headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
            timeout=120,
        )
        self.count(f"upload {resp.status_code}")
        if resp.status_code == 204:
            with self.lock:
                self.images.append(image_id)

    def download(self, http) -> None:
        with self.lock:
            image_id = self.rng.choice(self.images) if self.images else None
        if image_id is None:
            return
        resp = http.get(f"{self.api}/v2/images/{image_id}/file", timeout=120)
        self.count(f"download {resp.status_code}")

    def import_(self, http, method: str, stores: list[str]) -> None:
        image_id = self.create(http)
        if method == "glance-direct":
            data = os.urandom(self.rng.randint(2, 32) * MIB)
            http.put(
                f"{self.api}/v2/images/{image_id}/stage",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=120,
            )
            body = {"method": {"name": "glance-direct"}, "stores": stores}
        else:
            size = self.rng.randint(8, 40) * MIB
            body = {
                "method": {"name": "web-download", "uri": f"http://127.0.0.1:{self.source.port}/{size}"},
                "stores": stores,
            }
        resp = http.post(f"{self.api}/v2/images/{image_id}/import", json=body, timeout=60)
        self.count(f"import {method} {resp.status_code}")
        if resp.status_code != 202:  # refused (the node draining): no task to wait for
            return
        end = time.monotonic() + 300
        while time.monotonic() < end:
            tasks = http.get(f"{self.api}/v2/images/{image_id}/tasks", timeout=30).json().get("tasks", [])
            if tasks and tasks[-1]["status"] in ("success", "failure"):
                self.count(f"import {method} {tasks[-1]['status']}")
                return
            time.sleep(0.5)

    def misses(self, http) -> None:
        for _ in range(5):
            http.get(f"{self.api}/v2/images/00000000-0000-0000-0000-000000000000", timeout=10)
        http.get(f"{self.api}/v2/images?limit=20", timeout=10)

    def one(self, started: float) -> None:
        http = requests.Session()
        elapsed = time.monotonic() - started
        spare_broken = 0.35 < elapsed / self.seconds < 0.55
        roll = self.rng.random()
        if roll < 0.30:
            self.upload(http)
        elif roll < 0.55:
            self.download(http)
        elif roll < 0.68:
            self.import_(http, "glance-direct", ["fast"] if self.rng.random() < 0.6 else ["fast", "slow"])
        elif roll < 0.80:
            self.import_(http, "web-download", ["slow"])
        elif roll < 0.88 and spare_broken:
            self.import_(http, "glance-direct", ["spare"])  # fails: the store cannot write
        else:
            self.misses(http)

    def run(self) -> None:
        spare = self.root / "spare"
        stop_file = self.root / "stop"
        started = time.monotonic()
        broken = drained = False
        with futures.ThreadPoolExecutor(max_workers=3) as pool:
            running: set[futures.Future] = set()
            while time.monotonic() - started < self.seconds:
                share = (time.monotonic() - started) / self.seconds
                if 0.35 < share < 0.55 and not broken:  # the spare store breaks: a file where its directory was
                    shutil.rmtree(spare, ignore_errors=True)
                    spare.write_text("not a directory")
                    broken = True
                if share >= 0.55 and broken and spare.is_file():
                    spare.unlink()
                    spare.mkdir()
                if 0.75 < share < 0.85 and not drained:
                    stop_file.touch()  # the node drains: new imports answer 503
                    drained = True
                if share >= 0.85 and stop_file.exists():
                    stop_file.unlink()
                while len(running) < 3:
                    running.add(pool.submit(self.one, started))
                done, running = futures.wait(running, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                for f in done:
                    if f.exception() is not None:
                        self.count(f"error {type(f.exception()).__name__}")
            futures.wait(running)
        if spare.is_file():
            spare.unlink()
            spare.mkdir()
        if stop_file.exists():
            stop_file.unlink()


def promql(expr: str) -> str:
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace('job=~"$job"', f'job=~"{JOB}"')


def legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("job", "instance")) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


def query_range(prom: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    resp = requests.get(
        f"{prom}/api/v1/query_range",
        params={"query": promql(expr), "start": start, "end": end, "step": step},
        timeout=60,
    )
    body = resp.json()
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {expr!r}: {body}")
    return body["data"]["result"]


def query(prom: str, expr: str, at: float) -> list[dict]:
    body = requests.get(f"{prom}/api/v1/query", params={"query": promql(expr), "time": at}, timeout=60).json()
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {expr!r}: {body}")
    return body["data"]["result"]


UNIT_SCALE = {"Bps": (MIB, "MiB/s"), "bytes": (MIB, "MiB"), "percentunit": (0.01, "%")}


def render(prom: str, start: float, end: float, out: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_height = 0.42  # inches per grid row
    height = rows * unit_height + 1.2 + 0.8  # title above, tick labels of the last row below
    fig = plt.figure(figsize=(20, height))
    fig.suptitle(
        f"{dashboard['title']}: the panels of {DASHBOARD.relative_to(ROOT)} drawn from real Prometheus data\n{note}",
        fontsize=13,
    )
    top = 1 - 1.2 / height
    floor = 0.8 / height  # the grid spans [floor, top]
    step = max(2.0, (end - start) / 240)

    def box(pos):
        x, y, w, h = pos["x"], pos["y"], pos["w"], pos["h"]
        left, width = x / 24 + 0.035, w / 24 - 0.05
        span = top - floor
        bottom = top - (y + h) / rows * span + 0.03 / rows * 24
        return [left, bottom, width, h / rows * span - 0.07 / rows * 24]

    for panel in panels:
        pos = panel["gridPos"]
        if panel["type"] == "row":
            fig.text(0.01, top - (pos["y"] + 0.8) / rows * (top - floor), panel["title"], fontsize=14, weight="bold")
            continue
        rect = box(pos)
        if panel["type"] == "table":  # room for the store names on the left
            rect = [rect[0] + 0.06, rect[1], rect[2] - 0.06, rect[3]]
        ax = fig.add_axes(rect)
        ax.set_title(panel["title"], fontsize=10, loc="left")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        scale, unit_label = UNIT_SCALE.get(unit, (1, unit if unit not in (None, "short") else ""))
        if panel["type"] == "timeseries":
            drawn = 0
            for target in panel.get("targets", []):
                for series in query_range(prom, target["expr"], start, end, step):
                    points = [
                        (float(t) - start, float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")
                    ]
                    if not points:
                        continue
                    xs, ys = zip(*points, strict=True)
                    ax.plot(
                        xs,
                        [y / scale for y in ys],
                        linewidth=1.2,
                        label=legend(target.get("legendFormat", ""), series["metric"]),
                    )
                    drawn += 1
            ax.set_xlim(0, end - start)
            ax.set_xlabel("seconds into the run", fontsize=8)
            if unit_label:
                ax.set_ylabel(unit_label, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if drawn:
                ax.legend(fontsize=6, loc="upper left", ncol=2 if drawn > 6 else 1, framealpha=0.6)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
        elif panel["type"] == "table":
            # The table's rows (store, capability, value) as a grid: a row per store, a column per capability.
            cells = {}
            for target in panel.get("targets", []):
                for series in query(prom, target["expr"], end):
                    m = series["metric"]
                    cells[(m.get("store", ""), m.get("capability", ""))] = float(series["value"][1])
            stores = sorted({k[0] for k in cells})
            caps = sorted({k[1] for k in cells})
            grid = [[cells.get((st, cap), float("nan")) for cap in caps] for st in stores]
            if grid:
                ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
                ax.set_xticks(range(len(caps)), caps, rotation=30, ha="right", fontsize=7)
                ax.set_yticks(range(len(stores)), stores, fontsize=7)
                for i, row in enumerate(grid):
                    for j, v in enumerate(row):
                        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7)
            else:
                ax.axis("off")
        elif panel["type"] == "stat":
            ax.axis("off")
            values = [series for t in panel.get("targets", []) for series in query(prom, t["expr"], end)]
            text = "\n".join(
                f"{legend(t.get('legendFormat', ''), s['metric'])}: {s['value'][1]}"
                for t in panel["targets"]
                for s in values
            )
            # The value over the run too: the drain shows as a step.
            history = [s for t in panel["targets"] for s in query_range(prom, t["expr"], start, end, step)]
            inner = ax.inset_axes([0.05, 0.05, 0.9, 0.5])
            for series in history:
                xs = [float(t) - start for t, _v in series["values"]]
                inner.step(xs, [float(v) for _t, v in series["values"]], where="post")
            inner.set_ylim(-0.1, 1.1)
            inner.tick_params(labelsize=6)
            inner.set_xlabel("seconds into the run", fontsize=7)
            ax.text(
                0.5, 0.8, f"now: {text or 'no data'}", ha="center", va="center", fontsize=10, transform=ax.transAxes
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--out", type=Path, default=ROOT / "doc" / "dashboard.png")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    args = parser.parse_args()
    # A SIGTERM (timeout, kill) still stops the servers below by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="glancelite-dashboard-"))
    api_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    source = Source()
    config = write_service_config(work, api_port, metrics_port, source.port)
    (work / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\n  evaluation_interval: {SCRAPE_SECONDS}s\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    api = prom = None
    try:
        subprocess.run(
            [str(BIN / "glancelite-manage"), "--config-file", str(config), "db", "sync"],
            check=True,
            capture_output=True,
        )
        api = subprocess.Popen(
            [str(BIN / "glancelite-api"), "--config-file", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "api.stderr", "ab"),
            start_new_session=True,
        )
        api_url = f"http://127.0.0.1:{api_port}"
        wait_http(api_url + "/versions", "glancelite-api", api)
        prom = subprocess.Popen(
            [
                args.prometheus,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "prometheus.log", "ab"),
            start_new_session=True,
        )
        prom_url = f"http://127.0.0.1:{prom_port}"
        wait_http(prom_url + "/-/ready", "prometheus", prom)
        time.sleep(3 * SCRAPE_SECONDS)
        start = time.time()
        workload = Workload(api_url, work, source, args.seconds)
        workload.run()
        time.sleep(4 * SCRAPE_SECONDS)  # the last scrapes
        end = time.time()
        print("workload:", json.dumps(dict(sorted(workload.counts.items()))))
        note = (
            f"{args.seconds:.0f} s workload (tools/render_dashboard.py): uploads, downloads, glance-direct and "
            "web-download imports, a broken store (failed imports), 404s, the stop file (draining)"
        )
        render(prom_url, start, end, args.out, note)
        print(f"wrote {args.out}")
    finally:
        stop(prom)
        stop(api)
        source.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
