"""Swift store (python-swiftclient): single tenant (one container) or multi-tenant.

Single tenant: every image in one container of the store's own account.

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

Multi-tenant (``swift_store_multi_tenant``, glance_store's MultiTenantStore): each
image goes into a container ``<swift_store_container>_<image_id>`` of the *caller's*
account, the ``swift_store_service_type`` endpoint of the caller's service catalog
(``swift_store_region``, ``swift_store_endpoint_type``; ``swift_store_endpoint``
overrides it), written, read and deleted with the caller's token. The location
carries the storage URL and no credentials:
``swift+https://<storage URL without scheme>/<container>_<image_id>/<image_id>``.
``set_acls`` maps image visibility/members onto the container's read ACL.
"""

from __future__ import annotations

import configparser
import contextlib
import copy
import logging
import urllib.parse
from collections.abc import Sequence
from typing import Any

import requests
import swiftclient.client as sc
from swiftclient.exceptions import ClientException

from glancelite import errors
from glancelite.context import RequestContext
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability, without
from glancelite.store.drivers.swift_auth import CallerToken, Credentials, storage_url_from_catalog

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
ENDPOINT_TYPES = ("publicURL", "internalURL", "adminURL")


class SwiftDriver(base.Driver):
    TYPE = "swift"
    SCHEMES = ("swift", "swift+http", "swift+https", "swift+config")
    # Swift serves ranges (also of DLOs); all per-operation state is local, and
    # the token is shared under a lock, so one instance serves every request.
    STATIC_CAPABILITIES = Capability.RW_ACCESS | Capability.READ_RANDOM | Capability.DRIVER_REUSABLE

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        self.container = str(self.option("swift_store_container", "glance"))
        self.base_container = self.container  # multi-tenant: the prefix of the per-image containers
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
        self.multi_tenant = bool(self.option("swift_store_multi_tenant", False))
        self.context: RequestContext | None = None  # set on the per-caller views of a multi-tenant store
        self.per_caller = self.multi_tenant
        if self.multi_tenant:
            self._multi_tenant_settings()
        else:
            self.credentials: Credentials | CallerToken = self._credentials()

    def _multi_tenant_settings(self) -> None:
        if self.option("swift_store_config_file"):
            # glance_store refuses this pair too: the references file is the single-tenant login.
            raise errors.ConfigError(
                self.store.id, "swift_store_multi_tenant", "cannot be combined with swift_store_config_file"
            )
        self.endpoint_type = str(self.option("swift_store_endpoint_type", "publicURL"))
        if self.endpoint_type not in ENDPOINT_TYPES:
            raise errors.ConfigError(self.store.id, "swift_store_endpoint_type", f"must be one of {ENDPOINT_TYPES}")
        self.service_type = str(self.option("swift_store_service_type", "object-store"))
        self.region = self.option("swift_store_region")
        self.endpoint = self.option("swift_store_endpoint")
        self.admin_tenants = [str(t) for t in self.option("swift_store_admin_tenants", []) or []]
        self.credentials = CallerToken(self.store.id, None)

    def _credentials(self) -> Credentials:
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
        return Credentials(self.store.id, auth, str(user), str(key), version, conn_opts)

    # -- locations -------------------------------------------------------------------

    def url_of(self, obj: str) -> str:
        path = f"{urllib.parse.quote(self.container)}/{urllib.parse.quote(obj)}"
        if self.multi_tenant:
            storage_url, _ = self.credentials.get()
            return multi_tenant_url(storage_url, self.container, obj)
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
        if self.multi_tenant:
            if split.scheme == "swift+config" or not container.startswith(f"{self.base_container}_"):
                raise base.BadStoreUri(
                    f"Location {_redact(url)} is not in a {self.base_container}_<image> container of "
                    f"multi-tenant store {self.store.id}."
                )
            return container, obj
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
        if self.multi_tenant:
            return True
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
                if exc.http_status == 401 and attempt == 1 and replayable and self.credentials.refreshable:
                    LOG.info("store %s: token refused during %s; re-authenticating", self.store.id, what)
                    continue
                if self.multi_tenant and exc.http_status in (401, 403):
                    raise CallerRefused(
                        f"Swift refused the caller's token: store {self.store.id} could not {what} "
                        f"(HTTP {exc.http_status})."
                    ) from exc
                raise _translate(self.store.id, what, exc, missing) from exc
            except (requests.RequestException, OSError) as exc:
                raise base.StoreUnavailable(f"Swift of store {self.store.id} unreachable during {what}: {exc}") from exc
        raise AssertionError("unreachable")

    # -- multi-tenant: acting for the caller -------------------------------------------

    def for_context(self, context: RequestContext | None) -> SwiftDriver:
        """Multi-tenant: a view acting for ``context``'s caller (its token, its catalog); else self."""
        if not self.multi_tenant:
            return self
        view = copy.copy(self)
        view.context = context
        view.credentials = CallerToken(self.store.id, context.auth_token if context else None)
        return view

    def _as_caller(self, storage_url: str, container: str) -> SwiftDriver:
        view = copy.copy(self)
        view.container = container
        token = self.context.auth_token if self.context else None
        view.credentials = CallerToken(self.store.id, token, storage_url)
        return view

    def _caller_storage_url(self) -> str:
        if self.context is None or not self.context.auth_token:
            self.credentials.get()  # raises: no caller to act for
        url = self.endpoint or storage_url_from_catalog(
            self.context.service_catalog if self.context else (),
            service_type=self.service_type,
            region=self.region,
            endpoint_type=self.endpoint_type,
        )
        if not url:
            where = f" in region {self.region}" if self.region else ""
            raise base.StoreUnavailable(
                f"Multi-tenant swift store {self.store.id}: the caller's service catalog has no "
                f"{self.service_type} {self.endpoint_type} endpoint{where}."
            )
        return str(url).rstrip("/")

    def _for_location(self, url: str) -> tuple[SwiftDriver, str, str]:
        """(driver acting on the location's account, container, object)."""
        container, obj = self.parse(url)
        if not self.multi_tenant:
            return self, container, obj
        return self._as_caller(multi_tenant_storage_url(url), container), container, obj

    def set_acls(self, url: str, *, public: bool, read_projects: Sequence[str]) -> None:
        """glance_store's MultiTenantStore.set_acls: who may read the image's container.

        Public: ``*:*`` (every authenticated project); otherwise the member projects;
        ``swift_store_admin_tenants`` get the write ACL (as in glance_store).
        """
        if not self.multi_tenant:
            return
        drv, container, _ = self._for_location(url)
        if public:
            read = "*:*"
        else:
            read = ",".join(f"{p}:*" for p in read_projects)
        write = ",".join(f"{p}:*" for p in self.admin_tenants)
        headers = {"X-Container-Read": read, "X-Container-Write": write}
        drv._call(f"set the ACLs of {container}", sc.post_container, container, headers, missing=True)

    # -- live state ------------------------------------------------------------------

    def probe(self) -> base.Probe:
        caps = self.STATIC_CAPABILITIES
        if self.store.read_only:
            caps = without(caps, Capability.WRITE_ACCESS)
        if self.multi_tenant:
            return base.Probe(caps)  # every account is a caller's: nothing to probe without one
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
        if self.multi_tenant:
            caller = self._as_caller(self._caller_storage_url(), f"{self.base_container}_{image_id}")
            return caller._add(image_id, reader, size)
        return self._add(image_id, reader, size)

    def _add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
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
        drv, container, obj = self._for_location(url)
        return drv._get(container, obj, offset, length)

    def _get(self, container: str, obj: str, offset: int, length: int | None) -> base.DataStream:
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
        drv, container, obj = self._for_location(url)
        return drv._size(drv._conn(), container, obj)

    def delete(self, url: str) -> None:
        drv, container, obj = self._for_location(url)
        drv._delete(container, obj)
        if self.multi_tenant:
            # glance_store's MultiTenantStore removes the image's own container too.
            with contextlib.suppress(base.StoreNotFound):
                drv._call(f"delete container {container}", sc.delete_container, container, missing=True)

    def _delete(self, container: str, obj: str) -> None:
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


class CallerRefused(errors.Forbidden):
    default_message = "The object store refused the caller's token."


def multi_tenant_url(storage_url: str, container: str, obj: str) -> str:
    """glance_store's multi-tenant location: the storage URL without its scheme, after swift+http(s)."""
    split = urllib.parse.urlsplit(storage_url)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise base.BadStoreUri(f"Not an http(s) storage URL: {storage_url}")
    account = f"{split.netloc}{split.path}".strip("/")
    return f"swift+{split.scheme}://{account}/{urllib.parse.quote(container)}/{urllib.parse.quote(obj)}"


def multi_tenant_storage_url(url: str) -> str:
    """The storage URL a multi-tenant location names: swift+http -> http, swift(+https) -> https."""
    split = urllib.parse.urlsplit(url)
    host = split.netloc.rpartition("@")[2]  # COMPAT: credentials in such a URI are ignored
    account = (host + split.path).rstrip("/").rsplit("/", 2)[0]
    return f"{'http' if split.scheme == 'swift+http' else 'https'}://{account}"


def _redact(url: str) -> str:
    split = urllib.parse.urlsplit(url)
    return split._replace(netloc=split.netloc.rpartition("@")[2]).geturl()
