"""SocketBody: a Content-Length body read from gunicorn's socket, in step with gunicorn's own reader.

Real gunicorn body readers over a real socket pair; the peer plays the client.
"""

from __future__ import annotations

import hashlib
import io
import socket
import threading

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.errors import NoMoreData
from gunicorn.http.unreader import SocketUnreader

from glancelite import errors
from glancelite.api.body import ChunkedSocketBody, SocketBody, upload_body
from glancelite.store import streams
from glancelite.store.streams import HashingReader
from tests.support.payloads import raw_bytes


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
    data = raw_bytes(300_000 if read_size > 1 else 20_000)
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
    data = raw_bytes(200_000)
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
    data = raw_bytes(3 * (1 << 20) + 123)
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
    assert upload_body({"wsgi.input": chunked}) is chunked  # no socket: not gunicorn's
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


# -- chunked ----------------------------------------------------------------------------


class _Limits:
    limit_request_field_size = 8190
    max_buffer_headers = 8190 * 32


def chunked_env(server: socket.socket, head: bytes = b""):
    unreader = SocketUnreader(server)
    if head:
        unreader.unread(head)
    body = Body(ChunkedReader(_Limits(), unreader))
    return {"wsgi.input": body, "gunicorn.socket": server}, body, unreader


def encode_chunked(data: bytes, chunk: int, extension: bytes = b"", trailers: bytes = b"") -> bytes:
    out = [
        b"%x%s\r\n%s\r\n" % (len(data[i : i + chunk]), extension, data[i : i + chunk])
        for i in range(0, len(data), chunk)
    ]
    return b"".join(out) + b"0\r\n" + trailers + b"\r\n"


@pytest.mark.parametrize("chunk", [1, 1000, 65536, 300_000])
@pytest.mark.parametrize("read_size", [7, 65536, 1 << 20])
def test_chunked_decodes_in_order(pair, chunk, read_size):
    server, client = pair
    data = raw_bytes(20_000 if chunk == 1 else 700_000)
    wire = encode_chunked(data, chunk)
    env, body, unreader = chunked_env(server, head=wire[:5000])
    reader = upload_body(env)
    assert isinstance(reader, ChunkedSocketBody)
    sender = send_later(client, wire[5000:] + b"NEXT")
    got = []
    while piece := reader.read(read_size):
        assert len(piece) <= read_size
        got.append(piece)
    sender.join()
    assert b"".join(got) == data
    assert body.read() == b""  # gunicorn sees the body ended
    assert unreader.read() == b"NEXT"  # and gets back what followed it


def test_chunked_extensions_and_trailers(pair):
    server, client = pair
    data = b"abc" * 10_000
    wire = encode_chunked(data, 4096, extension=b' ; name="value"', trailers=b"X-Trailer: 1\r\nX-Other: 2\r\n")
    env, _, unreader = chunked_env(server)
    sender = send_later(client, wire + b"GET")
    assert read_all(upload_body(env), 65536) == data
    sender.join()
    assert unreader.read() == b"GET"


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\nab\r\n0\r\n\r\n",  # not hex
        b"\r\nab\r\n0\r\n\r\n",  # no size
        b"2 \r\nab\r\n0\r\n\r\n",  # whitespace without an extension
        b"2\r\nabc\r\n0\r\n\r\n",  # longer than its size
        b"2\nab\r\n0\r\n\r\n",  # bare LF
        b"2;a\rb\r\nab\r\n0\r\n\r\n",  # bare CR in an extension
        b"1" * 9000 + b"\r\n",  # a size line past gunicorn's limit
        b"12345678901234567\r\n",  # more than 16 hex digits
        b"2\r\nab\r\n0\r\n" + b"X-T: y\r\n" * 40_000 + b"\r\n",  # trailers past the limit
    ],
)
def test_chunked_malformed_is_a_400_and_stays_failed(pair, wire):
    server, client = pair
    env, body, _ = chunked_env(server)
    sender = send_later(client, wire, close=True)
    reader = upload_body(env)
    with HashingReader(reader) as hashing:
        with pytest.raises(errors.Invalid, match="Invalid chunked encoding"):
            read_all(hashing, 65536)
    # Nobody reads on past lost framing; gunicorn (draining before it would reuse the
    # connection) gets its NoMoreData, which closes the connection quietly.
    with pytest.raises(NoMoreData):
        body.read(10)
    with pytest.raises(errors.Invalid):
        reader.read(10)
    sender.join()


def test_chunked_client_gone_mid_chunk_is_a_disconnect(pair):
    server, client = pair
    env, _, _ = chunked_env(server)
    sender = send_later(client, b"10000\r\n" + b"x" * 1000, close=True)
    with HashingReader(upload_body(env)) as hashing:
        with pytest.raises(streams.ClientDisconnected):
            read_all(hashing, 65536)
    sender.join()


def test_chunked_refused_midway_then_drained_through_wsgi_input(pair):
    """A quota hit mid-body: the API drains wsgi.input, which goes on through the same decoder."""
    server, client = pair
    block = streams.SOURCE_READ_BYTES
    data = b"q" * (6 * block)
    env, body, unreader = chunked_env(server)
    sender = send_later(client, encode_chunked(data, 65536) + b"NEXT")
    with HashingReader(upload_body(env), quota_remaining=block + 1) as hashing:
        with pytest.raises(errors.TooLarge):
            read_all(hashing, 1 << 20)
    rest = read_all(body, 65536)
    sender.join()
    assert 0 < len(rest) < len(data)
    assert rest == data[len(data) - len(rest) :]
    assert unreader.read() == b"NEXT"


def test_chunked_digests(pair):
    server, client = pair
    data = raw_bytes(2 * (1 << 20) + 5)
    env, _, _ = chunked_env(server)
    sender = send_later(client, encode_chunked(data, 65536))
    with HashingReader(upload_body(env)) as hashing:
        assert len(read_all(hashing, 1 << 20)) == len(data)
        digests = hashing.digests()
    sender.join()
    assert digests.checksum == hashlib.md5(data).hexdigest()
    assert digests.os_hash_value == hashlib.sha512(data).hexdigest()


def test_chunked_started_by_gunicorn_stays_with_it(pair):
    server, client = pair
    env, body, _ = chunked_env(server)
    client.sendall(encode_chunked(b"hello world", 3))
    assert body.read(2) == b"he"
    assert upload_body(env) is body
