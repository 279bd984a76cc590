"""[DEFAULT] client_socket_timeout: a client that stops sending image data fails its upload or stage.

Without it a stalled client would hold a worker thread and leave its image
saving (or uploading) for ever.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.parse

import pytest

from tests.conftest import ADMIN
from tests.functional._images import new_image
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config
from tests.support.transfers import SlowDownload

TIMEOUT = 2


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    server = Server(
        write_config(tmp_path_factory.mktemp("socket-timeout"), {"DEFAULT": {"client_socket_timeout": str(TIMEOUT)}})
    ).start()
    yield server
    server.stop()


def _stalled_put(service, path: str, sent: bytes, declared: int) -> bytes:
    """PUT ``sent`` of a ``declared``-byte body, then go silent; returns the server's reply."""
    url = urllib.parse.urlsplit(service.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        headers = "".join(f"{k}: {v}\r\n" for k, v in ADMIN.items())
        sock.sendall(
            (
                f"PUT {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {declared}\r\n{headers}Connection: close\r\n\r\n"
            ).encode()
            + sent
        )
        started = time.monotonic()
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        # The reply came because the server gave up on us, not because the test's own timeout hit.
        assert time.monotonic() - started < 20
        return reply


def _status(service, http, image_id: str) -> str:
    return http.get(f"{service.url}/v2/images/{image_id}", headers=ADMIN).json()["status"]


def test_stalled_upload_fails_and_the_image_is_queued_again(impatient, http):
    image_id = new_image(impatient, http, headers=ADMIN)
    reply = _stalled_put(impatient, f"/v2/images/{image_id}/file", raw_bytes(100_000), 10_000_000)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    assert _status(impatient, http, image_id) == "queued"
    root = impatient.config.parent
    assert [n for store in ("fast", "slow") if (root / store).exists() for n in os.listdir(root / store)] == []


def test_stalled_stage_fails_and_leaves_nothing_staged(impatient, http):
    image_id = new_image(impatient, http, headers=ADMIN)
    reply = _stalled_put(impatient, f"/v2/images/{image_id}/stage", raw_bytes(100_000), 10_000_000)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    assert _status(impatient, http, image_id) == "queued"
    assert os.listdir(impatient.config.parent / "staging") == []


def test_a_slow_but_steady_client_is_not_cut_off(impatient, http):
    """The limit is on silence, not on the whole upload."""
    image_id = new_image(impatient, http, headers=ADMIN)
    chunks = [raw_bytes(1000) for _ in range(4)]

    def trickle():
        for chunk in chunks:
            yield chunk
            time.sleep(TIMEOUT * 0.6)

    resp = http.put(
        f"{impatient.url}/v2/images/{image_id}/file",
        data=trickle(),
        headers={"Content-Type": "application/octet-stream", **ADMIN},
    )
    assert resp.status_code == 204, resp.text
    assert http.get(f"{impatient.url}/v2/images/{image_id}", headers=ADMIN).json()["size"] == 4000


def test_a_download_reader_that_stops_reading_is_cut_and_frees_its_slot(impatient, http):
    """Downloads too: a compute node that stops reading must not hold a transfer slot for ever."""
    image_id = new_image(impatient, http, headers=ADMIN)
    size = 16 * 1024 * 1024  # far more than the socket buffers of both ends hold
    resp = http.put(
        f"{impatient.url}/v2/images/{image_id}/file",
        data=raw_bytes(size),
        headers={"Content-Type": "application/octet-stream", **ADMIN},
    )
    assert resp.status_code == 204
    stalled = SlowDownload(impatient.url, f"/v2/images/{image_id}/file", ADMIN, keep_body=False)
    try:
        assert stalled.status == 200
        time.sleep(TIMEOUT * 3)  # read nothing meanwhile
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            while stalled.read(1 << 20):
                pass
        # Cut by the server (the rest never came), not by reading it all.
        assert stalled.received < size
        assert time.monotonic() - started < 20
    finally:
        stalled.close()
