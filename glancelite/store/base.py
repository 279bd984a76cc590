"""The driver contract every store backend implements, and the typed store errors.

Drivers only move bytes. Hashing, size limits, quotas, capability checks and
status changes happen above them (streams.py, stores.py, services), once.
A driver:

- declares ``TYPE`` (Glance's type name), ``SCHEMES`` (URL schemes it writes
  and reads), ``STATIC_CAPABILITIES`` and ``OPTIONS``: the oslo.config options
  of its store group, declared once, with glance_store's names and defaults.
  config.py registers them for every store of the type, lists them in the
  sample configuration and hands the driver the typed values (the registry
  finds the declarations without importing an optional SDK: see registry.py);
- is built from its ``StoreSettings`` and validates them in ``__init__``
  (raise ``errors.ConfigError(store.id, option, reason)``) without changing
  anything; ``prepare()`` creates what it needs (directories) when the service
  starts; ``option(name)`` is the typed value, or the declared default when
  the settings lack it;
- translates SDK errors at its edge into the errors below
  (``raise StoreNotFound(...) from exc``);
- removes its partial data before an ``add`` error leaves it.

A driver that works with the *caller's* credentials (multi-tenant swift)
overrides ``for_context``: the StoreSet asks every driver for its view of the
request's caller before each operation; the others return themselves and never
see the context.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, ClassVar, Protocol

from glancelite import errors
from glancelite.context import RequestContext
from glancelite.settings import StoreSettings
from glancelite.store.capabilities import Capability, without


class Readable(Protocol):
    """What ``add`` reads from: ``read(n)`` returns at most n bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


# --- results ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """Where ``add`` put the data. ``metadata`` leaves are strings (Glance's rule)."""

    url: str
    size: int
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class DataStream:
    """The bytes ``get`` returns: iterate (or ``read``) once, then ``close``.

    ``size`` is the whole object's size (0 if unknown), ``length`` how many
    bytes this stream yields (the range asked for; None if the backend cannot say). ``file``, when set, is an OS file already
    positioned at the range start: the server may hand it to sendfile and send
    exactly ``length`` bytes from it instead of iterating.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        size: int,
        length: int | None,
        file: BinaryIO | None = None,
        on_close: Callable[[], None] | None = None,
    ):
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self.size = size
        self.length = length
        self.file = file
        self._on_close = on_close
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._buffer:
            buffered = bytes(self._buffer)
            self._buffer.clear()
            yield buffered
        yield from self._chunks

    def read(self, size: int = -1) -> bytes:
        """A file-like view of the chunks (copy/import steps read it through the hashing reader)."""
        if size is None or size < 0:
            return b"".join(self)
        while len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            if not self._buffer and len(chunk) == size:
                return chunk  # the common case: no copy
            self._buffer += chunk  # bytearray: amortised linear, unlike bytes +=
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    @property
    def whole_file(self) -> BinaryIO | None:
        """``file`` when this stream reads all of it, from its start to its end (staged data), else None."""
        return self.file if self.file is not None and self.length == self.size else None

    def also_on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the stream's own cleanup (e.g. close a one-off driver)."""
        previous = self._on_close

        def both() -> None:
            try:
                if previous:
                    previous()
            finally:
                callback()

        self._on_close = both

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        closer = getattr(self._chunks, "close", None)
        if closer:
            closer()
        if self._on_close:
            self._on_close()

    def __enter__(self) -> DataStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class ListedObject:
    """One object a store holds, as its backend's own listing reports it (the store audit).

    ``key`` names the object the way ``object_key`` names a location's object, so the two
    compare; ``url`` is a location URL ``delete`` accepts; ``modified`` is seconds since
    the epoch. A Swift manifest is listed once, its segments counted in its ``size``.
    """

    key: str
    url: str
    size: int
    modified: float


@dataclasses.dataclass(frozen=True)
class ListingScope:
    """What the database knows that a store keeping images in many accounts (multi-tenant swift)
    needs to find them all: every location URL it ever recorded and every project that owns an image."""

    urls: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class UnfinishedUpload:
    """An upload the backend began and never completed nor aborted (an S3 multipart upload).

    Not an object (no listing shows it, no location can name it), yet the backend keeps its
    parts and their space until it is aborted. ``key`` is the object it was to become,
    ``url`` that object's location URL, ``started`` seconds since the epoch.
    """

    key: str
    upload_id: str
    url: str
    started: float


@dataclasses.dataclass(frozen=True)
class Probe:
    """A driver's live state: its capabilities now, and why bits are missing.

    ``full`` (no space left) and ``unreachable`` (backend down) let the one
    capability check answer 413 or 503 instead of "add disabled" (410).
    """

    capabilities: Capability
    reason: str | None = None
    full: bool = False
    unreachable: bool = False


# --- errors ----------------------------------------------------------------------


class StoreNotFound(errors.NotFound):
    default_message = "Image data not found in the store."


class StoreFull(errors.TooLarge):
    default_message = "Image storage media is full."


class StoreWriteDenied(errors.Unavailable):
    default_message = "Insufficient permissions on image storage media."


class StoreAddDisabled(errors.Gone):
    default_message = "Error in store configuration. Adding images to store is disabled."


class StoreUnavailable(errors.Unavailable):
    default_message = "The image store is unavailable."

    @property
    def public_message(self) -> str:
        # The message names the backend's endpoint and its client library's error: log only.
        return self.default_message


class StoreGetNotSupported(errors.Invalid):
    default_message = "Getting images from this store is not supported."


class RangeNotSupported(StoreGetNotSupported):
    default_message = "This store cannot read a part of an image."


class StoreDeleteNotSupported(errors.Conflict):
    default_message = "Deleting images from this store is not supported."


class InUse(errors.Conflict):
    default_message = "The image cannot be deleted because it is in use by the store."


class Duplicate(errors.Conflict):
    default_message = "Image data already exists in the store."


class BadStoreUri(errors.Invalid):
    default_message = "The location URI is not valid for this store."


class ListingNotSupported(errors.Invalid):
    default_message = "This store cannot list the objects it holds."


# --- the contract ----------------------------------------------------------------


class TranslatedErrors:
    """A ``with`` block that turns an SDK's errors into typed store errors at the driver edge.

    Subclasses implement ``translate(exc, where)``: the store error to raise, or None to
    let ``exc`` through. glancelite's own errors and non-Exceptions pass unchanged.
    """

    def __init__(self, store_id: str, what: str, missing: bool = False):
        self.store_id, self.what, self.missing = store_id, what, missing

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, errors.GlanceliteError) or not isinstance(exc, Exception):
            return False
        translated = self.translate(exc, f"store {self.store_id} could not {self.what}")
        if translated is None:
            return False
        raise translated from exc

    def translate(self, exc: Exception, where: str) -> errors.GlanceliteError | None:
        raise NotImplementedError


class Driver(abc.ABC):
    TYPE: ClassVar[str]
    SCHEMES: ClassVar[tuple[str, ...]] = ()
    STATIC_CAPABILITIES: ClassVar[Capability] = Capability.NONE
    # oslo.config Opt objects of the store group (duck-typed here: ``dest`` and ``default``).
    OPTIONS: ClassVar[Sequence[Any]] = ()
    # True when the driver acts with the caller's credentials (see for_context) and keeps read ACLs.
    per_caller: bool = False

    def __init__(self, store: StoreSettings):
        self.store = store
        self.options = with_defaults(self.OPTIONS, store.options)

    def prepare(self) -> None:
        """Create what the store needs on its backend before it serves (the file store's
        directories). StoreSet calls it once at start; a configuration check never does, so
        ``__init__`` only validates and changes nothing."""
        return None

    @classmethod
    def variant(cls, store: StoreSettings) -> type[Driver]:
        """The class that serves ``store``; a type whose options choose the implementation overrides it."""
        return cls

    def option(self, name: str) -> Any:
        """The typed value of one of ``OPTIONS`` (oslo typed it; unset options give the declared default)."""
        return self.options.get(name)

    @abc.abstractmethod
    def add(self, image_id: str, reader: Readable, size: int | None) -> StoredObject:
        """Write everything ``reader`` yields. ``size`` None or 0 means unknown.

        Raise Duplicate if the object exists, StoreFull, StoreWriteDenied,
        StoreUnavailable; whatever the reader raises (size cap, mismatch,
        client gone) propagates unchanged after the partial data is removed.
        """

    def add_from_file(self, image_id: str, reader: Readable, size: int | None, file: BinaryIO) -> StoredObject:
        """Like ``add``, for data that is the whole of the open local ``file``, which ``reader`` reads from its start.

        This default is ``add``. A store that can take the file as it is (the file store, on the same file
        system: a hard link) still reads ``reader`` to its end, so the caller's hashing, format inspection and
        limits see every byte, and then takes the very file it read; ``file`` stays where it is.
        """
        return self.add(image_id, reader, size)

    def adopt(self, image_id: str, path: str) -> StoredObject:
        """Take the complete local file at ``path`` as the image's data and remove ``path``.

        Never replaces existing data (Duplicate). This default copies the file through ``add``;
        a store that can take the file itself (the file store links it) overrides it.
        """
        with open(path, "rb") as fh:
            stored = self.add(image_id, fh, os.fstat(fh.fileno()).st_size)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return stored

    def replace(self, url: str, image_id: str, path: str) -> StoredObject:
        """Put the complete local file at ``path`` in place of the data at ``url`` and remove ``path``.

        This default deletes, then adopts (not atomic); the file store renames over instead.
        """
        with contextlib.suppress(StoreNotFound):
            self.delete(url)
        return self.adopt(image_id, path)

    def locate(self, image_id: str) -> str | None:
        """The URL of the data stored under ``image_id`` (by ``add``/``adopt``), None when there is none.

        Only stores that name objects by image id alone can answer (the file store: the reserved
        staging and tasks stores are file stores); others say so.
        """
        raise ListingNotSupported(f"Store {self.store.id} ({self.TYPE}) cannot find data by image id.")

    @abc.abstractmethod
    def get(self, url: str, offset: int = 0, length: int | None = None) -> DataStream:
        """Stream ``length`` bytes (None: to the end) from ``offset``; StoreNotFound if absent."""

    @abc.abstractmethod
    def get_size(self, url: str) -> int:
        """Size in bytes; StoreNotFound if absent."""

    def delete(self, url: str) -> None:
        """Remove the object; StoreNotFound if absent, InUse if the backend refuses."""
        raise StoreDeleteNotSupported(f"Store {self.store.id} does not support deleting images.")

    def iter_objects(self, scope: ListingScope | None = None) -> Iterator[ListedObject]:
        """Every object the store holds, from the backend's own listing (the store audit).

        Optional: a store that cannot list (http) keeps this default and says why. ``scope``
        matters only to a store whose objects live in many accounts (multi-tenant swift).
        """
        raise ListingNotSupported(f"Store {self.store.id} ({self.TYPE}) cannot list the objects it holds.")

    def object_key(self, url: str) -> str:
        """The backend's name of a location's object, as ``iter_objects`` keys it (BadStoreUri if not ours)."""
        return url

    def iter_unfinished_uploads(self) -> Iterator[UnfinishedUpload]:
        """Uploads begun and never completed nor aborted (the store audit); none for most backends."""
        return iter(())

    def abort_upload(self, url: str, upload_id: str) -> None:
        """Abort an unfinished upload of the object at ``url``, freeing its parts; StoreNotFound if gone."""
        raise StoreDeleteNotSupported(f"Store {self.store.id} ({self.TYPE}) keeps no unfinished uploads.")

    def for_operator(self) -> Driver:
        """The driver acting with the store's own operator credentials, for ``glancelite-manage``
        (the store audit); stores with credentials of their own return ``self``."""
        return self

    def for_context(self, context: RequestContext | None) -> Driver:
        """The driver acting for ``context``'s caller (None: no caller, e.g. background work).

        Stores with credentials of their own return ``self``; a per-caller store returns a
        view bound to the caller's token and catalog (glance_store passes ``context`` to
        every call instead).
        """
        return self

    def set_acls(self, url: str, *, public: bool, read_projects: Sequence[str]) -> None:
        """Let ``read_projects`` (or everyone, ``public``) read a location (glance_store's set_acls).

        Only per-caller stores have anything to set; the others ignore it.
        """
        return None

    def configured_capabilities(self) -> Capability:
        """``STATIC_CAPABILITIES`` less what the store's configuration takes away (``read_only``)."""
        caps = self.STATIC_CAPABILITIES
        return without(caps, Capability.WRITE_ACCESS) if self.store.read_only else caps

    def live_capabilities(self) -> Capability:
        """Capabilities as the backend is now (read-only, full, unreachable); probed, may block briefly."""
        return self.STATIC_CAPABILITIES

    def probe(self) -> Probe:
        """``live_capabilities`` with the reason; override this one to report full/unreachable."""
        return Probe(self.live_capabilities())

    def properties(self) -> dict[str, Any]:
        """The type's ``properties`` in /v2/info/stores/detail."""
        return {}

    def owns(self, url: str) -> bool:
        """Whether a location URL without store metadata belongs to this store (legacy rows)."""
        return urllib.parse.urlsplit(url).scheme in self.SCHEMES

    def close(self) -> None:
        """Release connections; the StoreSet calls it at shutdown or after a one-off operation."""
        return None


def with_defaults(options: Sequence[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` over the declared defaults of ``options``; a None value means unset.

    Settings built by config.py are complete already; drivers built directly (tests,
    tools) get the same defaults from the one declaration.
    """
    merged = {opt.dest: opt.default for opt in options}
    merged.update((name, value) for name, value in values.items() if value is not None)
    return merged


@contextlib.contextmanager
def removing_on_failure(remove: Callable[[], None]) -> Iterator[None]:
    """Run ``remove()`` (errors suppressed) if the block raises anything, then re-raise."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            remove()
        raise


def read_chunks(reader: Readable, chunk_size: int) -> Iterator[bytes]:
    """``reader.read(chunk_size)`` until it returns b""."""
    while True:
        chunk = reader.read(chunk_size)
        if not chunk:
            return
        yield chunk
