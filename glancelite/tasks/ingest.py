"""The one path every byte takes into a store: read, inspect, hash, cap and quota, write,
record, and on any failure remove what was written.

Upload (services/image_data.py), stage (services/imports.py), each import method's
write into a store (steps.ImportToStore: glance-direct, web-download, glance-download,
copy-image) and the location API's hashing (location_flow.CalculateHash) all call
``Ingest``; nothing else builds a HashingReader, works out the owner's remaining
storage quota, records an image's first data with its digests or mirrors the image's
visibility onto a store's read ACLs after a write.

``Ingest.write`` runs the sequence:

1. the source is read through the format inspector (when the image's formats are
   given), the progress counter (when a callback is given) and the one HashingReader,
   which counts, hashes md5 and the multihash, and enforces ``image_size_cap``,
   ``user_storage_quota`` and the declared size as bytes arrive;
2. the StoreSet writes through the store driver (the one capability check; a failed
   add removes its partial data before the error leaves the driver); staged data, a
   whole local file, is still read through all of the above, then a file store on its
   file system hard-links that file instead of writing it again (Driver.add_from_file);
3. the inspector gives its verdict, then the caller's ``record`` stores the result
   (``record_data``: the first data with its digests; an import adds a location);
4. any failure, in any of these, removes the written object before it propagates;
5. a store that keeps per-image read ACLs (multi-tenant swift) gets the image's.

Home: tasks, the lowest layer that reaches both the stores and the database (as
bookkeeping.py). The import steps (tasks/) use it, and tasks may not import services;
the use cases in services/ may import tasks. The composition root builds one and hands
it to ImageDataService, to ImportService (through the ImportEnv) and to the steps.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db.repositories import ImageRepository, LocationRepository, MemberRepository
from glancelite.settings import Settings
from glancelite.store import acls as store_acls
from glancelite.store import base, inspection
from glancelite.store.stores import StoreSet
from glancelite.store.streams import CountingReader, Digests, HashingReader

LOG = logging.getLogger(__name__)
MIB = 1 << 20
# A progress callback hears of the running byte count at most once per this many bytes.
PROGRESS_EVERY_BYTES = 8 * MIB
READ_CHUNK = MIB  # how ``digest`` pulls a location's data through the hashing reader

Progress = Callable[[int], None]  # called with the bytes read so far
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Ingested:
    """What one write put where: the store's object, its digests, the inspector's virtual size."""

    store_id: str
    stored: base.StoredObject
    digests: Digests | None  # None when written unhashed (staging)
    virtual_size: int | None = None

    @property
    def location(self) -> model.Location:
        return model.Location(url=self.stored.url, metadata={"store": self.store_id})


class _Every:
    """``progress(total)`` once at least ``every`` more bytes came since the last call."""

    def __init__(self, progress: Progress, every: int):
        self.progress, self.every = progress, every
        self.total = self.reported = 0

    def __call__(self, n: int) -> None:
        self.total += n
        if self.total - self.reported >= self.every:
            self.reported = self.total
            self.progress(self.total)

    def finish(self) -> None:
        if self.total != self.reported:
            self.reported = self.total
            self.progress(self.total)


class Ingest:
    def __init__(
        self,
        settings: Settings,
        *,
        stores: StoreSet,
        images: ImageRepository,
        locations: LocationRepository,
        members: MemberRepository,
    ):
        self.settings = settings
        self.stores = stores
        self.images = images
        self.locations = locations
        self.members = members  # who may read the data, for stores keeping ACLs
        self.format_policy = inspection.FormatPolicy.from_settings(settings)

    # -- the limits ----------------------------------------------------------------

    def quota_remaining(self, owner: str | None) -> int | None:
        """Bytes the owner may still store under [DEFAULT] user_storage_quota (every copy counts);
        None: no quota, or no owner."""
        if self.settings.user_storage_quota <= 0 or owner is None:
            return None
        return self.settings.user_storage_quota - self.locations.storage_used(owner)

    def reader(
        self,
        source: base.Readable,
        *,
        expected_size: int | None = None,
        quota_remaining: int | None = None,
        hashing_algorithm: str | None = None,
        hashed: bool = True,
    ) -> HashingReader:
        """The one HashingReader set-up: the size cap always, the quota and declared size when given."""
        return HashingReader(
            source,
            hashing_algorithm=hashing_algorithm or self.settings.hashing_algorithm,
            size_cap=self.settings.image_size_cap,
            quota_remaining=quota_remaining,
            expected_size=expected_size,
            hashed=hashed,
        )

    # -- writing -------------------------------------------------------------------

    def write(
        self,
        store_id: str,
        image_id: str,
        source: base.Readable,
        *,
        size: int | None,
        record: Callable[[Ingested], T],
        owner: str | None = None,
        formats: tuple[str | None, str | None] | None = None,
        internal: bool = False,
        context: RequestContext | None = None,
        progress: Progress | None = None,
    ) -> T:
        """Stream ``source`` into ``store_id`` and ``record`` the result; returns what ``record`` returns.

        ``size`` None means unknown. ``owner``: whose storage quota the bytes count against (None: no
        quota, as for staging). ``formats``: (disk_format, container_format) to inspect the data as it
        passes (None: no inspection). ``internal``: a reserved store (staging), written unhashed: the
        import hashes the staged data as it copies it into each store, so hashing here too would
        hash every staged byte twice (``Ingested.digests`` is None). ``progress``: called
        with the running byte count, at most every PROGRESS_EVERY_BYTES and once at the end.
        """
        whole_file = source.whole_file if isinstance(source, base.DataStream) else None
        data_inspection = inspection.for_image(*formats, self.format_policy) if formats else None
        if data_inspection is not None:
            source = inspection.InspectingReader(source, data_inspection)
        source, counter = _counted(source, progress, PROGRESS_EVERY_BYTES)
        stored: base.StoredObject | None = None
        try:
            with self.reader(
                source, expected_size=size, quota_remaining=self.quota_remaining(owner), hashed=not internal
            ) as reader:
                stored = self.stores.write(
                    store_id, image_id, reader, size, internal=internal, context=context, whole_file=whole_file
                )
                digests = None if internal else reader.digests()
            verdict = data_inspection.finish() if data_inspection is not None else None
            if counter is not None:
                counter.finish()
            ingested = Ingested(
                store_id=store_id,
                stored=stored,
                digests=digests,
                virtual_size=verdict.virtual_size if verdict is not None else None,
            )
            result = record(ingested)
        except BaseException:
            if stored is not None:
                self.discard(store_id, stored.url, context)
            raise
        if not internal:
            self.sync_acls(ingested, image_id, context)
        return result

    def record_data(
        self,
        image_id: str,
        ingested: Ingested,
        *,
        expected_status: str,
        target_status: str = model.ImageStatus.ACTIVE,
        properties_removed: Iterable[str] = (),
    ) -> model.Image:
        """The image's first data: its location, size, digests and virtual size, and ``target_status``, at once."""
        digests = ingested.digests
        return self.locations.finish_upload(
            image_id,
            url=ingested.stored.url,
            metadata=self.location_metadata(ingested),
            size=digests.size,
            checksum=digests.checksum,
            os_hash_algo=digests.os_hash_algo,
            os_hash_value=digests.os_hash_value,
            virtual_size=ingested.virtual_size,
            expected_status=expected_status,
            target_status=target_status,
            properties_removed=properties_removed,
        )

    def location_metadata(self, ingested: Ingested) -> dict:
        return self.stores.location_metadata(ingested.store_id, ingested.stored)

    def discard(self, store_id: str, url: str, context: RequestContext | None = None) -> None:
        """Remove written data whose recording failed or was undone (best effort: logged)."""
        try:
            self.stores.delete(model.Location(url=url, metadata={"store": store_id}), context=context)
        except base.StoreNotFound:
            pass
        except Exception:
            LOG.exception("could not remove the data written to store %s", store_id)

    def sync_acls(self, ingested: Ingested, image_id: str, context: RequestContext | None) -> None:
        """Glance's visibility rule on the new data: only stores keeping per-image read ACLs have one."""
        if not self.stores.keeps_acls(ingested.location):
            return
        try:
            image = self.images.get_image(image_id)
        except errors.NotFound:  # deleted meanwhile: nothing left to protect
            return
        store_acls.sync(self.stores, self.members, context, image)

    # -- reading -------------------------------------------------------------------

    def digest(
        self,
        location: model.Location,
        *,
        hashing_algorithm: str,
        progress: Progress | None = None,
        progress_every: int = MIB,
        context: RequestContext | None = None,
    ) -> Digests:
        """Hash a location's data as it is read, under the size cap; nothing is written (the location API)."""
        with self.stores.read(location, context=context) as stream:
            source, counter = _counted(stream, progress, progress_every)
            with self.reader(source, hashing_algorithm=hashing_algorithm) as reader:
                while reader.read(READ_CHUNK):
                    pass
                digests = reader.digests()
        if counter is not None:
            counter.finish()
        return digests


def _counted(source: base.Readable, progress: Progress | None, every: int) -> tuple[base.Readable, _Every | None]:
    """``source`` counted for ``progress`` (unchanged without one), and the counter to ``finish``."""
    if progress is None:
        return source, None
    counter = _Every(progress, every)
    return CountingReader(source, counter), counter
