"""The one hashing reader every upload, stage and import passes its data through; the
stream wrappers that count bytes on their way in and out (metrics, notifications).

It wraps the incoming stream, counts bytes, and enforces ``image_size_cap``,
the owner's remaining storage quota and the declared size as bytes arrive.
md5 (Glance's ``checksum``) and the ``os_hash_algo`` multihash are computed
on two helper threads: hashlib releases the GIL on large buffers, so the
throughput is that of the slower hash, not of both added up, and the thread
that reads the socket and writes the store never waits for hashing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import threading
from collections.abc import Callable

from glancelite import errors
from glancelite.store.base import DataStream, Readable

# Chunks are handed to the hash threads in batches of about this many bytes (one source
# read), so queue traffic stays small whatever chunk size the driver reads with.
HASH_BATCH_BYTES = 1 << 18
# Batches a hash thread may lag behind the reading thread. With the batch being hashed and
# the block being read, an upload holds at most (QUEUE_DEPTH + 2) x 256 KiB = 768 KiB: a
# worker's memory stays flat in the number of uploads (16 x 1 MiB let 4 uploads on a worker
# add 124 MiB to its peak RSS). The hashes are the slower side, so a deeper queue would only
# hold more bytes, not go faster.
QUEUE_DEPTH = 1
DEFAULT_READ = 1 << 16
# The source (the server's wsgi.input) is read in blocks of this size, whatever the reader
# of this stream asks for. Measured on gunicorn's body reader (reading thread's CPU per MiB,
# Content-Length / chunked): 64 KiB 0.26 / 0.23 ms, 256 KiB 0.21 / 0.26 ms, 1 MiB 0.92 / 0.31 ms
# (it assembles a large read in BytesIO copies); each read also costs a fixed overhead.
SOURCE_READ_BYTES = 1 << 18


class ClientDisconnected(errors.Invalid):
    default_message = "The client closed the connection before sending all image data."


@dataclasses.dataclass(frozen=True)
class Digests:
    size: int
    checksum: str  # md5 hex
    os_hash_algo: str
    os_hash_value: str


def new_hasher(name: str):
    """hashlib object; md5 is flagged not-for-security so FIPS hosts accept it."""
    try:
        return hashlib.new(name, usedforsecurity=False)
    except ValueError as exc:
        raise errors.Invalid(f"Unknown hashing algorithm {name!r}") from exc


class _HashThread:
    """One hasher fed batches of chunks through a bounded queue."""

    def __init__(self, hasher, name: str):
        self.hasher = hasher
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            if self.error is None:
                try:
                    for chunk in batch:
                        self.hasher.update(chunk)
                except BaseException as exc:  # surfaced by finish()
                    self.error = exc

    def put(self, batch) -> None:
        self.queue.put(batch)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class HashingReader:
    """``read(n)`` over ``source`` that hashes, counts and enforces limits.

    ``expected_size`` None or 0 means unknown. ``quota_remaining`` None means
    no quota. ``hashed`` False only counts and enforces the limits (staging:
    the import hashes the staged data as it copies it). Use as a context
    manager (or call ``close``) so the hash threads stop when the upload fails;
    call ``digests()`` after the store took everything.
    """

    def __init__(
        self,
        source: Readable,
        *,
        hashing_algorithm: str = "sha512",
        size_cap: int | None = None,
        quota_remaining: int | None = None,
        expected_size: int | None = None,
        quota_message: Callable[[int, int], str] | None = None,
        hashed: bool = True,
    ):
        self._source = source
        self._hashed = hashed
        self._algo = hashing_algorithm
        self._md5 = new_hasher("md5") if hashed else None
        self._multihash = new_hasher(hashing_algorithm) if hashed else None
        self._size_cap = size_cap
        self._quota = quota_remaining
        self._expected = expected_size or None
        self._quota_message = quota_message
        self.bytes_read = 0
        self._eof = False
        self._ahead = b""
        self._ahead_pos = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._threads: list[_HashThread] | None = None
        self._digests: Digests | None = None
        self._check_limits(self._expected or 0, declared=True)

    # -- reading -------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = DEFAULT_READ
        if not self._ahead:
            self._fill(size)
        if not self._ahead:
            return b""
        if len(self._ahead) <= size and self._ahead_pos == 0:
            data, self._ahead = self._ahead, b""
            return data
        data = self._ahead[self._ahead_pos : self._ahead_pos + size]
        self._ahead_pos += len(data)
        if self._ahead_pos >= len(self._ahead):
            self._ahead, self._ahead_pos = b"", 0
        return data

    def _fill(self, size: int) -> None:
        """Read one block from the source, account for it, and keep it for the next reads."""
        if self._eof:
            return
        try:
            data = self._source.read(SOURCE_READ_BYTES)
        except OSError as exc:
            # gunicorn raises IOError subclasses when a chunked body stops short.
            raise ClientDisconnected() from exc
        if not data:
            self._eof = True
            if self._expected is not None and self.bytes_read != self._expected:
                raise errors.Invalid(
                    f"Size mismatch: expected {self._expected} bytes, got {self.bytes_read} bytes of image data"
                )
            return
        self.bytes_read += len(data)
        if self._expected is not None and self.bytes_read > self._expected:
            raise errors.Invalid(f"Size exceeds: expected {self._expected} bytes, got {self.bytes_read}")
        self._check_limits(self.bytes_read)
        if self._hashed:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes >= HASH_BATCH_BYTES:
                self._dispatch()
        self._ahead, self._ahead_pos = data, 0

    def _check_limits(self, size: int, declared: bool = False) -> None:
        if self._size_cap is not None and size > self._size_cap:
            raise errors.TooLarge(
                f"The incoming image is too large: the image size cap is {self._size_cap} bytes"
                + (f" and the request declares {size} bytes." if declared else ".")
            )
        if self._quota is not None and size > self._quota:
            if self._quota_message:
                raise errors.TooLarge(self._quota_message(size, self._quota))
            raise errors.TooLarge(
                f"Image exceeds the storage quota: The size of the data {size} will exceed the limit. "
                f"{max(self._quota, 0)} bytes remaining."
            )

    # -- hashing -------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self._threads is None:
            self._threads = [
                _HashThread(self._md5, "hash-md5"),
                _HashThread(self._multihash, f"hash-{self._algo}"),
            ]
        batch = tuple(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        for worker in self._threads:
            worker.put(batch)

    def digests(self) -> Digests:
        """Wait for the hash threads and return the totals; only after EOF was read."""
        if self._digests is not None:
            return self._digests
        if not self._hashed:
            raise RuntimeError("digests() of a reader made with hashed=False")
        if not self._eof or self._ahead:
            raise errors.Invalid("Image data was not read to the end.")
        if self._threads is None:
            # Small images never started threads: hash the little that came.
            for chunk in self._pending:
                self._md5.update(chunk)
                self._multihash.update(chunk)
            self._pending.clear()
        else:
            if self._pending:
                self._dispatch()
            self._stop_threads()
        self._digests = Digests(
            size=self.bytes_read,
            checksum=self._md5.hexdigest(),
            os_hash_algo=self._algo,
            os_hash_value=self._multihash.hexdigest(),
        )
        return self._digests

    def _stop_threads(self) -> None:
        threads, self._threads = self._threads or [], []
        first_error = None
        for worker in threads:
            try:
                worker.finish()
            except BaseException as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def close(self) -> None:
        """Stop the hash threads (idempotent); the upload failed or finished."""
        if self._threads:
            self._pending.clear()
            try:
                self._stop_threads()
            except Exception:  # the upload already failed for a better reason
                pass

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- counting -------------------------------------------------------------------------


class CountingReader:
    """``reader`` unchanged, calling ``count(n)`` for every n bytes read from it."""

    def __init__(self, reader: Readable, count: Callable[[int], None]):
        self._reader = reader
        self._count = count

    def read(self, size: int = -1, /) -> bytes:
        data = self._reader.read(size)
        if data:
            self._count(len(data))
        return data


def reporting_sent(stream: DataStream, report: Callable[[int], None]) -> DataStream:
    """``stream`` unchanged for its reader, calling ``report(bytes sent)`` once, when it ends.

    It ends when the stream is closed or, on the sendfile path, when the server closes its
    file; the count is what went out through the chunks, or how far the file got.
    """
    once = _Once(report)
    counter = _SentCounter(once)
    return DataStream(
        counter.chunks(stream),
        size=stream.size,
        length=stream.length,
        file=_CountingFile(stream.file, once) if stream.file is not None else None,
        on_close=lambda: _close_then(stream, counter),
    )


class _Once:
    def __init__(self, report: Callable[[int], None]):
        self._report = report
        self._done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        self._report(sent)


class _SentCounter:
    def __init__(self, report: Callable[[int], None]):
        self.sent = 0
        self._report = report

    def chunks(self, stream: DataStream):
        for chunk in stream:
            self.sent += len(chunk)
            yield chunk

    def done(self) -> None:
        self._report(self.sent)


def _close_then(stream: DataStream, counter: _SentCounter) -> None:
    try:
        stream.close()
    finally:
        counter.done()


class _CountingFile:
    """The file a download hands to the server, reporting how far it got when the server closes it.

    socket.sendfile (gunicorn's path) leaves the file position after the last byte sent, also
    when the client went away, and gunicorn then puts the descriptor back with os.lseek: so the
    furthest position this wrapper saw (through seek, or read on the plain path) is what was sent.
    """

    def __init__(self, fh, report: Callable[[int], None]):
        self._fh = fh
        self._report = report
        self._start = self._reached = fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._reached = max(self._reached, self._fh.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._fh.seek(offset, whence)
        self._reached = max(self._reached, position)
        return position

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            self._report(self._reached - self._start)
