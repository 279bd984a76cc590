"""What both swift drivers send to Swift: one account, one set of credentials.

``SwiftClient`` runs every swiftclient call with a token that is not about to
expire (a request refused with 401 that can be replayed is retried once after
re-authenticating) and translates errors at the edge. It writes images as Glance
writes them: below ``swift_store_large_object_size`` one streamed PUT; at or above
it (and at unknown size) segments ``<obj>-00001``, ``<obj>-00002``... in the same
container, then a manifest ``<obj>`` with ``X-Object-Manifest: <container>/<obj>-``
(a DLO, readable by Glance). Each segment is streamed, never held whole; a failed
upload deletes the segments it wrote; those Swift cannot delete then (it went away mid-upload)
are deleted by ``pending_removals`` once it answers again (store/cleanup.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import urllib.parse

import requests
import swiftclient.client as sc
from swiftclient.exceptions import ClientException

from glancelite import errors
from glancelite.store import base
from glancelite.store.cleanup import PendingRemovals
from glancelite.store.drivers.swift.auth import CallerToken, Credentials

LOG = logging.getLogger(__name__)

MiB = 1024 * 1024
READ_CHUNK = 64 * 1024
WRITE_CHUNK = 64 * 1024
TIMEOUT = 60
PROBE_TIMEOUT = 3


def quiet_swiftclient_logger() -> None:
    """swiftclient logs every request (with the start of the token) at INFO: keep that out of the service log.

    Called when a swift store is built, not when a module is imported: importing must not
    change logging for the whole process (the sample generator, tools, tests). A level the
    operator configured for the ``swiftclient`` logger is kept.
    """
    logger = logging.getLogger("swiftclient")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The store options every request and upload follows, in bytes and seconds."""

    large_object_size: int
    segment_size: int
    create_container: bool
    expire_soon: float
    retry_get_count: int
    insecure: bool
    cacert: str | None


class CallerRefused(errors.Forbidden):
    default_message = "The object store refused the caller's token."


class SwiftClient:
    """Requests to one Swift account with ``credentials``.

    ``callers_token``: the credentials are the request's caller's (multi-tenant), so Swift
    refusing them (401/403) is the caller's problem: CallerRefused (403).
    """

    def __init__(
        self,
        store_id: str,
        credentials: Credentials | CallerToken,
        tuning: Tuning,
        *,
        callers_token: bool = False,
        pending_removals: PendingRemovals | None = None,
    ):
        self.store_id = store_id
        self.credentials = credentials
        self.tuning = tuning
        self.callers_token = callers_token
        self.pending_removals = pending_removals

    # -- plumbing --------------------------------------------------------------------

    def conn(self, timeout: float = TIMEOUT):
        url, _ = self.credentials.get(self.tuning.expire_soon)
        return sc.http_connection(url, insecure=self.tuning.insecure, cacert=self.tuning.cacert, timeout=timeout)

    def call(self, what: str, func, *args, replayable: bool = True, missing: bool = False, conn=None, **kwargs):
        """Run a swiftclient call with a fresh-enough token; 401 -> re-auth and retry once if replayable."""
        for attempt in (1, 2):
            url, token = self.credentials.get(self.tuning.expire_soon, force=attempt == 2)
            try:
                return func(url, token, *args, http_conn=conn, **kwargs)
            except ClientException as exc:
                if exc.http_status == 401 and attempt == 1 and replayable and self.credentials.refreshable:
                    LOG.info("store %s: token refused during %s; re-authenticating", self.store_id, what)
                    continue
                if self.callers_token and exc.http_status in (401, 403):
                    raise CallerRefused(
                        f"Swift refused the caller's token: store {self.store_id} could not {what} "
                        f"(HTTP {exc.http_status})."
                    ) from exc
                raise _translate(self.store_id, what, exc, missing) from exc
            except (requests.RequestException, OSError) as exc:
                raise base.StoreUnavailable(f"Swift of store {self.store_id} unreachable during {what}: {exc}") from exc
        raise AssertionError("unreachable")

    # -- writing ---------------------------------------------------------------------

    def put_image(self, container: str, obj: str, reader: base.Readable, size: int | None) -> int:
        """Write the image as ``container/obj`` (segmented when large); the bytes written."""
        self.settle(obj)
        conn = self.conn()
        self._ensure_container(conn, container)
        try:
            self.call("check for a duplicate", sc.head_object, container, obj, conn=conn, missing=True)
        except base.StoreNotFound:
            pass
        else:
            raise base.Duplicate(f"Image {obj} already exists in store {self.store_id}.")
        if size and size < self.tuning.large_object_size:
            written = self._put_single(conn, container, obj, reader, size)
        else:
            written = self._put_segmented(conn, container, obj, reader, size or None)
        LOG.info("store %s: wrote %d bytes to swift %s/%s", self.store_id, written, container, obj)
        return written

    def _ensure_container(self, conn, container: str) -> None:
        # Checked on every add (one HEAD): a container removed behind our back comes back.
        try:
            self.call("check the container", sc.head_container, container, conn=conn, missing=True)
        except base.StoreNotFound:
            if not self.tuning.create_container:
                raise base.StoreUnavailable(
                    f"Container {container} of store {self.store_id} does not exist and "
                    "swift_store_create_container_on_put is off."
                ) from None
            self.call("create the container", sc.put_container, container, conn=conn)

    def _put_single(self, conn, container: str, obj: str, reader: base.Readable, size: int) -> int:
        body = _SegmentReader(reader, size, exact=True)
        with base.removing_on_failure(lambda: self._remove_partial(container, obj, [obj])):
            self._put(conn, container, obj, body, size)
            _expect_eof(reader, size)
        return size

    def _put_segmented(self, conn, container: str, obj: str, reader: base.Readable, size: int | None) -> int:
        written: list[str] = []
        total = 0
        segment_size = self.tuning.segment_size
        with base.removing_on_failure(lambda: self._remove_partial(container, obj, [*written, obj])):
            number = 0
            while True:
                remaining = None if size is None else size - total
                if remaining is not None and remaining <= 0 and number:
                    break
                seg_len = segment_size if remaining is None else min(segment_size, remaining)
                body = _SegmentReader(reader, seg_len, exact=size is not None)
                if not body.peek():
                    break  # never write an empty segment (a zero-byte image is a manifest alone)
                number += 1
                name = f"{obj}-{number:05d}"
                written.append(name)
                self._put(conn, container, name, body, seg_len if size is not None else None)
                total += body.count
                if size is None and body.count < seg_len:
                    break
            if size is not None:
                if total != size:
                    raise errors.Invalid(f"Size mismatch: expected {size} bytes, got {total}.")
                _expect_eof(reader, size)
            manifest = {"X-Object-Manifest": f"{container}/{obj}-"}
            self.call(
                f"write manifest {obj}",
                sc.put_object,
                container,
                obj,
                conn=conn,
                contents=b"",
                content_length=0,
                headers=manifest,
            )
        return total

    def _put(self, conn, container: str, name: str, body: _SegmentReader, length: int | None) -> None:
        """Stream one object; the image reader's own error wins over what swiftclient made of it."""
        try:
            self.call(
                f"upload {name}",
                sc.put_object,
                container,
                name,
                conn=conn,
                contents=body,
                content_length=length,
                replayable=False,
            )
        except Exception as exc:
            if body.error is not None and body.error is not exc:
                raise body.error from exc
            raise
        body.raise_if_failed()

    def _remove_partial(self, container: str, obj: str, names: list[str]) -> None:
        """A failed upload must not leave segments behind: what Swift cannot delete now (it went away
        mid-upload) is left to ``pending_removals``, retried until Swift answers again."""
        left = self.delete_objects(container, names)
        if not left:
            return
        if self.pending_removals is None:
            LOG.warning("store %s: could not delete %s of %s/%s", self.store_id, left, container, obj)
            return

        def retry() -> None:
            left[:] = self.delete_objects(container, left)
            if left:
                raise base.StoreUnavailable(f"{len(left)} objects of {container}/{obj} not deleted yet.")

        self.pending_removals.defer(obj, f"{len(left)} partial objects of swift {container}/{obj}", retry)

    def settle(self, obj: str) -> None:
        """Before a new upload of ``obj``: the removal an earlier failed one left pending, done now if possible."""
        if self.pending_removals is not None:
            self.pending_removals.settle(obj)

    def delete_objects(self, container: str, names: list[str]) -> list[str]:
        """Delete ``names`` (absent ones count as deleted); those that could not be deleted (logged)."""
        conn = None
        with contextlib.suppress(errors.GlanceliteError):
            conn = self.conn()
        left = []
        for name in names:
            try:
                self.call(f"delete {name}", sc.delete_object, container, name, conn=conn, missing=True)
            except base.StoreNotFound:
                pass
            except errors.GlanceliteError as exc:
                LOG.warning("store %s: could not delete %s/%s: %s", self.store_id, container, name, exc.message)
                left.append(name)
        return left

    # -- reading ---------------------------------------------------------------------

    def get(self, container: str, obj: str, offset: int, length: int | None) -> base.DataStream:
        conn = self.conn()
        size = self.size(container, obj, conn)
        offset = min(max(offset, 0), size)
        remaining = size - offset if length is None else max(0, min(length, size - offset))
        if remaining == 0:
            return base.DataStream(iter(()), size=size, length=0)
        return base.DataStream(
            self._chunks(conn, container, obj, offset, remaining, size),
            size=size,
            length=remaining,
            on_close=lambda: _close(conn),
        )

    def _chunks(self, conn, container: str, obj: str, offset: int, remaining: int, size: int):
        retries = self.tuning.retry_get_count
        while remaining > 0:
            headers = {}
            if offset or remaining != size:
                headers["Range"] = f"bytes={offset}-{offset + remaining - 1}"
            _, body = self.call(
                f"read {obj}",
                sc.get_object,
                container,
                obj,
                conn=conn,
                missing=True,
                resp_chunk_size=READ_CHUNK,
                headers=headers,
            )
            try:
                for chunk in body:
                    chunk = chunk[:remaining]
                    offset += len(chunk)
                    remaining -= len(chunk)
                    yield chunk
                    if remaining <= 0:
                        return
            except (requests.RequestException, OSError, ClientException) as exc:
                if retries <= 0:
                    raise base.StoreUnavailable(f"Swift read of {obj} failed: {exc}") from exc
            if remaining > 0:
                if retries <= 0:
                    raise base.StoreUnavailable(f"Swift read of {obj} ended {remaining} bytes early.")
                retries -= 1
                LOG.info("store %s: resuming read of %s at byte %d", self.store_id, obj, offset)
                conn = self.conn()

    def size(self, container: str, obj: str, conn=None) -> int:
        headers = self.call(f"read {obj}", sc.head_object, container, obj, conn=conn or self.conn(), missing=True)
        return int(headers.get("content-length", 0))

    def listing(self, container: str) -> list[dict]:
        """Every object of ``container`` (swiftclient's full listing: name, bytes, last_modified...);
        StoreNotFound when the container does not exist."""
        _, listing = self.call(f"list {container}", sc.get_container, container, full_listing=True, missing=True)
        return listing

    # -- deleting --------------------------------------------------------------------

    def delete(self, container: str, obj: str) -> None:
        """Delete an object and, for a manifest, its segments (DLO) or the whole SLO."""
        conn = self.conn()
        headers = self.call(f"delete {obj}", sc.head_object, container, obj, conn=conn, missing=True)
        if str(headers.get("x-static-large-object", "")).lower() == "true":
            self.call(
                f"delete {obj}",
                sc.delete_object,
                container,
                obj,
                conn=conn,
                missing=True,
                query_string="multipart-manifest=delete",
            )
            return
        manifest = headers.get("x-object-manifest")
        if manifest:
            seg_container, _, prefix = urllib.parse.unquote(manifest).partition("/")
            _, listing = self.call(
                f"list segments of {obj}", sc.get_container, seg_container, conn=conn, prefix=prefix, full_listing=True
            )
            for entry in listing:
                try:
                    self.call(
                        f"delete {entry['name']}",
                        sc.delete_object,
                        seg_container,
                        entry["name"],
                        conn=conn,
                        missing=True,
                    )
                except base.StoreNotFound:
                    pass
        self.call(f"delete {obj}", sc.delete_object, container, obj, conn=conn, missing=True)


class _SegmentReader:
    """At most ``limit`` bytes of the image for one PUT, read in small chunks as swiftclient asks.

    ``exact`` (known image size): ending short is a size mismatch. Errors raised
    by the underlying reader are kept: swiftclient may wrap them.
    """

    def __init__(self, reader: base.Readable, limit: int, exact: bool):
        self._reader, self._left, self._exact = reader, limit, exact
        self._peeked = b""
        self.count = 0
        self.error: BaseException | None = None

    def peek(self) -> bytes:
        if not self._peeked and self._left > 0:
            self._peeked = self._read(min(WRITE_CHUNK, self._left))
        return self._peeked

    def _read(self, amount: int) -> bytes:
        try:
            data = self._reader.read(amount)
            if not data and self._exact and self._left > 0:
                raise errors.Invalid(f"Size mismatch: image data ended {self._left} bytes early.")
        except BaseException as exc:
            self.error = exc
            raise
        return data

    def read(self, amount: int = -1) -> bytes:
        if self._peeked:
            data, self._peeked = self._peeked, b""
        elif self._left <= 0:
            return b""
        else:
            want = self._left if amount is None or amount < 0 else min(amount, self._left, WRITE_CHUNK * 16)
            data = self._read(want)
        self._left -= len(data)
        self.count += len(data)
        return data

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


def _translate(store_id: str, what: str, exc: ClientException, missing: bool) -> errors.GlanceliteError:
    status = exc.http_status or 0
    where = f"store {store_id} could not {what}"
    if status == 404 and missing:
        return base.StoreNotFound(f"Image data not found: {where}.")
    if status == 409:
        return base.Duplicate(f"Swift reported a conflict: {where}.")
    if status in (413, 507):
        return base.StoreFull(f"Image storage media is full: {where} (HTTP {status}).")
    if status in (401, 403):
        return base.StoreWriteDenied(f"Swift refused the request: {where} (HTTP {status}).")
    if not status:
        return base.StoreUnavailable(f"Swift unreachable: {where} ({exc.msg}).")
    return base.StoreUnavailable(f"Swift error: {where} (HTTP {status}).")


def _expect_eof(reader: base.Readable, size: int) -> None:
    """Read the end of the stream (hashing readers finish there); more data is a size error."""
    if reader.read(1):
        raise errors.Invalid(f"Size exceeds: the image data is longer than its declared {size} bytes.")


def _close(conn) -> None:
    with contextlib.suppress(Exception):
        conn[1].close()
