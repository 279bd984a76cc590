"""One suite every store driver passes (cases come from tests/store/cases_*.py)."""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest

from glancelite import errors
from glancelite.store import base
from glancelite.store.capabilities import Capability, contains
from glancelite.store.streams import HashingReader
from tests.support.payloads import raw_bytes


def writable(driver) -> bool:
    return contains(driver.STATIC_CAPABILITIES, Capability.WRITE_ACCESS)


def put(case, driver, data: bytes, size: int | None = -1) -> str:
    image_id = str(uuid.uuid4())
    if writable(driver):
        stored = driver.add(image_id, io.BytesIO(data), len(data) if size == -1 else size)
        assert isinstance(stored, base.StoredObject)
        assert stored.size == len(data)
        assert all(isinstance(v, str) for v in stored.metadata.values())
        return stored.url
    assert case.seed, f"{case.name} is read-only and needs a seed function"
    return case.seed(driver, image_id, data)


def read_all(stream: base.DataStream) -> bytes:
    with stream:
        return b"".join(stream)


def test_static_capabilities_are_declared(driver):
    assert isinstance(driver.STATIC_CAPABILITIES, Capability)
    assert contains(driver.STATIC_CAPABILITIES, Capability.READ_ACCESS)
    assert driver.TYPE and driver.SCHEMES


def test_add_then_get(case, driver):
    data = raw_bytes(300_001)
    url = put(case, driver, data)
    stream = driver.get(url)
    assert stream.size == len(data)
    assert stream.length == len(data)
    assert read_all(stream) == data
    assert driver.get_size(url) == len(data)
    assert driver.owns(url)


def test_empty_object(case, driver):
    url = put(case, driver, b"")
    assert read_all(driver.get(url)) == b""
    assert driver.get_size(url) == 0


@pytest.mark.parametrize(("offset", "length"), [(0, 10), (5, 100), (1000, None), (299_990, 10), (299_990, 500)])
def test_ranged_get(case, driver, offset, length):
    if not contains(driver.STATIC_CAPABILITIES, Capability.READ_OFFSET | Capability.READ_CHUNK):
        pytest.skip(f"{case.name} does not declare ranged reads")
    data = raw_bytes(300_000)
    url = put(case, driver, data)
    expected = data[offset : offset + length if length is not None else None]
    stream = driver.get(url, offset, length)
    assert stream.size == len(data)
    assert stream.length == len(expected)
    assert read_all(stream) == expected


def test_stream_read_interface(case, driver):
    data = raw_bytes(200_000)
    url = put(case, driver, data)
    with driver.get(url) as stream:
        assert stream.read(10) == data[:10]
        assert stream.read(100_000) == data[10:100_010]
        assert stream.read() == data[100_010:]


def test_get_missing_is_not_found(case, driver):
    url = case.missing_url(driver) if case.missing_url else put(case, driver, b"x") + "-missing"
    with pytest.raises(base.StoreNotFound):
        driver.get(url).close()
    with pytest.raises(base.StoreNotFound):
        driver.get_size(url)


def test_delete(case, driver):
    if not writable(driver):
        with pytest.raises(errors.GlanceliteError):
            driver.delete(put(case, driver, b"abc"))
        return
    url = put(case, driver, b"to be deleted")
    driver.delete(url)
    with pytest.raises(base.StoreNotFound):
        driver.get(url).close()
    with pytest.raises(base.StoreNotFound):
        driver.delete(url)


def test_unknown_size(case, driver):
    if not writable(driver):
        pytest.skip(f"{case.name} is read-only")
    data = raw_bytes(2 * 1024 * 1024 + 3)
    for unknown in (None, 0):
        url = put(case, driver, data, size=unknown)
        assert read_all(driver.get(url)) == data


def test_duplicate(case, driver):
    if not writable(driver) or not case.duplicate_refused:
        pytest.skip(f"{case.name} does not refuse duplicates")
    image_id = str(uuid.uuid4())
    driver.add(image_id, io.BytesIO(b"first"), 5)
    with pytest.raises(base.Duplicate):
        driver.add(image_id, io.BytesIO(b"second"), 6)


class FailingReader:
    """Gives ``good`` bytes, then raises as a disconnecting client would."""

    def __init__(self, good: int):
        self.left = good

    def read(self, n=-1):
        if self.left <= 0:
            raise errors.Invalid("client went away")
        n = min(n if n > 0 else 65536, self.left)
        self.left -= n
        return b"q" * n


def test_failed_add_leaves_nothing(case, driver):
    if not writable(driver):
        pytest.skip(f"{case.name} is read-only")
    before = case.leftovers(driver) if case.leftovers else None
    image_id = str(uuid.uuid4())
    with pytest.raises(errors.Invalid, match="client went away"):
        driver.add(image_id, FailingReader(3 * 1024 * 1024), 10 * 1024 * 1024)
    if case.leftovers:
        assert case.leftovers(driver) == before
    # The id is free again: nothing half-written is in the way.
    stored = driver.add(image_id, io.BytesIO(b"retry"), 5)
    assert read_all(driver.get(stored.url)) == b"retry"


def test_large_round_trip_with_hashes(case, driver):
    data = raw_bytes(case.large_size)
    if writable(driver):
        with HashingReader(io.BytesIO(data), expected_size=len(data)) as reader:
            stored = driver.add(str(uuid.uuid4()), reader, len(data))
            digests = reader.digests()
        assert digests.checksum == hashlib.md5(data).hexdigest()
        assert digests.os_hash_value == hashlib.sha512(data).hexdigest()
        url = stored.url
    else:
        url = case.seed(driver, str(uuid.uuid4()), data)
    md5, sha = hashlib.md5(), hashlib.sha512()
    with driver.get(url) as stream:
        for chunk in stream:
            md5.update(chunk)
            sha.update(chunk)
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert sha.hexdigest() == hashlib.sha512(data).hexdigest()


def test_two_stores_of_one_type_are_independent(case, driver, tmp_path):
    other = case.make(tmp_path, f"{case.name}-b")
    try:
        url = put(case, driver, b"only in a")
        if writable(driver):
            with pytest.raises((base.StoreNotFound, base.BadStoreUri)):
                other.get(url).close()
            url_b = put(case, other, b"only in b")
            assert read_all(other.get(url_b)) == b"only in b"
            assert read_all(driver.get(url)) == b"only in a"
        else:
            assert read_all(other.get(url)) == b"only in a"  # http reads any URL it is given
    finally:
        other.close()


def test_live_capabilities_and_properties(driver):
    probe = driver.probe()
    assert isinstance(probe, base.Probe)
    assert contains(probe.capabilities, Capability.READ_ACCESS)
    assert isinstance(driver.live_capabilities(), Capability)
    assert isinstance(driver.properties(), dict)
