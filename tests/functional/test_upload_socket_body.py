"""Upload bodies read from gunicorn's socket (glancelite.api.body) against a real glancelite-api:
a malformed chunked body is a 400, and the connection serves the next request after a body."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.parse

from tests.functional._images import image_row, new_image
from tests.support.payloads import raw_bytes


def _files(service) -> list[str]:
    root = service.config.parent
    return sorted(name for store in ("fast", "slow") if (root / store).exists() for name in os.listdir(root / store))


def _responses(reader, count: int) -> list[tuple[int, bytes]]:
    """``count`` HTTP/1.1 responses read off ``reader`` (a socket's file; each with Content-Length)."""
    out = []
    for _ in range(count):
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        out.append((status, reader.read(length)))
    return out


def _put(image_id: str, framing: str) -> bytes:
    return (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    ).encode()


def test_malformed_chunked_body_is_a_400_and_leaves_nothing(service, http):
    before = _files(service)
    image_id = new_image(service, http)
    url = urllib.parse.urlsplit(service.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        data = raw_bytes(65536)
        sock.sendall(_put(image_id, "Transfer-Encoding: chunked") + b"10000\r\n" + data + b"\r\nzz\r\n")
        reader = sock.makefile("rb")
        [(status, body)] = _responses(reader, 1)
        # The framing is lost, so the connection ends there: nothing more (no stray 500) follows.
        assert reader.read() == b""
    assert status == 400, body
    # Glance's shape for a request without Accept: webob's plain-text error page.
    assert body.startswith(b"400 Bad Request") and b"Invalid chunked encoding: bad chunk size." in body
    assert b"Traceback" not in body
    image = image_row(service, image_id)
    assert (image.status, image.locations) == ("queued", ())
    assert _files(service) == before


def test_keep_alive_after_chunked_and_length_bodies(service, http):
    """Both bodies end exactly where they should: the requests sent behind them on the connection are served."""
    url = urllib.parse.urlsplit(service.url)
    chunked_id, length_id = new_image(service, http), new_image(service, http)
    data = raw_bytes(300_000)
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(data[i : i + 65536]), data[i : i + 65536]) for i in range(0, len(data), 65536)
    )
    versions = b"GET /versions HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(
            _put(chunked_id, "Transfer-Encoding: chunked")
            + chunked
            + b"0\r\nX-Trailer: 1\r\n\r\n"
            + versions
            + _put(length_id, f"Content-Length: {len(data)}")
            + data
            + versions
        )
        statuses = [status for status, _ in _responses(sock.makefile("rb"), 4)]
    assert statuses == [204, 200, 204, 200]
    for image_id in (chunked_id, length_id):
        image = image_row(service, image_id)
        assert (image.status, image.size, image.checksum) == ("active", len(data), hashlib.md5(data).hexdigest())
