"""The filesystem image cache: queue, writers, publish-by-rename, clean, prune."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from glancelite import errors
from glancelite.services.cache import STALE_WRITE_SECONDS, ImageCache


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cache(tmp_path):
    return ImageCache(str(tmp_path / "cache"), max_size=100, stall_time=60)


def put(cache: ImageCache, image_id: str, data: bytes) -> None:
    writer = cache.begin_write(image_id)
    writer.write(data)
    writer.commit()


def test_queue_then_write_publishes_and_dequeues(cache):
    image_id = new_id()
    assert cache.queue(image_id) is True
    assert cache.queue(image_id) is False  # already queued
    assert cache.queued() == [image_id]
    writer = cache.begin_write(image_id)
    assert cache.begin_write(image_id) is None  # one writer per image, across processes
    writer.write(b"abc")
    assert cache.cached() == []  # nothing visible before the rename
    writer.commit()
    assert [(c.image_id, c.size) for c in cache.cached()] == [(image_id, 3)]
    assert cache.queued() == []
    assert cache.queue(image_id) is False  # already cached


def test_aborted_write_leaves_nothing(cache):
    image_id = new_id()
    writer = cache.begin_write(image_id)
    writer.write(b"partial")
    writer.abort()
    assert cache.cached() == []
    assert os.listdir(os.path.join(cache.directory, "incomplete")) == []


def test_a_stalled_writer_is_taken_over_and_cannot_publish(cache):
    image_id = new_id()
    stalled = cache.begin_write(image_id)
    stalled.write(b"old")
    past = time.time() - STALE_WRITE_SECONDS - 1
    os.utime(cache.path(image_id, "incomplete"), (past, past))
    fresh = cache.begin_write(image_id)
    assert fresh is not None
    fresh.write(b"new data")
    stalled.commit()  # no longer owns the name: publishes nothing, removes nothing
    assert cache.cached() == []
    fresh.commit()
    with cache.open_stream(image_id) as stream:
        assert b"".join(stream) == b"new data"


def test_open_stream_ranges_and_hits(cache):
    image_id = new_id()
    put(cache, image_id, b"0123456789")
    with cache.open_stream(image_id, 2, 3) as stream:
        assert (b"".join(stream), stream.length, stream.size) == (b"234", 3, 10)
    assert cache.open_stream(new_id()) is None
    assert cache.cached()[0].hits in (0, 1)  # 0 where the filesystem has no user xattrs


def test_prune_removes_least_recently_accessed_first(cache):
    old, recent = new_id(), new_id()
    put(cache, old, b"x" * 60)
    put(cache, recent, b"y" * 60)
    os.utime(cache.path(old), (1000, 1000))
    assert cache.prune() == (1, 60)
    assert [c.image_id for c in cache.cached()] == [recent]
    assert cache.prune() == (0, 0)


def test_clean_removes_invalid_and_stalled_files(cache):
    invalid = os.path.join(cache.directory, "invalid", new_id())
    stalled = cache.path(new_id(), "incomplete")
    fresh = cache.path(new_id(), "incomplete")
    for path in (invalid, stalled, fresh):
        open(path, "wb").close()
    os.utime(stalled, (1000, 1000))
    assert cache.clean() == 2
    assert os.path.exists(fresh) and not os.path.exists(stalled) and not os.path.exists(invalid)


def test_ids_never_name_paths(cache):
    with pytest.raises(errors.NotFound):
        cache.path("../../etc/passwd")
    cache.forget("../x")  # ignored, not an error
    assert cache.is_cached("../x") is False
