"""Helpers shared by every tier that imports: a local web server (web-download sources) and polling for tasks and images."""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import threading
import time
import urllib.parse

OCTET = {"Content-Type": "application/octet-stream"}
MIB = 1 << 20


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


class WebSource:
    """A 127.0.0.1 HTTP server for web-download.

    /data/<size>[?seed=n]        the bytes of payload(size, seed), with Content-Length
    /stream/<size>               the same without Content-Length (read until close)
    /gated/<size>?gate=<name>    the first MiB, then waits until ``open_gate(name)``, then the rest
    /redirect?to=<url>           302 to ``to``
    """

    def __init__(self):
        self.gates: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        source = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                kind, _, arg = parts.path.strip("/").partition("/")
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", query["to"])
                    self.end_headers()
                    return
                if kind not in ("data", "stream", "gated"):
                    self.send_error(404)
                    return
                data = payload(int(arg), int(query.get("seed", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if kind != "stream":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if kind == "gated":
                        name = query["gate"]
                        self.wfile.write(data[:MIB])
                        self.wfile.flush()
                        source.started.setdefault(name, threading.Event()).set()
                        source.gates.setdefault(name, threading.Event()).wait(120)
                        self.wfile.write(data[MIB:])
                    else:
                        for i in range(0, len(data), 256 * 1024):
                            self.wfile.write(data[i : i + 256 * 1024])
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_HEAD(self):  # what an http store asks first (get_size)
                parts = urllib.parse.urlsplit(self.path)
                kind, _, arg = parts.path.strip("/").partition("/")
                if kind not in ("data", "stream", "gated"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if kind != "stream":
                    self.send_header("Content-Length", arg)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def filtering_opts(self) -> dict[str, str]:
        """The [import_filtering_opts] that admit this server (and nothing else local)."""
        return {"allowed_hosts": "127.0.0.1", "allowed_ports": str(self.port)}

    def wait_started(self, gate: str, timeout: float = 30) -> bool:
        return self.started.setdefault(gate, threading.Event()).wait(timeout)

    def open_gate(self, gate: str) -> None:
        self.gates.setdefault(gate, threading.Event()).set()

    def close(self) -> None:
        for event in self.gates.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()


def create_image(service, http, headers=None, **fields) -> str:
    body = {"disk_format": "raw", "container_format": "bare", **fields}
    resp = http.post(f"{service.url}/v2/images", json=body, headers=headers or {})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def get_image(service, http, image_id, headers=None) -> dict:
    resp = http.get(f"{service.url}/v2/images/{image_id}", headers=headers or {})
    assert resp.status_code == 200, resp.text
    return resp.json()


def stage(service, http, image_id, data, headers=None):
    return http.put(f"{service.url}/v2/images/{image_id}/stage", data=data, headers={**OCTET, **(headers or {})})


def start_import(service, http, image_id, method, headers=None, **body):
    return http.post(
        f"{service.url}/v2/images/{image_id}/import", json={"method": method, **body}, headers=headers or {}
    )


def image_tasks(service, http, image_id, headers=None) -> list[dict]:
    resp = http.get(f"{service.url}/v2/images/{image_id}/tasks", headers=headers or {})
    assert resp.status_code == 200, resp.text
    return resp.json()["tasks"]


def wait_task(service, http, image_id, timeout: float = 60, count: int = 1) -> dict:
    """The image's newest task once ``count`` tasks exist and the newest has finished."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tasks = image_tasks(service, http, image_id)
        if len(tasks) >= count and tasks[-1]["status"] in ("success", "failure"):
            # The flow settles the image just before the task; let the lock release land too.
            for _ in range(50):
                if "os_glance_import_task" not in get_image(service, http, image_id):
                    break
                time.sleep(0.1)
            return tasks[-1]
        time.sleep(0.2)
    raise AssertionError(f"import of {image_id} did not finish in {timeout}s: {image_tasks(service, http, image_id)}")


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def store_files(root, store: str, image_id: str | None = None) -> list[str]:
    """Files (hidden partial ones included) in a file store's directory under the service root."""
    path = root / store
    if not path.is_dir():
        return []
    names = sorted(os.listdir(path))
    return [n for n in names if image_id is None or image_id in n]


def location_stores(image: dict) -> list[str]:
    return sorted(image.get("stores", "").split(",")) if image.get("stores") else []
