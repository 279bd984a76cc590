"""SocketBody: a Content-Length body read from gunicorn's socket, in step with gunicorn's own reader.

Real gunicorn body readers over a real socket pair; the peer plays the client.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from glancelite import errors
from glancelite.api.body import SocketBody, upload_body
from glancelite.store import streams
from glancelite.store.streams import HashingReader


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.settimeout(10)
    yield server, client
    server.close()
    client.close()


def gunicorn_env(server: socket.socket, length: int, head: bytes = b""):
    """wsgi.input as gunicorn builds it, with ``head`` already read from the socket after the headers."""
    unreader = SocketUnreader(server)
    if head:
        unreader.unread(head)
    body = Body(LengthReader(unreader, length))
    return {"wsgi.input": body, "gunicorn.socket": server}, body, unreader


def send_later(client: socket.socket, data: bytes, close: bool = False) -> threading.Thread:
    def send():
        client.sendall(data)
        if close:
            client.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def read_all(reader, size: int) -> bytes:
    out = []
    while data := reader.read(size):
        out.append(data)
    return b"".join(out)


@pytest.mark.parametrize("read_size", [1, 1000, 65536, 1 << 20])
@pytest.mark.parametrize("head_size", [0, 1, 8192])
def test_reads_buffered_head_then_socket_in_order(pair, read_size, head_size):
    server, client = pair
    data = os.urandom(300_000 if read_size > 1 else 20_000)
    env, body, _ = gunicorn_env(server, len(data), head=data[:head_size])
    reader = upload_body(env)
    assert isinstance(reader, SocketBody)
    sender = send_later(client, data[head_size:])
    chunks = []
    while chunk := reader.read(read_size):
        assert len(chunk) <= read_size
        chunks.append(chunk)
    sender.join()
    assert b"".join(chunks) == data
    assert body.reader.length == 0
    assert body.read() == b""  # gunicorn sees the body consumed: the connection can be reused


def test_never_reads_past_the_body(pair):
    """Bytes after the body (a pipelined request) stay for gunicorn, buffered or on the socket."""
    server, client = pair
    data, after = b"a" * 5000, b"GET /versions HTTP/1.1\r\n\r\n"
    env, _, unreader = gunicorn_env(server, len(data), head=data[:100] + data[100:] + after)
    reader = upload_body(env)
    assert read_all(reader, 1 << 20) == data
    assert unreader.read() == after

    server2, client2 = socket.socketpair()
    try:
        env, _, unreader = gunicorn_env(server2, len(data))
        client2.sendall(data + after)
        assert read_all(upload_body(env), 1 << 20) == data
        assert unreader.read() == after
    finally:
        server2.close()
        client2.close()


def test_gunicorn_drains_the_rest_after_a_partial_read(pair):
    """An upload refused midway: wsgi.input (common.drain) reads on from where SocketBody stopped."""
    server, client = pair
    data = os.urandom(200_000)
    env, body, _ = gunicorn_env(server, len(data), head=data[:10])
    reader = upload_body(env)
    sender = send_later(client, data[10:])
    first = reader.read(50_000) + reader.read(50_000)
    rest = read_all(body, 65536)
    sender.join()
    assert first + rest == data


def test_short_body_ends_with_size_mismatch(pair):
    """The client closes before Content-Length bytes: b"" at the cut, the hashing reader says 400."""
    server, client = pair
    env, _, _ = gunicorn_env(server, 10_000)
    sender = send_later(client, b"x" * 4000, close=True)
    with HashingReader(upload_body(env), expected_size=10_000) as hashing:
        with pytest.raises(errors.Invalid, match="Size mismatch"):
            read_all(hashing, 65536)
    sender.join()


def test_quota_mid_stream_stops_reading(pair):
    server, client = pair
    block = streams.SOURCE_READ_BYTES
    total = 6 * block
    env, body, _ = gunicorn_env(server, total)
    sender = send_later(client, b"q" * total)
    with HashingReader(upload_body(env), quota_remaining=2 * block + 1) as hashing:
        with pytest.raises(errors.TooLarge, match="storage quota"):
            read_all(hashing, 1 << 20)
    # No more than the block that crossed the quota was taken from the client.
    assert total - body.reader.length <= 3 * block + 1
    read_all(body, 65536)  # what the API's drain does before answering
    sender.join()
    assert body.reader.length == 0


def test_digests_through_socket_body(pair):
    server, client = pair
    data = os.urandom(3 * (1 << 20) + 123)
    env, _, _ = gunicorn_env(server, len(data), head=data[:777])
    sender = send_later(client, data[777:])
    with HashingReader(upload_body(env), expected_size=len(data)) as hashing:
        assert len(read_all(hashing, 1 << 20)) == len(data)
        digests = hashing.digests()
    sender.join()
    assert digests.checksum == hashlib.md5(data).hexdigest()
    assert digests.os_hash_value == hashlib.sha512(data).hexdigest()


def test_other_bodies_stay_with_the_server(pair):
    server, _ = pair

    class Req:
        limit_request_field_size = 8190
        max_buffer_headers = 8190 * 32

    chunked = Body(ChunkedReader(Req(), SocketUnreader(server)))
    assert upload_body({"wsgi.input": chunked, "gunicorn.socket": server}) is chunked
    plain = io.BytesIO(b"abc")
    assert upload_body({"wsgi.input": plain}) is plain
    env, body, _ = gunicorn_env(server, 10, head=b"0123456789")
    assert body.read(3) == b"012"  # the application read from wsgi.input already
    assert upload_body(env) is body
    env, body, _ = gunicorn_env(server, 10)
    env["gunicorn.socket"] = socket.socket()  # not the socket the body comes from
    try:
        assert upload_body(env) is body
    finally:
        env["gunicorn.socket"].close()
