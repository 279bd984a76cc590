"""web-download from a source that breaks HTTP's promise: cut mid-transfer, or sending more than it announced.

The import must fail, leave the image ``queued`` with the failed store recorded, and keep
nothing: no image data in the stores, no staged file, no work file in the tasks store.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading

import pytest

from tests.faults.conftest import assert_audit_clean
from tests.support.imports import MIB, create_image, get_image, payload, start_import, wait_task
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

SIZE = 4 * MIB
STORES = 4  # fast, slow, staging, tasks


class BrokenSource:
    """A 127.0.0.1 HTTP server whose answers break off or overrun.

    /cut      Content-Length SIZE, one MiB sent, then the connection closed
    /chunked  chunked, one MiB in chunks, then closed without the last chunk
    /over     Content-Length SIZE, SIZE + 64 KiB sent
    """

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                data = payload(SIZE, seed=3)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if self.path == "/chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(SIZE))
                self.send_header("Connection", "close")  # as asked
                self.end_headers()
                try:
                    if self.path == "/cut":
                        self.wfile.write(data[:MIB])
                    elif self.path == "/chunked":
                        for i in range(0, MIB, 64 * 1024):
                            self.wfile.write(b"%x\r\n%s\r\n" % (64 * 1024, data[i : i + 64 * 1024]))
                    else:
                        self.wfile.write(data + raw_bytes(64 * 1024))
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:  # the client gave up first
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def source():
    broken = BrokenSource()
    yield broken
    broken.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, source):
    config = write_config(
        tmp_path_factory.mktemp("web"),
        {"import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": str(source.port)}},
    )
    server = Server(config).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "path, says",
    [
        ("/cut", "got 1048576 bytes, the server announced 4194304"),
        ("/chunked", "was cut after 1048576 bytes"),
        ("/over", "got 4259840 bytes, the server announced 4194304"),
    ],
    ids=["cut-with-length", "cut-chunked", "more-than-announced"],
)
def test_broken_source_fails_the_import_and_keeps_nothing(service, http, source, path, says):
    image_id = create_image(service, http)
    uri = f"http://127.0.0.1:{source.port}{path}"
    resp = start_import(service, http, image_id, {"name": "web-download", "uri": uri})
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure", task
    assert says in task["message"], task["message"]
    image = get_image(service, http, image_id)
    assert image["status"] == "queued"
    assert image["os_glance_failed_import"] == "fast"
    assert "os_glance_import_task" not in image and image.get("os_glance_importing_to_stores", "") == ""
    assert (image["size"], image["checksum"], image["locations"] if "locations" in image else []) == (None, None, [])
    root = service.config.parent
    for store in ("fast", "slow", "staging", "tasks"):
        assert os.listdir(root / store) == [], store
    assert_audit_clean(service.config, stores=STORES)
