"""Swift store (python-swiftclient), single tenant: every image in one container.

Credentials come from ``swift_store_auth_address``/``_user``/``_key`` or from a
reference in ``swift_store_config_file``. Locations never carry them:
``swift+config://<reference>/<container>/<obj>`` with a references file,
otherwise ``swift+http(s)://<auth host/path>/<container>/<obj>``.
# COMPAT: glance_store embeds ``user:key@`` in the second form; we read such
# locations (ignoring the embedded keys) but never write them.

Images at or above ``swift_store_large_object_size`` (and all of unknown size)
are written as Glance writes them: segments ``<obj>-00001``, ``<obj>-00002``...
in the same container, then a manifest ``<obj>`` with ``X-Object-Manifest:
<container>/<obj>-`` (a DLO, readable by Glance). Each segment is streamed,
never held whole. The token is refreshed before any request once it is within
``swift_store_expire_soon_interval`` seconds of expiring, so a long upload
outlives it; a request refused with 401 that can be replayed is retried once
after re-authenticating. A failed upload deletes the segments it wrote.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import threading
import time
import urllib.parse
from typing import Any

import requests
import swiftclient.client as sc
from swiftclient.exceptions import ClientException

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability, without

LOG = logging.getLogger(__name__)
# swiftclient logs every request (with the start of the token) at INFO; keep that out of
# the service log unless the operator configured the logger explicitly.
if logging.getLogger("swiftclient").level == logging.NOTSET:
    logging.getLogger("swiftclient").setLevel(logging.WARNING)

MiB = 1024 * 1024
READ_CHUNK = 64 * 1024
WRITE_CHUNK = 64 * 1024
TIMEOUT = 60
PROBE_TIMEOUT = 3


class _Credentials:
    """Authenticates and hands out a token that is not about to expire (thread-safe)."""

    def __init__(self, store_id: str, auth_url: str, user: str, key: str, version: str, options: dict[str, Any]):
        self.store_id, self.auth_url, self.user, self.key, self.version = store_id, auth_url, user, key, version
        self.options = options
        self._lock = threading.Lock()
        self._token: str | None = None
        self._storage_url: str | None = None
        self._expires = 0.0

    def get(self, expire_soon: float, force: bool = False) -> tuple[str, str]:
        """(storage_url, token), re-authenticating when the token expires within ``expire_soon`` s."""
        with self._lock:
            if force or self._token is None or self._expires - time.monotonic() <= expire_soon:
                self._authenticate()
            assert self._storage_url and self._token
            return self._storage_url, self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _authenticate(self) -> None:
        timeout = self.options.get("timeout", TIMEOUT)
        verify: Any = self.options.get("cacert") or not self.options.get("insecure")
        try:
            if self.version == "1":
                resp = requests.get(
                    self.auth_url,
                    headers={"X-Auth-User": self.user, "X-Auth-Key": self.key},
                    timeout=timeout,
                    verify=verify,
                )
                if resp.status_code in (401, 403):
                    raise base.StoreUnavailable(f"Swift refused the credentials of store {self.store_id}.")
                resp.raise_for_status()
                token, url = resp.headers.get("X-Auth-Token"), resp.headers.get("X-Storage-Url")
                life = float(resp.headers.get("X-Auth-Token-Expires") or 86400)
            else:
                token, url, life = self._keystone(timeout, verify)
        except requests.RequestException as exc:
            raise base.StoreUnavailable(f"Swift auth endpoint of store {self.store_id} unreachable: {exc}") from exc
        if not token or not url:
            raise base.StoreUnavailable(f"Swift auth of store {self.store_id} returned no token or storage URL.")
        self._token, self._storage_url = token, self.options.get("endpoint") or url
        self._expires = time.monotonic() + life

    def _keystone(self, timeout: float, verify: Any) -> tuple[str, str, float]:
        from keystoneauth1 import exceptions as ks_exc
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v2, v3

        project, _, user = self.user.rpartition(":")
        if self.version == "2":
            auth = v2.Password(auth_url=self.auth_url, username=user, password=self.key, tenant_name=project)
        else:
            auth = v3.Password(
                auth_url=self.auth_url,
                username=user,
                password=self.key,
                project_name=project,
                user_domain_id=self.options.get("user_domain_id") or "default",
                project_domain_id=self.options.get("project_domain_id") or "default",
            )
        sess = ks_session.Session(auth=auth, verify=verify, timeout=timeout)
        try:
            access = auth.get_access(sess)
            url = self.options.get("endpoint") or access.service_catalog.url_for(
                service_type="object-store", interface="public", region_name=self.options.get("region")
            )
        except ks_exc.Unauthorized as exc:
            raise base.StoreUnavailable(f"Keystone refused the credentials of store {self.store_id}.") from exc
        except ks_exc.ClientException as exc:
            raise base.StoreUnavailable(f"Keystone auth for store {self.store_id} failed: {exc}") from exc
        life = (access.expires.timestamp() - time.time()) if access.expires else 3600.0
        return access.auth_token, url, life


class SwiftDriver(base.Driver):
    TYPE = "swift"
    SCHEMES = ("swift", "swift+http", "swift+https", "swift+config")
    # Swift serves ranges (also of DLOs); all per-operation state is local, and
    # the token is shared under a lock, so one instance serves every request.
    STATIC_CAPABILITIES = Capability.RW_ACCESS | Capability.READ_RANDOM | Capability.DRIVER_REUSABLE

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        self.container = str(self.option("swift_store_container", "glance"))
        self.create_container = bool(self.option("swift_store_create_container_on_put", False))
        self.large_object_size = int(self.option("swift_store_large_object_size", 5120)) * MiB
        self.segment_size = int(self.option("swift_store_large_object_chunk_size", 200)) * MiB
        if self.large_object_size < 1 or self.segment_size < 1:
            raise errors.ConfigError(store.id, "swift_store_large_object_chunk_size", "sizes must be at least 1 MiB")
        self.expire_soon = float(self.option("swift_store_expire_soon_interval", 60))
        self.retry_get_count = int(self.option("swift_store_retry_get_count", 0))
        self.insecure = bool(self.option("swift_store_auth_insecure", False))
        self.cacert = self.option("swift_store_cacert")
        self.reference: str | None = None
        self.credentials = self._credentials()

    def _credentials(self) -> _Credentials:
        conn_opts = {
            "insecure": self.insecure,
            "cacert": self.cacert,
            "region": self.option("swift_store_region"),
            "endpoint": self.option("swift_store_endpoint"),
        }
        version = str(self.option("swift_store_auth_version", "3"))
        config_file = self.option("swift_store_config_file")
        if config_file:
            self.reference = str(self.option("default_swift_reference", "ref1"))
            parser = configparser.ConfigParser()
            if not parser.read(config_file):
                raise errors.ConfigError(self.store.id, "swift_store_config_file", f"cannot read {config_file}")
            if not parser.has_section(self.reference):
                raise errors.ConfigError(
                    self.store.id, "default_swift_reference", f"{config_file} has no section [{self.reference}]"
                )
            ref = dict(parser.items(self.reference))
            auth, user, key = ref.get("auth_address"), ref.get("user"), ref.get("key")
            version = str(ref.get("auth_version", version))
            conn_opts.update(user_domain_id=ref.get("user_domain_id"), project_domain_id=ref.get("project_domain_id"))
            where = "swift_store_config_file"
        else:
            auth = self.option("swift_store_auth_address")
            user, key = self.option("swift_store_user"), self.option("swift_store_key")
            where = "swift_store_auth_address"
        if not (auth and user and key):
            raise errors.ConfigError(self.store.id, where, "needs an auth address, a user and a key")
        if version not in ("1", "2", "3"):
            raise errors.ConfigError(self.store.id, "swift_store_auth_version", "must be 1, 2 or 3")
        auth = str(auth)
        if "://" not in auth:
            auth = "https://" + auth
        self.auth_address = auth
        return _Credentials(self.store.id, auth, str(user), str(key), version, conn_opts)

    # -- locations -------------------------------------------------------------------

    def url_of(self, obj: str) -> str:
        path = f"{urllib.parse.quote(self.container)}/{urllib.parse.quote(obj)}"
        if self.reference:
            return f"swift+config://{urllib.parse.quote(self.reference)}/{path}"
        split = urllib.parse.urlsplit(self.auth_address)
        return f"swift+{split.scheme}://{split.netloc}{split.path.rstrip('/')}/{path}"

    def parse(self, url: str) -> tuple[str, str]:
        """(container, object) of a location: the last two path elements."""
        split = urllib.parse.urlsplit(url)
        if split.scheme not in self.SCHEMES or url.count("://") != 1:
            raise base.BadStoreUri(f"Location is not a swift location: {_redact(url)}")
        pieces = (split.netloc.rpartition("@")[2] + split.path).rstrip("/").split("/")
        if len(pieces) < 3 or not pieces[-1] or not pieces[-2]:
            raise base.BadStoreUri(f"swift location needs a container and an object: {_redact(url)}")
        if split.scheme == "swift+config" and urllib.parse.unquote(split.netloc) != self.reference:
            raise base.BadStoreUri(f"Location {url} names a credentials reference store {self.store.id} does not use.")
        container, obj = urllib.parse.unquote(pieces[-2]), urllib.parse.unquote(pieces[-1])
        if container != self.container:
            # A store reads only its own container: two swift stores never serve each other's data.
            raise base.BadStoreUri(
                f"Location {_redact(url)} is not in container {self.container} of store {self.store.id}."
            )
        return container, obj

    def owns(self, url: str) -> bool:
        try:
            container, _ = self.parse(url)
        except errors.GlanceliteError:
            return False
        if self.reference:
            return url.startswith(f"swift+config://{urllib.parse.quote(self.reference)}/")
        auth = urllib.parse.urlsplit(self.auth_address)
        loc = urllib.parse.urlsplit(url)
        return container == self.container and loc.netloc.rpartition("@")[2] == auth.netloc

    # -- plumbing --------------------------------------------------------------------

    def _conn(self, timeout: float = TIMEOUT):
        url, _ = self.credentials.get(self.expire_soon)
        return sc.http_connection(url, insecure=self.insecure, cacert=self.cacert, timeout=timeout)

    def _call(self, what: str, func, *args, replayable: bool = True, missing: bool = False, conn=None, **kwargs):
        """Run a swiftclient call with a fresh-enough token; 401 -> re-auth and retry once if replayable."""
        for attempt in (1, 2):
            url, token = self.credentials.get(self.expire_soon, force=attempt == 2)
            try:
                return func(url, token, *args, http_conn=conn, **kwargs)
            except ClientException as exc:
                if exc.http_status == 401 and attempt == 1 and replayable:
                    LOG.info("store %s: token refused during %s; re-authenticating", self.store.id, what)
                    continue
                raise _translate(self.store.id, what, exc, missing) from exc
            except (requests.RequestException, OSError) as exc:
                raise base.StoreUnavailable(f"Swift of store {self.store.id} unreachable during {what}: {exc}") from exc
        raise AssertionError("unreachable")

    # -- live state ------------------------------------------------------------------

    def probe(self) -> base.Probe:
        caps = self.STATIC_CAPABILITIES
        if self.store.read_only:
            caps = without(caps, Capability.WRITE_ACCESS)
        try:
            conn = self._conn(PROBE_TIMEOUT)
            self._call("probe", sc.head_container, self.container, conn=conn, missing=True)
        except base.StoreNotFound:
            if self.create_container:
                return base.Probe(caps)
            return base.Probe(Capability.DRIVER_REUSABLE, f"container {self.container} does not exist")
        except errors.GlanceliteError as exc:
            return base.Probe(Capability.DRIVER_REUSABLE, exc.message, unreachable=True)
        return base.Probe(caps)

    def live_capabilities(self) -> Capability:
        return self.probe().capabilities

    def properties(self) -> dict[str, Any]:
        return {"container": self.container, "large_object_size": self.large_object_size}

    # -- operations ------------------------------------------------------------------

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        conn = self._conn()
        self._ensure_container(conn)
        obj = image_id
        try:
            self._call("check for a duplicate", sc.head_object, self.container, obj, conn=conn, missing=True)
        except base.StoreNotFound:
            pass
        else:
            raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.")
        if size and size < self.large_object_size:
            written = self._put_single(conn, obj, reader, size)
        else:
            written = self._put_segmented(conn, obj, reader, size or None)
        LOG.info("store %s: wrote %d bytes to swift %s/%s", self.store.id, written, self.container, obj)
        return base.StoredObject(url=self.url_of(obj), size=written, metadata={})

    def _ensure_container(self, conn) -> None:
        # Checked on every add (one HEAD): a container removed behind our back comes back.
        try:
            self._call("check the container", sc.head_container, self.container, conn=conn, missing=True)
        except base.StoreNotFound:
            if not self.create_container:
                raise base.StoreUnavailable(
                    f"Container {self.container} of store {self.store.id} does not exist and "
                    "swift_store_create_container_on_put is off."
                ) from None
            self._call("create the container", sc.put_container, self.container, conn=conn)

    def _put_single(self, conn, obj: str, reader: base.Readable, size: int) -> int:
        body = _SegmentReader(reader, size, exact=True)
        with base.removing_on_failure(lambda: self._delete_objects([obj])):
            self._put(conn, obj, body, size)
            _expect_eof(reader, size)
        return size

    def _put_segmented(self, conn, obj: str, reader: base.Readable, size: int | None) -> int:
        written: list[str] = []
        total = 0
        with base.removing_on_failure(lambda: self._delete_objects([*written, obj])):
            number = 0
            while True:
                remaining = None if size is None else size - total
                if remaining is not None and remaining <= 0 and number:
                    break
                seg_len = self.segment_size if remaining is None else min(self.segment_size, remaining)
                body = _SegmentReader(reader, seg_len, exact=size is not None)
                if not body.peek():
                    break  # never write an empty segment (a zero-byte image is a manifest alone)
                number += 1
                name = f"{obj}-{number:05d}"
                written.append(name)
                self._put(conn, name, body, seg_len if size is not None else None)
                total += body.count
                if size is None and body.count < seg_len:
                    break
            if size is not None:
                if total != size:
                    raise errors.Invalid(f"Size mismatch: expected {size} bytes, got {total}.")
                _expect_eof(reader, size)
            manifest = {"X-Object-Manifest": f"{self.container}/{obj}-"}
            self._call(
                f"write manifest {obj}",
                sc.put_object,
                self.container,
                obj,
                conn=conn,
                contents=b"",
                content_length=0,
                headers=manifest,
            )
        return total

    def _put(self, conn, name: str, body: _SegmentReader, length: int | None) -> None:
        """Stream one object; the image reader's own error wins over what swiftclient made of it."""
        try:
            self._call(
                f"upload {name}",
                sc.put_object,
                self.container,
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

    def _delete_objects(self, names: list[str]) -> None:
        """Best effort: a failed upload must not leave segments behind (failures are logged)."""
        conn = None
        with contextlib.suppress(errors.GlanceliteError):
            conn = self._conn()
        for name in names:
            try:
                self._call(f"delete {name}", sc.delete_object, self.container, name, conn=conn, missing=True)
            except base.StoreNotFound:
                pass
            except errors.GlanceliteError as exc:
                LOG.warning("store %s: could not delete %s/%s: %s", self.store.id, self.container, name, exc.message)

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        container, obj = self.parse(url)
        conn = self._conn()
        size = self._size(conn, container, obj)
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
        retries = self.retry_get_count
        while remaining > 0:
            headers = {}
            if offset or remaining != size:
                headers["Range"] = f"bytes={offset}-{offset + remaining - 1}"
            _, body = self._call(
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
                LOG.info("store %s: resuming read of %s at byte %d", self.store.id, obj, offset)
                conn = self._conn()

    def _size(self, conn, container: str, obj: str) -> int:
        headers = self._call(f"read {obj}", sc.head_object, container, obj, conn=conn, missing=True)
        return int(headers.get("content-length", 0))

    def get_size(self, url: str) -> int:
        container, obj = self.parse(url)
        return self._size(self._conn(), container, obj)

    def delete(self, url: str) -> None:
        container, obj = self.parse(url)
        conn = self._conn()
        headers = self._call(f"delete {obj}", sc.head_object, container, obj, conn=conn, missing=True)
        if str(headers.get("x-static-large-object", "")).lower() == "true":
            self._call(
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
            _, listing = self._call(
                f"list segments of {obj}", sc.get_container, seg_container, conn=conn, prefix=prefix, full_listing=True
            )
            for entry in listing:
                try:
                    self._call(
                        f"delete {entry['name']}",
                        sc.delete_object,
                        seg_container,
                        entry["name"],
                        conn=conn,
                        missing=True,
                    )
                except base.StoreNotFound:
                    pass
        self._call(f"delete {obj}", sc.delete_object, container, obj, conn=conn, missing=True)


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


def _redact(url: str) -> str:
    split = urllib.parse.urlsplit(url)
    return split._replace(netloc=split.netloc.rpartition("@")[2]).geturl()
