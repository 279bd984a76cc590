"""The hashing reader: digests, limits as bytes arrive, threads that stop."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest

from glancelite import errors
from glancelite.store import streams
from glancelite.store.streams import ClientDisconnected, HashingReader
from tests.support.payloads import raw_bytes


def drain(reader, chunk=65536) -> int:
    total = 0
    while data := reader.read(chunk):
        total += len(data)
    return total


@pytest.mark.parametrize("size", [0, 1, 1000, streams.HASH_BATCH_BYTES - 1, 3 * streams.HASH_BATCH_BYTES + 17])
def test_digests_match_hashlib(size):
    data = raw_bytes(size)
    with HashingReader(io.BytesIO(data), expected_size=size) as reader:
        assert drain(reader, 7777) == size
        digests = reader.digests()
    assert digests.size == size
    assert digests.checksum == hashlib.md5(data).hexdigest()
    assert digests.os_hash_algo == "sha512"
    assert digests.os_hash_value == hashlib.sha512(data).hexdigest()


def test_other_multihash_algorithm():
    data = b"x" * 5000
    with HashingReader(io.BytesIO(data), hashing_algorithm="sha256") as reader:
        drain(reader)
        assert reader.digests().os_hash_value == hashlib.sha256(data).hexdigest()


def test_unknown_algorithm_is_invalid():
    with pytest.raises(errors.Invalid):
        HashingReader(io.BytesIO(b""), hashing_algorithm="nope")


def test_size_cap_stops_reading_as_soon_as_it_is_passed():
    block = streams.SOURCE_READ_BYTES
    source = io.BytesIO(b"a" * (5 * block))
    reader = HashingReader(source, size_cap=block + block // 2)
    with pytest.raises(errors.TooLarge, match="The incoming image is too large"):
        drain(reader, 1024)
    assert source.tell() == 2 * block  # the block that crossed the cap, no more
    reader.close()


def test_declared_size_above_cap_fails_before_reading():
    source = io.BytesIO(b"a" * 10)
    with pytest.raises(errors.TooLarge):
        HashingReader(source, size_cap=5, expected_size=10)
    assert source.tell() == 0


def test_quota_message():
    reader = HashingReader(io.BytesIO(b"a" * 100), quota_remaining=50)
    with pytest.raises(errors.TooLarge, match="Image exceeds the storage quota"):
        drain(reader, 10)


def test_more_data_than_declared():
    reader = HashingReader(io.BytesIO(b"a" * 100), expected_size=50)
    with pytest.raises(errors.Invalid, match="Size exceeds"):
        drain(reader, 30)


def test_less_data_than_declared():
    reader = HashingReader(io.BytesIO(b"a" * 40), expected_size=50)
    with pytest.raises(errors.Invalid, match="Size mismatch"):
        drain(reader, 30)


def test_unknown_size_accepts_anything():
    with HashingReader(io.BytesIO(b"a" * 40), expected_size=0) as reader:
        assert drain(reader) == 40
        assert reader.digests().size == 40


def test_an_unhashed_reader_counts_and_limits_but_never_hashes(monkeypatch):
    """Staging's reader: the import hashes the staged data later, so the stage does not."""
    monkeypatch.setattr(streams, "new_hasher", lambda name: pytest.fail(f"hashed with {name}"))
    data = raw_bytes(3 * streams.HASH_BATCH_BYTES + 5)
    with HashingReader(io.BytesIO(data), expected_size=len(data), hashed=False) as reader:
        assert drain(reader, 1 << 20) == len(data) == reader.bytes_read
        with pytest.raises(RuntimeError, match="hashed=False"):
            reader.digests()
    with pytest.raises(errors.TooLarge):
        drain(HashingReader(io.BytesIO(data), size_cap=len(data) - 1, hashed=False))
    with pytest.raises(errors.Invalid, match="Size mismatch"):
        drain(HashingReader(io.BytesIO(data), expected_size=len(data) + 1, hashed=False))


class Broken(io.RawIOBase):
    def __init__(self):
        self.sent = 0

    def read(self, n=-1):
        if self.sent >= 3 * streams.HASH_BATCH_BYTES:
            raise OSError("connection reset")
        self.sent += 65536
        return b"z" * 65536


def test_client_disconnect_is_a_typed_error_and_threads_stop():
    reader = HashingReader(Broken())
    with pytest.raises(ClientDisconnected):
        drain(reader)
    assert any(t.name.startswith("hash-") for t in threading.enumerate())
    reader.close()
    assert not any(t.name.startswith("hash-") for t in threading.enumerate())


def test_small_reads_from_a_large_block_return_everything_in_order():
    data = raw_bytes(3 * streams.SOURCE_READ_BYTES + 5)
    out = []
    with HashingReader(io.BytesIO(data)) as reader:
        while chunk := reader.read(1000):
            assert len(chunk) <= 1000
            out.append(chunk)
        assert reader.digests().checksum == hashlib.md5(data).hexdigest()
    assert b"".join(out) == data


def test_digests_before_eof_refused():
    reader = HashingReader(io.BytesIO(b"abc"))
    reader.read(1)
    with pytest.raises(errors.Invalid):
        reader.digests()
    reader.close()


@pytest.mark.parametrize("read_size", [1, 1000, 65536, 100_000, 1 << 20])
def test_data_stream_read_any_size(read_size):
    from glancelite.store.base import DataStream

    data = raw_bytes(700_001)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    closed = []
    stream = DataStream(chunks, size=len(data), length=len(data), on_close=lambda: closed.append(1))
    out = []
    while piece := stream.read(read_size):
        assert len(piece) <= read_size
        out.append(piece)
    assert b"".join(out) == data
    stream.close()
    stream.close()
    assert closed == [1]


def test_data_stream_mixed_read_then_iterate():
    from glancelite.store.base import DataStream

    stream = DataStream([b"abc", b"def", b"ghi"], size=9, length=9)
    assert stream.read(4) == b"abcd"
    assert b"".join(stream) == b"efghi"
