"""StoreSet: every configured store, built and validated once at start.

Multi-store and legacy single-store configurations arrive as the same list
of StoreSettings (reserved stores included, flagged), so there is one code
path. ``_checked`` is the one capability check: every get, add and delete
goes through it, and it raises a typed error naming the store and what it
cannot do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from glancelite import errors
from glancelite.context import RequestContext
from glancelite.metrics import Metrics
from glancelite.model import Location
from glancelite.settings import Settings, StoreSettings
from glancelite.store import base, datalog, registry
from glancelite.store.capabilities import Capability, contains, names_of, presence
from glancelite.store.streams import CountingReader, reporting_sent

LOG = logging.getLogger(__name__)

RESERVED_PREFIX = "os_glance_"


class UnknownStore(errors.Invalid):
    """A request named a store that does not exist (or is reserved): Glance's 400."""

    def __init__(self, store_id: str):
        self.store_id = store_id
        super().__init__(f"Store for identifier {store_id} not found")


@dataclasses.dataclass
class _Entry:
    settings: StoreSettings
    cls: type[base.Driver]
    driver: base.Driver  # shared when reusable; also the one probed
    probe: base.Probe
    probed_at: float
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def reusable(self) -> bool:
        return contains(self.cls.STATIC_CAPABILITIES, Capability.DRIVER_REUSABLE)

    @property
    def configured(self) -> Capability:
        return self.driver.configured_capabilities()


class StoreSet:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        prepare: bool = True,
        metrics: Metrics | None = None,
        operator: bool = False,
    ):
        """``prepare=False`` is a configuration check: every driver validates its options, but
        nothing is created (no ``Driver.prepare``) and no backend is probed. ``metrics``: the
        process's (app.build_services); a StoreSet of its own otherwise records into a private one.
        ``operator``: glancelite-manage's (the store audit): work done for no caller uses each
        store's operator credentials (``Driver.for_operator``), so per-caller stores can be listed."""
        self.prepare = prepare
        self.operator = operator
        self.metrics = metrics if metrics is not None else Metrics()
        self.multi_store = settings.multi_store
        self.default_id = settings.default_store
        self.staging_id = settings.staging_store
        self.tasks_id = settings.tasks_store
        self.refresh_interval = settings.store_capability_refresh_interval
        self._clock = clock
        registry.load_entry_points()
        self._entries: dict[str, _Entry] = {}
        try:
            for store in settings.stores:
                self._entries[store.id] = self._build(store)
            self._validate()
        except BaseException:
            self.close()
            raise

    # -- construction ----------------------------------------------------------------

    def _build(self, store: StoreSettings) -> _Entry:
        if store.id.startswith(RESERVED_PREFIX) and not store.reserved:
            raise errors.ConfigError(
                "DEFAULT",
                "enabled_backends",
                f"'{RESERVED_PREFIX}' prefix should not be used in enabled_backends config option. "
                "It is reserved for internal use only.",
            )
        if store.reserved and store.type != "file":
            raise errors.ConfigError(store.id, None, "reserved stores are file stores")
        try:
            cls = registry.driver_for(store)
        except registry.DriverUnavailable as exc:
            raise errors.ConfigError(store.id if self.multi_store else "glance_store", None, exc.message) from exc
        try:
            driver = cls(store)
        except errors.ConfigError:
            raise
        except Exception as exc:  # an SDK that cannot even start: stop with the store named
            raise errors.ConfigError(store.id, None, f"cannot start the {store.type} store: {exc}") from exc
        if not self.prepare:
            probe = base.Probe(driver.configured_capabilities())
            return _Entry(settings=store, cls=cls, driver=driver, probe=probe, probed_at=self._clock())
        try:
            driver.prepare()
        except errors.ConfigError:
            raise
        except Exception as exc:
            raise errors.ConfigError(store.id, None, f"cannot prepare the {store.type} store: {exc}") from exc
        probe = self._safe_probe(driver)
        if probe.reason:
            LOG.warning("store %s starts degraded: %s", store.id, probe.reason)
        self.metrics.capabilities(store.id, presence(probe.capabilities))
        return _Entry(settings=store, cls=cls, driver=driver, probe=probe, probed_at=self._clock())

    def _validate(self) -> None:
        default = self._entries.get(self.default_id)
        group, option = ("glance_store", "default_backend") if self.multi_store else ("glance_store", "default_store")
        if default is None or default.settings.reserved:
            raise errors.ConfigError(group, option, f"Store for identifier {self.default_id} not found")
        # A reserved directory shared with another file store would let staged data
        # and images overwrite or delete each other.
        dirs: dict[str, str] = {}
        for entry in self._entries.values():
            for path in _datadirs(entry.driver):
                other = dirs.setdefault(path, entry.settings.id)
                if other != entry.settings.id and (entry.settings.reserved or self._entries[other].settings.reserved):
                    raise errors.ConfigError(
                        entry.settings.id,
                        "filesystem_store_datadir",
                        f"{path} is also the data directory of store {other!r}; reserved stores need their own",
                    )

    # -- lookups ---------------------------------------------------------------------

    def public_ids(self) -> list[str]:
        """Store ids a client may see or name, highest weight first (never reserved ones)."""
        public = [e.settings for e in self._entries.values() if not e.settings.reserved]
        return [s.id for s in sorted(public, key=lambda s: -s.weight)]

    def settings_of(self, store_id: str, *, internal: bool = False) -> StoreSettings:
        """The store's settings; UnknownStore (400) for unknown ids and, unless ``internal``, reserved ones."""
        entry = self._entries.get(store_id)
        if entry is None or (entry.settings.reserved and not internal):
            raise UnknownStore(store_id)
        return entry.settings

    def validate_target(self, store_id: str | None) -> str:
        """The store an upload/import goes to: the default when None; reserved or unknown -> 400."""
        store_id = store_id or self.default_id
        self.settings_of(store_id)
        return store_id

    def writable(self, store_id: str) -> bool:
        """Whether the store takes images: WRITE_ACCESS in its capabilities as configured.

        What Glance leaves out of ``all_stores`` and refuses as an import target (its
        read-only http store), decided by capability, never by type. A store that lost
        WRITE_ACCESS for now (full, unreachable) still counts: the one check before the
        write answers 413/503 for it, as before.
        """
        return contains(self._entries[store_id].configured, Capability.WRITE_ACCESS)

    def weight(self, store_id: str | None) -> int:
        entry = self._entries.get(store_id or "")
        return entry.settings.weight if entry else 0

    def holder_of(self, location: Location) -> str | None:
        """The id of the store holding ``location``; None when no configured store does."""
        try:
            return self.store_of(location)
        except errors.GlanceliteError:
            return None

    def store_of(self, location: Location) -> str:
        """The store holding a location: its ``store`` metadata, else the store whose driver owns the URL."""
        store_id = location.metadata.get("store") if location.metadata else None
        if store_id:
            if store_id not in self._entries:
                raise base.StoreNotFound(f"Store {store_id} of location is not configured.")
            return store_id
        for entry in sorted(self._entries.values(), key=lambda e: -e.settings.weight):
            if entry.driver.owns(location.url):
                return entry.settings.id
        raise base.StoreNotFound(f"No configured store can read {location.url.split('://', 1)[0]} locations.")

    def sort_locations(self, locations: Iterable[Location]) -> list[Location]:
        """Highest store weight first, stable; unknown stores weigh 0 (Glance's sort_image_locations)."""
        return sorted(locations, key=lambda loc: -self.weight(loc.metadata.get("store") if loc.metadata else None))

    def location_metadata(self, store_id: str, stored: base.StoredObject) -> dict[str, Any]:
        """What a new location row records: the driver's metadata plus ``store`` (multi-store only)."""
        meta = dict(stored.metadata)
        if self.multi_store:
            meta["store"] = store_id
        return meta

    # -- the one capability check -------------------------------------------------

    def probe(self, store_id: str) -> base.Probe:
        """Live state, probed at most every ``store_capability_refresh_interval`` seconds."""
        entry = self._entries[store_id]
        now = self._clock()
        if now - entry.probed_at >= self.refresh_interval:
            with entry.lock:
                if now - entry.probed_at >= self.refresh_interval:
                    entry.probe = self._safe_probe(entry.driver)
                    entry.probed_at = self._clock()
                    self.metrics.capabilities(store_id, presence(entry.probe.capabilities))
        return entry.probe

    def probe_now(self, store_id: str) -> base.Probe:
        """Live state probed now, whatever the interval (the detailed health check); it also
        becomes the state the capability check uses."""
        entry = self._entries[store_id]
        with entry.lock:
            entry.probe = self._safe_probe(entry.driver)
            entry.probed_at = self._clock()
            self.metrics.capabilities(store_id, presence(entry.probe.capabilities))
        return entry.probe

    @staticmethod
    def _safe_probe(driver: base.Driver) -> base.Probe:
        try:
            return driver.probe()
        except errors.GlanceliteError as exc:
            return base.Probe(Capability.NONE, exc.message, unreachable=True)
        except Exception as exc:  # a probe must never take the service down
            LOG.warning("probing store %s failed: %s", driver.store.id, exc)
            return base.Probe(Capability.NONE, str(exc), unreachable=True)

    def _checked(self, store_id: str, operation: str, *, offset: int = 0, length: int | None = None) -> None:
        entry = self._entries[store_id]
        static = entry.cls.STATIC_CAPABILITIES
        name = entry.settings.id
        if operation == "get":
            wanted = Capability.READ_ACCESS
            if offset:
                wanted |= Capability.READ_OFFSET
            if length is not None:
                wanted |= Capability.READ_CHUNK
            if not contains(static, Capability.READ_ACCESS):
                raise base.StoreGetNotSupported(f"Getting images from store {name} is not supported (no READ_ACCESS).")
            if not contains(static, wanted):
                raise base.RangeNotSupported(
                    f"Store {name} cannot read part of an image (offset={offset}, length={length}): "
                    f"missing {', '.join(n for n in names_of(wanted) if not contains(static, Capability[n]))}."
                )
            probe = self.probe(store_id)
            if not contains(probe.capabilities, Capability.READ_ACCESS):
                raise base.StoreUnavailable(
                    f"Store {name} cannot be read now (READ_ACCESS lost): {probe.reason or 'unavailable'}"
                )
        elif operation == "add":
            if not contains(entry.configured, Capability.WRITE_ACCESS):
                raise base.StoreAddDisabled(
                    f"Error in store configuration. Adding images to store is disabled "
                    f"(store {name} is read-only: no WRITE_ACCESS)."
                )
            probe = self.probe(store_id)
            if not contains(probe.capabilities, Capability.WRITE_ACCESS):
                reason = probe.reason or "writes are refused"
                if probe.full:
                    raise base.StoreFull(f"Image storage media is full: store {name}: {reason}")
                if probe.unreachable:
                    raise base.StoreUnavailable(f"Store {name} is unavailable: {reason}")
                raise base.StoreAddDisabled(
                    f"Error in store configuration. Adding images to store is disabled "
                    f"(store {name} lost WRITE_ACCESS: {reason})."
                )
        elif operation == "delete":
            # A full store must still be able to free space, so only static and
            # configured read-only state decide; the driver reports the rest.
            if not contains(entry.configured, Capability.WRITE_ACCESS):
                raise base.StoreDeleteNotSupported(
                    f"Deleting images from store {name} is not supported (no WRITE_ACCESS)."
                )
        else:
            raise ValueError(f"unknown store operation {operation!r}")

    @contextlib.contextmanager
    def _driver(self, store_id: str, context: RequestContext | None = None):
        """The shared instance when reusable, else a fresh one closed afterwards; as ``context``'s caller."""
        entry = self._entries[store_id]
        if entry.reusable:
            yield self._acting(entry.driver, context)
            return
        driver = entry.cls(entry.settings)
        try:
            yield self._acting(driver, context)
        finally:
            driver.close()

    def _acting(self, driver: base.Driver, context: RequestContext | None) -> base.Driver:
        if context is None and self.operator:
            return driver.for_operator()
        return driver.for_context(context)

    # -- operations ------------------------------------------------------------------

    # ``context`` is the request's caller (None for background work); only per-caller
    # stores (multi-tenant swift) use it: see Driver.for_context.

    def write(
        self,
        store_id: str | None,
        image_id: str,
        reader: base.Readable,
        size: int | None,
        *,
        internal: bool = False,
        context: RequestContext | None = None,
        whole_file: BinaryIO | None = None,
    ) -> base.StoredObject:
        """Store the bytes ``reader`` yields; the driver removes partial data on failure.

        ``whole_file``: the open local file those bytes are, all of it (an import's staged data);
        a driver that can take the file as it is does (see Driver.add_from_file).
        """
        store_id = store_id or self.default_id
        self.settings_of(store_id, internal=internal)
        self._checked(store_id, "add")
        in_flight = self.metrics.store_transfers.labels(store_id, "write")
        written_bytes = self.metrics.store_written.labels(store_id)
        written = [0]

        def count(n: int) -> None:
            written_bytes.inc(n)
            written[0] += n

        operation = datalog.operation("stage" if store_id == self.staging_id else "upload")
        started = time.monotonic()
        error: BaseException | None = None
        try:
            with in_flight.track_inprogress(), self._driver(store_id, context) as driver:
                counted = CountingReader(reader, count)
                if whole_file is not None:
                    return driver.add_from_file(image_id, counted, size or None, whole_file)
                return driver.add(image_id, counted, size or None)
        except BaseException as exc:
            error = exc
            raise
        finally:
            datalog.transfer(
                operation,
                image_id=image_id,
                store=store_id,
                nbytes=written[0],
                seconds=time.monotonic() - started,
                error=error,
            )

    def adopt(self, store_id: str, image_id: str, path: str, *, internal: bool = False) -> base.StoredObject:
        """Take a finished local file (an import's work file) as the image's data; see Driver.adopt."""
        self.settings_of(store_id, internal=internal)
        self._checked(store_id, "add")
        with self._driver(store_id) as driver:
            return driver.adopt(image_id, path)

    def replace(self, location: Location, image_id: str, path: str) -> base.StoredObject:
        """Put a finished local file (an import plugin's output) in place of a location's data."""
        store_id = self.store_of(location)
        self._checked(store_id, "add")
        with self._driver(store_id) as driver:
            return driver.replace(location.url, image_id, path)

    def locate(self, store_id: str, image_id: str, *, internal: bool = False) -> Location | None:
        """Where the store keeps the data written under ``image_id``, None when it has none; see Driver.locate."""
        self.settings_of(store_id, internal=internal)
        with self._driver(store_id) as driver:
            url = driver.locate(image_id)
        return None if url is None else Location(url=url, metadata={"store": store_id})

    def read(
        self,
        location: Location,
        offset: int = 0,
        length: int | None = None,
        *,
        context: RequestContext | None = None,
        image_id: str | None = None,
    ) -> base.DataStream:
        """``image_id``, when the caller knows it, goes into the read's log line (store/datalog.py)."""
        store_id = self.store_of(location)
        self._checked(store_id, "get", offset=offset, length=length)
        entry = self._entries[store_id]
        if entry.reusable:
            stream = entry.driver.for_context(context).get(location.url, offset, length)
        else:
            driver = entry.cls(entry.settings)
            try:
                stream = driver.for_context(context).get(location.url, offset, length)
            except BaseException:
                driver.close()
                raise
            stream.also_on_close(driver.close)
        return self._counted_read(store_id, stream, image_id)

    def _counted_read(self, store_id: str, stream: base.DataStream, image_id: str | None = None) -> base.DataStream:
        """The read is in flight until its stream (or the file the server sends from) is closed."""
        in_flight = self.metrics.store_transfers.labels(store_id, "read")
        read_bytes = self.metrics.store_read.labels(store_id)
        # Named now: the stream may end on another thread's stack (the server closing its file).
        operation = datalog.operation("read" if store_id in (self.staging_id, self.tasks_id) else "download")
        started = time.monotonic()
        in_flight.inc()

        def ended(sent: int) -> None:
            read_bytes.inc(sent)
            in_flight.dec()
            datalog.transfer(
                operation, image_id=image_id, store=store_id, nbytes=sent, seconds=time.monotonic() - started
            )

        return reporting_sent(stream, ended)

    def get_size(self, location: Location, *, context: RequestContext | None = None) -> int:
        store_id = self.store_of(location)
        self._checked(store_id, "get")
        with self._driver(store_id, context) as driver:
            return driver.get_size(location.url)

    def delete(self, location: Location, *, context: RequestContext | None = None, image_id: str | None = None) -> None:
        """Remove a location's data; raises StoreNotFound, InUse, StoreDeleteNotSupported..."""
        store_id = self.store_of(location)
        self._checked(store_id, "delete")
        started = time.monotonic()
        with self._driver(store_id, context) as driver:
            driver.delete(location.url)
        datalog.transfer("delete", image_id=image_id, store=store_id, nbytes=None, seconds=time.monotonic() - started)

    def keeps_acls(self, location: Location) -> bool:
        """Whether the location's store keeps per-image read ACLs (multi-tenant swift)."""
        try:
            store_id = self.store_of(location)
        except errors.GlanceliteError:
            return False
        return self._entries[store_id].driver.per_caller

    def set_acls(
        self, location: Location, *, public: bool, read_projects: Iterable[str], context: RequestContext | None
    ) -> None:
        """Glance's _set_acls for one location: who may read its data (multi-tenant swift only)."""
        store_id = self.store_of(location)
        with self._driver(store_id, context) as driver:
            driver.set_acls(location.url, public=public, read_projects=list(read_projects))

    def delete_location(
        self, location: Location, *, context: RequestContext | None = None, image_id: str | None = None
    ) -> bool:
        """Delete a location's data as image deletion does (Glance's safe_delete_from_backend).

        Data already gone, or a store that cannot delete (http), is not an error:
        returns False. InUse (409), Forbidden and Unavailable propagate.
        """
        try:
            self.delete(location, context=context, image_id=image_id)
        except (base.StoreNotFound, base.StoreDeleteNotSupported) as exc:
            LOG.info("location of %s not deleted: %s", location.url.split("://", 1)[0], exc.message)
            return False
        return True

    # -- discovery -------------------------------------------------------------------

    def info(self) -> list[dict[str, Any]]:
        """GET /v2/info/stores entries (reserved stores never appear)."""
        result = []
        for store_id in self.public_ids():
            entry = self._entries[store_id]
            item: dict[str, Any] = {"id": store_id}
            if entry.settings.description:
                item["description"] = entry.settings.description
            if store_id == self.default_id:
                item["default"] = "true"
            if not self.writable(store_id):
                item["read-only"] = "true"
            result.append(item)
        return result

    def detail(self) -> list[dict[str, Any]]:
        """GET /v2/info/stores/detail entries: info plus type, weight, properties and live capabilities."""
        result = []
        for item in self.info():
            entry = self._entries[item["id"]]
            probe = self.probe(item["id"])
            detail = {
                **item,
                "type": entry.settings.type,
                "weight": entry.settings.weight,
                "properties": entry.driver.properties(),
                "capabilities": names_of(probe.capabilities),
            }
            if probe.reason:
                detail["capabilities_reason"] = probe.reason
            result.append(detail)
        return result

    # -- the store audit ---------------------------------------------------------------

    def all_ids(self) -> list[str]:
        """Every store id, reserved ones included, in configuration order (the store audit)."""
        return list(self._entries)

    def iter_objects(self, store_id: str, scope: base.ListingScope | None = None) -> Iterator[base.ListedObject]:
        """Everything the store holds, from its backend's listing; ListingNotSupported if it cannot list."""
        with self._driver(store_id) as driver:
            yield from driver.iter_objects(scope)

    def iter_unfinished_uploads(self, store_id: str) -> Iterator[base.UnfinishedUpload]:
        """Uploads the store's backend began and never completed nor aborted (S3 multipart uploads)."""
        with self._driver(store_id) as driver:
            yield from driver.iter_unfinished_uploads()

    def abort_upload(self, store_id: str, url: str, upload_id: str) -> None:
        """Abort one of ``iter_unfinished_uploads``; StoreNotFound when it is gone already."""
        with self._driver(store_id) as driver:
            driver.abort_upload(url, upload_id)

    def per_caller(self, store_id: str) -> bool:
        """Whether the store acts with each caller's credentials (multi-tenant swift): nothing to do without one."""
        return self._entries[store_id].driver.per_caller

    def object_key(self, store_id: str, location: Location) -> str:
        """The backend's name of a location's object, as ``iter_objects`` keys it."""
        with self._driver(store_id) as driver:
            return driver.object_key(location.url)

    def remove_orphaned_partials(self) -> int:
        """Temp files of uploads whose process died, in every store that keeps such files (file stores)."""
        removed = 0
        for entry in self._entries.values():
            cleaner = getattr(entry.driver, "remove_orphaned_partials", None)
            if cleaner is not None:
                removed += cleaner()
        if removed:
            LOG.warning("removed %d partial image files left by processes that died mid-upload", removed)
        return removed

    def close(self) -> None:
        for entry in self._entries.values():
            with contextlib.suppress(Exception):
                entry.driver.close()


def _datadirs(driver: base.Driver) -> list[str]:
    return [os.path.realpath(path) for _, path in getattr(driver, "datadirs", ())]
