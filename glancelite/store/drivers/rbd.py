"""RBD store (Debian's python3-rados / python3-rbd): one RBD image per Glance image.

Written as Glance writes them, so Nova and Cinder can clone copy-on-write:
a format-2 image with the layering feature, object size ``rbd_store_chunk_size``
MiB, and a protected snapshot ``snap``; the location is
``rbd://<fsid>/<pool>/<image>/snap``. An image of unknown size grows in
doubling steps (from one chunk up to 8 GiB per step) and is trimmed to the
exact size at the end, never resized per chunk.

A partial image an add could not remove (the cluster stopped answering mid-write) is
removed by ``pending_removals`` once it answers again (store/cleanup.py).

Deleting an image that still has clones answers InUse (409) before anything
is touched: the snapshot stays protected and the data intact (glance_store
LP #1954883 could leave such an image without its snapshot).

The driver declares DRIVER_REUSABLE and then, only then, keeps one cluster
connection open across operations (librados handles are thread-safe); a
connection that fails is dropped and rebuilt on the next operation.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from typing import Any

import rados
import rbd

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability
from glancelite.store.cleanup import PendingRemovals
from glancelite.store.drivers.rbd_options import OPTIONS

LOG = logging.getLogger(__name__)

MiB = 1024 * 1024
MAX_GROW_STEP = 8 * 1024 * MiB
SNAPSHOT = "snap"
PROBE_TIMEOUT = 5
PROBE_OBJECT = "glancelite.probe"


class RbdDriver(base.Driver):
    TYPE = "rbd"
    SCHEMES = ("rbd",)
    STATIC_CAPABILITIES = Capability.RW_ACCESS | Capability.READ_RANDOM | Capability.DRIVER_REUSABLE
    OPTIONS = OPTIONS

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        chunk_mib = self.option("rbd_store_chunk_size")
        if chunk_mib < 1:
            raise errors.ConfigError(store.id, "rbd_store_chunk_size", "must be at least 1 (MiB)")
        self.chunk_size = chunk_mib * MiB
        self.order = int(math.log2(self.chunk_size))
        self.pool = self.option("rbd_store_pool")
        self.user = self.option("rbd_store_user") or None
        self.conf_file = self.option("rbd_store_ceph_conf") or None
        self.connect_timeout = self.option("rados_connect_timeout")
        self.thin = self.option("rbd_thin_provisioning")
        self.reuse = bool(self.STATIC_CAPABILITIES & Capability.DRIVER_REUSABLE)
        self._cluster: rados.Rados | None = None
        self._lock = threading.Lock()
        # A librados handle left to interpreter teardown can hang the exit: shut it down
        # when the driver is collected or the process exits, whichever comes first.
        self._handles: list[rados.Rados] = []
        weakref.finalize(self, _shutdown_all, self._handles)
        # Partial images the cluster could not remove when their add failed, retried until it answers.
        self.pending_removals = PendingRemovals(store.id)

    # -- connection ------------------------------------------------------------------

    def _new_cluster(self, timeout: int) -> rados.Rados:
        conf: dict[str, str] = {}
        if timeout >= 0:
            # COMPAT: glance_store's meaning: >= 0 bounds every mon/osd operation, 0 waits forever.
            conf = {
                key: str(timeout) for key in ("rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout")
            }
        cluster = rados.Rados(conffile=self.conf_file, rados_id=self.user, conf=conf)
        try:
            cluster.connect(timeout=max(timeout, 0))
        except BaseException:
            cluster.shutdown()
            raise
        return cluster

    @contextlib.contextmanager
    def _ioctx(self, pool: str | None = None):
        """(cluster, I/O context on ``pool``); the cluster handle is kept when the driver is reusable."""
        pool = pool or self.pool
        with self._translating(f"connect to the Ceph cluster for pool {pool}"):
            if self.reuse:
                with self._lock:
                    if self._cluster is None:
                        self._cluster = self._new_cluster(self.connect_timeout)
                        self._handles.append(self._cluster)
                    cluster = self._cluster
            else:
                cluster = self._new_cluster(self.connect_timeout)
        try:
            with self._translating(f"open pool {pool}"):
                ioctx = cluster.open_ioctx(pool)
            try:
                yield cluster, ioctx
            finally:
                ioctx.close()
        except (rados.ConnectionShutdown, rados.TimedOut, StoreConnectionLost):
            self._drop(cluster)
            raise
        finally:
            if not self.reuse:
                cluster.shutdown()

    def _drop(self, cluster: rados.Rados) -> None:
        with self._lock:
            if self._cluster is cluster:
                self._cluster = None
                _shutdown_all([cluster])
                with contextlib.suppress(ValueError):
                    self._handles.remove(cluster)

    def close(self) -> None:
        with self._lock:
            self._cluster = None
            _shutdown_all(self._handles)

    # -- locations -------------------------------------------------------------------

    def parse(self, url: str) -> tuple[str, str, str | None]:
        """(pool, image, snapshot) of ``rbd://fsid/pool/image/snap`` or the legacy ``rbd://image``."""
        if not url.startswith("rbd://"):
            raise base.BadStoreUri(f"Location is not an rbd location: {url}")
        pieces = [urllib.parse.unquote(p) for p in url[len("rbd://") :].split("/")]
        if len(pieces) == 1 and pieces[0]:
            return self.pool, pieces[0], None
        if len(pieces) == 4 and all(pieces):
            if pieces[1] != self.pool:
                # Unlike glance_store (the location's pool wins), a store reads only its own pool:
                # two rbd stores never serve each other's images. After changing rbd_store_pool,
                # configure the old pool as a store of its own.
                raise base.BadStoreUri(f"Location {url} is not in pool {self.pool} of store {self.store.id}.")
            return pieces[1], pieces[2], pieces[3]
        raise base.BadStoreUri(f"rbd location must be rbd://<fsid>/<pool>/<image>/<snapshot>: {url}")

    def url_of(self, fsid: str, image: str) -> str:
        parts = (fsid, self.pool, image, SNAPSHOT)
        return "rbd://" + "/".join(urllib.parse.quote(p, safe="") for p in parts)

    def owns(self, url: str) -> bool:
        try:
            pool, _, _ = self.parse(url)
        except errors.GlanceliteError:
            return False
        return pool == self.pool

    # -- live state ------------------------------------------------------------------

    def probe(self) -> base.Probe:
        """A short-lived connection with bounded timeouts: the mon answers and the pool's OSDs serve I/O."""
        caps = self.configured_capabilities()
        timeout = PROBE_TIMEOUT if self.connect_timeout <= 0 else min(self.connect_timeout, PROBE_TIMEOUT)
        try:
            cluster = self._new_cluster(timeout)
        except rados.Error as exc:
            return base.Probe(Capability.DRIVER_REUSABLE, f"Ceph cluster unreachable: {exc}", unreachable=True)
        try:
            if not cluster.pool_exists(self.pool):
                return base.Probe(Capability.DRIVER_REUSABLE, f"pool {self.pool} does not exist")
            with cluster.open_ioctx(self.pool) as ioctx:
                with contextlib.suppress(rados.ObjectNotFound):
                    ioctx.stat(PROBE_OBJECT)
        except rados.Error as exc:
            return base.Probe(Capability.DRIVER_REUSABLE, f"Ceph pool {self.pool} unusable: {exc}", unreachable=True)
        finally:
            cluster.shutdown()
        return base.Probe(caps)

    def live_capabilities(self) -> Capability:
        return self.probe().capabilities

    def properties(self) -> dict[str, Any]:
        return {"pool": self.pool, "chunk_size": self.chunk_size, "thin_provisioning": self.thin}

    # -- operations ------------------------------------------------------------------

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        name = image_id
        self.pending_removals.settle(name)
        with self._ioctx() as (cluster, ioctx):
            fsid = cluster.get_fsid()
            with self._translating(f"create image {name}"):
                try:
                    rbd.RBD().create(
                        ioctx, name, size or 0, order=self.order, old_format=False, features=rbd.RBD_FEATURE_LAYERING
                    )
                except rbd.ImageExists:
                    raise base.Duplicate(f"Image {image_id} already exists in store {self.store.id}.") from None
            with base.removing_on_failure(lambda: self._remove_partial(ioctx, name)):
                with self._translating(f"write image {name}"), rbd.Image(ioctx, name) as image:
                    written = self._write(image, reader, size)
                    image.create_snap(SNAPSHOT)
                    image.protect_snap(SNAPSHOT)
        LOG.info("store %s: wrote %d bytes to rbd %s/%s", self.store.id, written, self.pool, name)
        return base.StoredObject(url=self.url_of(fsid, name), size=written, metadata={})

    def _write(self, image: rbd.Image, reader: base.Readable, size: int | None) -> int:
        offset = 0
        capacity = size or 0
        step = self.chunk_size
        for chunk in base.read_chunks(reader, self.chunk_size):
            end = offset + len(chunk)
            if size and end > size:
                raise errors.Invalid(f"Size exceeds: expected {size} bytes, got at least {end}.")
            if end > capacity:
                # Unknown size: grow in doubling steps, not per chunk (glance_store LP #1792710).
                while capacity < end:
                    capacity += step
                    step = min(step * 2, MAX_GROW_STEP)
                image.resize(capacity)
            if not (self.thin and not chunk.strip(b"\0")):
                done = image.write(chunk, offset)
                if done != len(chunk):
                    raise base.StoreUnavailable(f"rbd wrote {done} of {len(chunk)} bytes at offset {offset}.")
            offset = end
        if size and offset != size:
            raise errors.Invalid(f"Size mismatch: expected {size} bytes, got {offset}.")
        if capacity != offset:
            image.resize(offset)
        image.flush()
        return offset

    def _remove_partial(self, ioctx, name: str) -> None:
        """Undo a failed add: our own fresh image, snapshot included. When the cluster cannot do it
        now (the failure was the cluster going away), ``pending_removals`` retries it on a new
        connection until it answers; until the dead connection's watch lapses, Ceph says busy."""
        try:
            _remove_image(ioctx, name)
        except Exception as exc:  # noqa: BLE001 - the add's own error is what the caller sees
            LOG.info("store %s: partial rbd image %s/%s not removed yet: %s", self.store.id, self.pool, name, exc)

            def retry() -> None:
                with self._ioctx() as (_, fresh), self._translating(f"remove partial image {name}"):
                    _remove_image(fresh, name)

            self.pending_removals.defer(name, f"partial rbd image {self.pool}/{name}", retry)

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        pool, name, snap = self.parse(url)
        stack = contextlib.ExitStack()
        try:
            _, ioctx = stack.enter_context(self._ioctx(pool))
            with self._translating(f"open image {name}", missing=True):
                image = stack.enter_context(rbd.Image(ioctx, name, snapshot=snap, read_only=True))
                size = image.size()
        except BaseException:
            stack.close()
            raise
        offset = min(max(offset, 0), size)
        remaining = size - offset if length is None else max(0, min(length, size - offset))
        return base.DataStream(
            self._chunks(stack, image, name, offset, remaining), size=size, length=remaining, on_close=stack.close
        )

    def _chunks(self, stack: contextlib.ExitStack, image: rbd.Image, name: str, offset: int, remaining: int):
        # Released as soon as the last byte is read, not only on close(): a librados
        # handle left to the garbage collector can hang the interpreter at exit.
        with stack:
            while remaining > 0:
                with self._translating(f"read image {name}"):
                    chunk = image.read(offset, min(self.chunk_size, remaining))
                if not chunk:
                    return
                offset += len(chunk)
                remaining -= len(chunk)
                yield chunk

    def get_size(self, url: str) -> int:
        pool, name, snap = self.parse(url)
        with self._ioctx(pool) as (_, ioctx), self._translating(f"open image {name}", missing=True):
            with rbd.Image(ioctx, name, snapshot=snap, read_only=True) as image:
                return image.size()

    def delete(self, url: str) -> None:
        pool, name, snap = self.parse(url)
        with self._ioctx(pool) as (_, ioctx), self._translating(f"delete image {name}", missing=True):
            if snap:
                with rbd.Image(ioctx, name) as image:
                    if any(s["name"] == snap for s in image.list_snaps()):
                        self._remove_snapshot(image, name, snap)
            try:
                rbd.RBD().remove(ioctx, name)
            except rbd.ImageHasSnapshots:
                # COMPAT: snapshots someone else made: Glance moves the image to the trash
                # and Ceph deletes it once they are gone.
                rbd.RBD().trash_move(ioctx, name, 0)
            except rbd.ImageBusy as exc:
                raise base.InUse(f"Image {name} is in use by the store (it has watchers).") from exc

    def iter_objects(self, scope: base.ListingScope | None = None) -> Iterator[base.ListedObject]:
        """Every RBD image of the store's pool (the trash excluded), with its size and last change."""
        with self._ioctx() as (cluster, ioctx):
            fsid = cluster.get_fsid()
            with self._translating(f"list pool {self.pool}"):
                names = rbd.RBD().list(ioctx)
            for name in names:
                try:
                    with self._translating(f"stat image {name}"), rbd.Image(ioctx, name, read_only=True) as image:
                        size = image.size()
                        modified = image.modify_timestamp()
                except rbd.ImageNotFound:
                    continue  # removed while we looked
                # librbd's timestamps are naive UTC.
                when = modified.replace(tzinfo=datetime.UTC).timestamp()
                yield base.ListedObject(key=name, url=self.url_of(fsid, name), size=size, modified=when)

    def object_key(self, url: str) -> str:
        return self.parse(url)[1]

    def _remove_snapshot(self, image: rbd.Image, name: str, snap: str) -> None:
        image.set_snap(snap)
        try:
            children = list(image.list_children2())
        except rbd.PermissionError:
            children = []  # cannot see other pools: unprotect below still refuses while clones exist
        finally:
            image.set_snap(None)
        if children:
            where = ", ".join(f"{c.get('pool')}/{c.get('image')}" for c in children[:3])
            raise base.InUse(f"Image {name} has clones ({where}); it stays until they are flattened or deleted.")
        if image.is_protected_snap(snap):
            try:
                image.unprotect_snap(snap)
            except rbd.ImageBusy as exc:
                raise base.InUse(f"Image {name} has clones; it stays until they are flattened or deleted.") from exc
        image.remove_snap(snap)

    # -- errors ----------------------------------------------------------------------

    def _translating(self, what: str, missing: bool = False):
        return _Translate(self.store.id, what, missing)


def _remove_image(ioctx, name: str) -> None:
    """Remove an image the driver just made, its snapshot first; absent is done."""
    try:
        with rbd.Image(ioctx, name) as image:
            if any(s["name"] == SNAPSHOT for s in image.list_snaps()):
                if image.is_protected_snap(SNAPSHOT):
                    image.unprotect_snap(SNAPSHOT)
                image.remove_snap(SNAPSHOT)
        rbd.RBD().remove(ioctx, name)
    except rbd.ImageNotFound:
        pass


def _shutdown_all(handles: list) -> None:
    while handles:
        with contextlib.suppress(Exception):
            handles.pop().shutdown()


class StoreConnectionLost(base.StoreUnavailable):
    """The cluster connection failed; the reusable handle must be rebuilt."""


class _Translate(base.TranslatedErrors):
    """rados/rbd errors -> store errors at the driver edge."""

    def translate(self, exc: Exception, where: str) -> errors.GlanceliteError | None:
        if isinstance(exc, (rbd.ImageNotFound, rados.ObjectNotFound)) and self.missing:
            return base.StoreNotFound(f"Image data not found: {where}.")
        if isinstance(exc, (rbd.NoSpace, rbd.DiskQuotaExceeded, rados.NoSpace)):
            return base.StoreFull(f"Image storage media is full: {where}.")
        if isinstance(exc, (rbd.PermissionError, rados.PermissionError, rados.PermissionDeniedError)):
            return base.StoreWriteDenied(f"Ceph refused the request: {where} ({exc}).")
        if isinstance(exc, (rados.TimedOut, rados.ConnectionShutdown, rbd.ConnectionShutdown, rbd.Timeout)):
            return StoreConnectionLost(f"Ceph cluster unreachable: {where} ({type(exc).__name__}).")
        if isinstance(exc, rbd.ImageBusy):
            return base.InUse(f"Image is in use: {where}.")
        if isinstance(exc, (rados.Error, rbd.Error)):
            return base.StoreUnavailable(f"Ceph error: {where} ({type(exc).__name__}: {exc}).")
        return None
