"""S3 store (boto3): one object per image, ``<bucket>/<image_id>``.

Locations are ``s3://<host>/<bucket>/<image_id>`` (``s3+https`` for a TLS
endpoint) and never carry keys: the store's options supply them, so a key
rotation needs no database update. Legacy Glance locations with
``access:secret@`` in them are still read (the embedded keys are ignored).

Unlike glance_store, nothing is buffered whole: a small image is streamed in
one PUT (payload signing off, the length is known), a large or unknown-size
one goes up as a multipart upload with at most ``s3_store_thread_pools`` parts
in memory at once; any failure aborts the multipart upload so no incomplete
upload is left behind (an abort the endpoint does not answer is retried by
``pending_removals`` until it does, store/cleanup.py; ``iter_unfinished_uploads``
shows the store audit what is left anyway).
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability
from glancelite.store.cleanup import PendingRemovals
from glancelite.store.drivers.s3_options import OPTIONS

LOG = logging.getLogger(__name__)

MiB = 1024 * 1024
READ_CHUNK = 64 * 1024
MAX_PARTS = 10000
# Unknown size: the part size doubles every this many parts, so 10,000 parts
# reach far beyond any image size (10 MiB parts: ~10 TiB after 6,000 parts).
PARTS_PER_STEP = 1000
PROBE_TIMEOUT = 3

_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ProxyConnectionError,
)


class S3Driver(base.Driver):
    TYPE = "s3"
    SCHEMES = ("s3", "s3+http", "s3+https")
    # Ranged GETs are native to S3; the driver keeps no per-operation state and
    # boto3 clients are thread-safe, so one instance serves every request.
    STATIC_CAPABILITIES = Capability.RW_ACCESS | Capability.READ_RANDOM | Capability.DRIVER_REUSABLE
    OPTIONS = OPTIONS

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        # Multipart uploads the endpoint did not let us abort when they failed, retried until it does.
        self.pending_removals = PendingRemovals(store.id)
        host = self._required("s3_store_host")
        self.access_key = self._required("s3_store_access_key")
        self.secret_key = self._required("s3_store_secret_key")
        self.bucket = self._required("s3_store_bucket")
        if "://" not in host:
            host = "http://" + host
        split = urllib.parse.urlsplit(host)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise errors.ConfigError(store.id, "s3_store_host", f"{host!r} is not an http(s) endpoint")
        self.endpoint = host.rstrip("/")
        self.netloc = split.netloc + split.path.rstrip("/")
        self.scheme = "s3+https" if split.scheme == "https" else "s3"
        self.create_bucket = self.option("s3_store_create_bucket_on_put")
        self.region = self.option("s3_store_region_name") or None
        self.large_object_size = self.option("s3_store_large_object_size") * MiB
        self.part_size = self.option("s3_store_large_object_chunk_size") * MiB
        if self.part_size < 5 * MiB:
            raise errors.ConfigError(store.id, "s3_store_large_object_chunk_size", "S3 parts must be at least 5 MiB")
        self.threads = self.option("s3_store_thread_pools")
        if self.threads < 1:
            raise errors.ConfigError(store.id, "s3_store_thread_pools", "must be at least 1")
        url_format = self.option("s3_store_bucket_url_format")
        if url_format not in ("auto", "virtual", "path"):
            raise errors.ConfigError(store.id, "s3_store_bucket_url_format", "must be auto, virtual or path")
        # botocore's "auto" picks virtual-host style for DNS-valid names, which a
        # bare IP endpoint (every local S3) cannot serve: auto means path there.
        if url_format == "auto" and _is_ip(split.hostname or ""):
            url_format = "path"
        self.url_format = url_format
        self.cacert = self.option("s3_store_cacert") or None
        self._client = self._make_client(connect_timeout=10, read_timeout=60, attempts=3)
        self._probe_client = self._make_client(PROBE_TIMEOUT, PROBE_TIMEOUT, attempts=1)
        self._bucket_lock = threading.Lock()

    def _required(self, name: str) -> str:
        value = self.option(name)
        if not value:
            raise errors.ConfigError(self.store.id, name, "is required by the s3 store")
        return value

    def _make_client(self, connect_timeout: float, read_timeout: float, attempts: int):
        config = botocore.config.Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": attempts, "mode": "standard"},
            max_pool_connections=self.threads + 2,
            # Streamed bodies cannot be hashed up front; integrity comes from the
            # hashes computed above the driver. Many S3-compatible servers reject
            # the newer checksum headers (glance_store LP #2121144).
            s3={"addressing_style": self.url_format, "payload_signing_enabled": False},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region or "us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            verify=self.cacert if self.cacert else None,
            config=config,
        )

    # -- locations -------------------------------------------------------------------

    def url_of(self, image_id: str) -> str:
        return f"{self.scheme}://{self.netloc}/{urllib.parse.quote(self.bucket)}/{urllib.parse.quote(image_id)}"

    def parse(self, url: str) -> tuple[str, str]:
        """(bucket, key) of a location; the host part is informational (the store's endpoint is used)."""
        split = urllib.parse.urlsplit(url)
        if split.scheme not in self.SCHEMES or url.count("://") != 1:
            raise base.BadStoreUri(f"Location is not an s3 location: {_redact(url)}")
        # Glance's legacy form puts the keys before the host: s3://access:secret@host/bucket/key.
        bucket, _, key = split.path.lstrip("/").partition("/")
        if not bucket or not key:
            raise base.BadStoreUri(f"s3 location needs a bucket and a key: {_redact(url)}")
        bucket, key = urllib.parse.unquote(bucket), urllib.parse.unquote(key)
        if bucket != self.bucket:
            # A store reads only its own bucket: two s3 stores never serve each other's data.
            raise base.BadStoreUri(f"Location {_redact(url)} is not in bucket {self.bucket} of store {self.store.id}.")
        return bucket, key

    def owns(self, url: str) -> bool:
        try:
            self.parse(url)
        except errors.GlanceliteError:
            return False
        return urllib.parse.urlsplit(url).netloc.rpartition("@")[2] == self.netloc.split("/")[0]

    # -- live state ------------------------------------------------------------------

    def probe(self) -> base.Probe:
        caps = self.configured_capabilities()
        try:
            self._probe_client.head_bucket(Bucket=self.bucket)
        except _CONNECTION_ERRORS as exc:
            return base.Probe(
                Capability.DRIVER_REUSABLE, f"S3 endpoint {self.endpoint} unreachable: {exc}", unreachable=True
            )
        except botocore.exceptions.ClientError as exc:
            status = _status(exc)
            if status == 404:
                if self.create_bucket:
                    return base.Probe(caps)
                return base.Probe(Capability.DRIVER_REUSABLE, f"bucket {self.bucket} does not exist")
            if status in (401, 403):
                return base.Probe(Capability.DRIVER_REUSABLE, f"S3 refused the store's credentials ({status})")
            return base.Probe(Capability.DRIVER_REUSABLE, f"S3 answered {status}", unreachable=True)
        return base.Probe(caps)

    def live_capabilities(self) -> Capability:
        return self.probe().capabilities

    def properties(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "endpoint": self.endpoint}

    # -- operations ------------------------------------------------------------------

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        self.pending_removals.settle(image_id)
        self._ensure_bucket()
        key = image_id
        if self._exists(key):
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.")
        if size and size < self.large_object_size:
            written = self._put_single(key, reader, size)
        else:
            written = self._put_multipart(key, reader, size or None)
        LOG.info("store %s: wrote %d bytes to s3 %s/%s", self.store.id, written, self.bucket, key)
        return base.StoredObject(url=self.url_of(image_id), size=written, metadata={})

    def _ensure_bucket(self) -> None:
        # Checked on every add (one HEAD), like glance_store: a bucket removed behind our back comes back.
        with self._bucket_lock, self._translating("check bucket " + self.bucket):
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _status(exc) != 404:
                    raise
                if not self.create_bucket:
                    raise base.StoreUnavailable(
                        f"Bucket {self.bucket} of store {self.store.id} does not exist and "
                        "s3_store_create_bucket_on_put is off."
                    ) from exc
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if self.region and self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    self._client.create_bucket(**kwargs)
                except botocore.exceptions.ClientError as create_exc:
                    if _code(create_exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

    def _exists(self, key: str) -> bool:
        with self._translating(f"check {self.bucket}/{key}"):
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 404:
                    return False
                raise
        return True

    def _put_single(self, key: str, reader: base.Readable, size: int) -> int:
        body = _ExactReader(reader, size)
        with self._translating(f"upload {self.bucket}/{key}"):
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size)
            except Exception as exc:
                if body.consumed:
                    # The PUT may have landed before the failure surfaced (client side).
                    self._delete_quietly(key)
                if body.error is not None and body.error is not exc:
                    raise body.error from exc
                raise
        if body.error:
            raise body.error
        if reader.read(1):
            # Read the end of the stream (hashing readers finish there); more data is a size error.
            self._delete_quietly(key)
            raise errors.Invalid(f"Size exceeds: the image data is longer than its declared {size} bytes.")
        return size

    def _put_multipart(self, key: str, reader: base.Readable, size: int | None) -> int:
        part_size = self.part_size
        if size:
            part_size = max(part_size, -(-size // MAX_PARTS))
        first = _read_exactly(reader, part_size)
        if len(first) < part_size:
            # Everything fits in one part (also a zero-byte image): a plain PUT,
            # since S3 refuses a multipart upload without parts.
            _check_size(len(first), size)
            with self._translating(f"upload {self.bucket}/{key}"):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=first)
            return len(first)
        with self._translating(f"start multipart upload {self.bucket}/{key}"):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        try:
            parts, written = self._upload_parts(key, upload_id, reader, first, part_size, size)
            _check_size(written, size)
            with self._translating(f"complete multipart upload {self.bucket}/{key}"):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self._abort(key, upload_id)
            raise
        return written

    def _upload_parts(self, key, upload_id, reader, first, part_size, size):
        """Upload parts on a pool; at most ``threads`` parts are read ahead and held in memory."""
        slots = threading.BoundedSemaphore(self.threads)
        futures: list[concurrent.futures.Future] = []
        written = 0
        number = 0

        def upload(number: int, data: bytes) -> dict[str, Any]:
            try:
                with self._translating(f"upload part {number} of {self.bucket}/{key}"):
                    resp = self._client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                    )
                return {"ETag": resp["ETag"], "PartNumber": number}
            finally:
                slots.release()

        with concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix=f"s3-{self.store.id}") as pool:
            try:
                data = first
                while data:
                    number += 1
                    if number > MAX_PARTS:
                        raise base.StoreFull(f"Image exceeds S3's {MAX_PARTS} parts of {part_size} bytes.")
                    written += len(data)
                    slots.acquire()
                    futures.append(pool.submit(upload, number, data))
                    # Fail fast: stop reading the client once a part has failed.
                    for done in (f for f in futures if f.done()):
                        done.result()
                    if not size:
                        part_size = self.part_size << (number // PARTS_PER_STEP)
                    data = _read_exactly(reader, part_size)
                return [f.result() for f in futures], written
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _abort(self, key: str, upload_id: str) -> None:
        # Parts still in flight may complete after an abort and be kept, so
        # the abort runs after the pool has drained (the with-block above).
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001 - the original error matters more; this one is logged
            LOG.info("store %s: multipart upload of %s/%s not aborted yet: %s", self.store.id, self.bucket, key, exc)

            self.pending_removals.defer(
                key,
                f"multipart upload {upload_id} of s3 {self.bucket}/{key}",
                functools.partial(self.abort_upload, self.url_of(key), upload_id),
            )

    def _delete_quietly(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            LOG.warning("store %s: could not remove partial %s/%s: %s", self.store.id, self.bucket, key, exc)

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        bucket, key = self.parse(url)
        size = self._head(bucket, key)
        offset = min(max(offset, 0), size)
        remaining = size - offset if length is None else max(0, min(length, size - offset))
        if remaining == 0:
            return base.DataStream(iter(()), size=size, length=0)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if offset or remaining != size:
            kwargs["Range"] = f"bytes={offset}-{offset + remaining - 1}"
        with self._translating(f"read {bucket}/{key}", missing=True):
            body = self._client.get_object(**kwargs)["Body"]
        return base.DataStream(self._chunks(body, bucket, key), size=size, length=remaining, on_close=body.close)

    def _chunks(self, body, bucket: str, key: str):
        with self._translating(f"read {bucket}/{key}"):
            yield from body.iter_chunks(READ_CHUNK)

    def _head(self, bucket: str, key: str) -> int:
        with self._translating(f"read {bucket}/{key}", missing=True):
            return int(self._client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def get_size(self, url: str) -> int:
        return self._head(*self.parse(url))

    def delete(self, url: str) -> None:
        bucket, key = self.parse(url)
        self._head(bucket, key)
        with self._translating(f"delete {bucket}/{key}", missing=True):
            self._client.delete_object(Bucket=bucket, Key=key)

    def iter_objects(self, scope: base.ListingScope | None = None) -> Iterator[base.ListedObject]:
        """Every object of the store's bucket (list_objects_v2, page by page); none if it does not exist."""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        with self._translating(f"list bucket {self.bucket}"):
            try:
                for page in pages:
                    for item in page.get("Contents", ()):
                        yield base.ListedObject(
                            key=item["Key"],
                            url=self.url_of(item["Key"]),
                            size=int(item["Size"]),
                            modified=item["LastModified"].timestamp(),
                        )
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "NoSuchBucket":
                    raise

    def object_key(self, url: str) -> str:
        return self.parse(url)[1]

    def iter_unfinished_uploads(self) -> Iterator[base.UnfinishedUpload]:
        """The bucket's multipart uploads never completed nor aborted (a process that died mid-upload,
        an abort the endpoint did not answer): their parts take space and no listing shows them."""
        pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
        with self._translating(f"list multipart uploads of bucket {self.bucket}"):
            try:
                for page in pages:
                    for item in page.get("Uploads", ()):
                        yield base.UnfinishedUpload(
                            key=item["Key"],
                            upload_id=item["UploadId"],
                            url=self.url_of(item["Key"]),
                            started=item["Initiated"].timestamp(),
                        )
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "NoSuchBucket":
                    raise

    def abort_upload(self, url: str, upload_id: str) -> None:
        bucket, key = self.parse(url)
        with self._translating(f"abort multipart upload {upload_id} of {bucket}/{key}", missing=True):
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def close(self) -> None:
        for client in (self._client, self._probe_client):
            client.close()

    # -- errors ----------------------------------------------------------------------

    def _translating(self, what: str, missing: bool = False):
        return _Translate(self.store.id, what, missing)


class _Translate(base.TranslatedErrors):
    """Turn botocore errors into store errors at the driver edge (never with credentials in them)."""

    def translate(self, exc: Exception, where: str) -> errors.GlanceliteError | None:
        if isinstance(exc, botocore.exceptions.ClientError):
            status, code = _status(exc), _code(exc)
            if status == 404 and self.missing:
                return base.StoreNotFound(f"Image data not found: {where} ({code}).")
            if code in ("EntityTooLarge", "QuotaExceeded") or status == 507:
                return base.StoreFull(f"Image storage media is full: {where} ({code}).")
            if status in (401, 403):
                return base.StoreWriteDenied(f"S3 refused the request: {where} ({code}).")
            return base.StoreUnavailable(f"S3 error: {where} ({code}, HTTP {status}).")
        if isinstance(exc, _CONNECTION_ERRORS) or isinstance(exc, botocore.exceptions.BotoCoreError):
            return base.StoreUnavailable(f"S3 endpoint unreachable: {where} ({type(exc).__name__}).")
        return None


class _ExactReader:
    """File-like body for one streamed PUT: exactly ``size`` bytes or an error.

    botocore swallows exceptions raised inside the body into its own; the
    caller's error (size cap, client gone) is kept in ``error`` and re-raised.
    """

    def __init__(self, reader: base.Readable, size: int):
        self._reader = reader
        self._left = size
        self.consumed = False
        self.error: BaseException | None = None

    def read(self, amount: int = -1) -> bytes:
        self.consumed = True
        if self._left <= 0:
            return b""
        want = self._left if amount is None or amount < 0 else min(amount, self._left)
        try:
            data = self._reader.read(want)
            if not data:
                raise errors.Invalid(f"Size mismatch: image data ended {self._left} bytes short of its size.")
        except BaseException as exc:
            self.error = exc
            raise
        self._left -= len(data)
        return data


def _read_exactly(reader: base.Readable, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the stream."""
    parts = []
    left = size
    while left > 0:
        chunk = reader.read(min(left, 4 * MiB))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _check_size(written: int, size: int | None) -> None:
    if size and written != size:
        raise errors.Invalid(f"Size mismatch: expected {size} bytes, got {written}.")


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _redact(url: str) -> str:
    """A location with any ``user:secret@`` part removed, for messages and logs."""
    split = urllib.parse.urlsplit(url)
    return split._replace(netloc=split.netloc.rpartition("@")[2]).geturl()
