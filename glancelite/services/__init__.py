"""Use cases: no HTTP types here. ``Services`` is what the composition root hands the api layer."""

from __future__ import annotations

import dataclasses
from typing import Any

from glancelite.settings import Settings


@dataclasses.dataclass
class Services:
    settings: Settings
    engine: Any  # the db engine; only db/ code touches it
    # Filled by app.build_services as each part exists; the api layer reads only these.
    policy: Any = None
    stores: Any = None  # store.stores.StoreSet
    images: Any = None
    image_data: Any = None
    members: Any = None
    imports: Any = None
    locations: Any = None  # services.locations.LocationService (location API v2.17)
    tasks: Any = None
    info: Any = None
    cache: Any = None  # services.cache.CacheService
    metadefs: Any = None  # services.metadefs.MetadefService
    quotas: Any = None  # services.quotas.Quotas (keystone unified limits)

    def close(self) -> None:
        for part in (self.cache, self.imports, self.stores):
            closer = getattr(part, "close", None)
            if closer:
                closer()
        self.engine.dispose()
