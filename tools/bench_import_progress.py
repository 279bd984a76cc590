"""What import progress costs: a large glance-direct import timed with and without it, interleaved.

    .venv/bin/python tools/bench_import_progress.py [--size-mib 1024] [--rounds 3]
        [--baseline-venv /path/to/other/checkout/.venv]

Each configuration is a real glancelite-api (1 worker) on SQLite with one file store, started once;
every round stages ``--size-mib`` of random bytes and times POST /import until the task succeeds
(polled every 20 ms), the configurations taking turns so a busy machine slows them alike:

* ``progress every 1 %``: [image_import_opts] import_progress_interval = 0 (the most writes);
* ``progress default``: the default interval (1 s, and 1 % of the data);
* ``baseline``: with ``--baseline-venv``, another checkout's service (e.g. the commit before progress
  existed, whose import wrote "Copied N MiB" every 5 s as its heartbeat), as "without".

Prints one line per round and the median per configuration, and the task writes each configuration
made (the task's message changes, seen by the poll, are a lower bound). Servers bind 127.0.0.1 and are
stopped by PID.
"""

from __future__ import annotations

import argparse
import configparser
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

MIB = 1 << 20
HERE_VENV = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, label: str, bin_dir: Path, root: Path, import_opts: dict[str, str]):
        self.label, self.bin_dir, self.root = label, bin_dir, root
        root.mkdir(parents=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cp = configparser.RawConfigParser()
        cp.optionxform = str
        cp["DEFAULT"] = {
            "bind_host": "127.0.0.1",
            "bind_port": str(port),
            "workers": "1",
            "log_file": str(root / "api.log"),
            "enabled_backends": "fast:file",
            "image_size_cap": str(1 << 40),
        }
        cp["database"] = {"connection": f"sqlite:///{root / 'glance.sqlite'}"}
        cp["glance_store"] = {"default_backend": "fast"}
        cp["fast"] = {"filesystem_store_datadir": str(root / "fast")}
        cp["os_glance_staging_store"] = {"filesystem_store_datadir": str(root / "staging")}
        cp["os_glance_tasks_store"] = {"filesystem_store_datadir": str(root / "tasks")}
        if import_opts:
            cp["image_import_opts"] = import_opts
        self.config = root / "glance-api.conf"
        with open(self.config, "w") as fh:
            cp.write(fh)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        subprocess.run(
            [str(self.bin_dir / "glancelite-manage"), "--config-file", str(self.config), "db", "sync"],
            check=True,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [str(self.bin_dir / "glancelite-api"), "--config-file", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "api.stderr", "ab"),
            start_new_session=True,
        )
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if requests.get(self.url + "/versions", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label}: the service did not start; see {self.root}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def import_once(self, data_file: Path, size: int) -> tuple[float, int]:
        """Seconds from POST /import to a successful task, and the distinct messages the poll saw."""
        http = requests.Session()
        image_id = http.post(
            f"{self.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=30
        ).json()["id"]
        with open(data_file, "rb") as fh:
            staged = http.put(
                f"{self.url}/v2/images/{image_id}/stage",
                data=fh,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                timeout=600,
            )
        staged.raise_for_status()
        started = time.monotonic()
        resp = http.post(
            f"{self.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, timeout=60
        )
        resp.raise_for_status()
        messages = set()
        while True:
            tasks = http.get(f"{self.url}/v2/images/{image_id}/tasks", timeout=30).json()["tasks"]
            if tasks:
                messages.add(tasks[-1]["message"])
                if tasks[-1]["status"] == "success":
                    break
                if tasks[-1]["status"] == "failure":
                    raise RuntimeError(f"{self.label}: import failed: {tasks[-1]['message']}")
            time.sleep(0.02)
        seconds = time.monotonic() - started
        http.delete(f"{self.url}/v2/images/{image_id}", timeout=60)
        return seconds, len(messages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-venv", type=Path, help="another checkout's .venv, run as 'baseline'")
    args = parser.parse_args()
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="glancelite-bench-progress-"))
    services = [
        Service("progress every 1 %", HERE_VENV, work / "every", {"import_progress_interval": "0"}),
        Service("progress default", HERE_VENV, work / "default", {}),
    ]
    if args.baseline_venv:
        services.append(Service("baseline", args.baseline_venv / "bin", work / "baseline", {}))
    data_file = work / "data.raw"
    with open(data_file, "wb") as fh:
        for _ in range(args.size_mib):
            fh.write(os.urandom(MIB))
    times: dict[str, list[float]] = {s.label: [] for s in services}
    try:
        for service in services:
            service.start()
        for round_no in range(1, args.rounds + 1):
            for service in services if round_no % 2 else reversed(services):
                seconds, messages = service.import_once(data_file, size)
                times[service.label].append(seconds)
                print(
                    f"round {round_no} {service.label:<20} {seconds:7.2f} s  "
                    f"{args.size_mib / seconds:7.1f} MiB/s  {messages} distinct task messages seen",
                    flush=True,
                )
    finally:
        for service in services:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedian of {args.rounds} imports of {args.size_mib} MiB (glance-direct, one file store):")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"  {label:<20} {median:7.2f} s  {args.size_mib / median:7.1f} MiB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
