"""Use cases: no HTTP types here. ``Services`` is what the composition root hands the api layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from glancelite.settings import Settings

if TYPE_CHECKING:  # names only: importing every service here would load them all whenever one is imported
    from glancelite.metrics import Metrics
    from glancelite.services.cache import CacheService
    from glancelite.services.health import HealthService
    from glancelite.services.image_data import ImageDataService
    from glancelite.services.images import ImageService
    from glancelite.services.imports import ImportService
    from glancelite.services.locations import LocationService
    from glancelite.services.members import MemberService
    from glancelite.services.metadefs import MetadefService
    from glancelite.services.notifier import Notifier
    from glancelite.services.policy import Policy
    from glancelite.services.quotas import Quotas
    from glancelite.services.scrubber import Scrubber
    from glancelite.services.store_audit import StoreAudit
    from glancelite.services.tasks import TaskService
    from glancelite.store.stores import StoreSet


@dataclasses.dataclass(frozen=True)
class Services:
    """Every service, built once by app.build_services; the api layer reads only these."""

    settings: Settings
    policy: Policy
    stores: StoreSet
    quotas: Quotas  # keystone unified limits
    cache: CacheService
    image_data: ImageDataService
    imports: ImportService
    images: ImageService
    members: MemberService
    locations: LocationService  # location API v2.17
    tasks: TaskService
    metadefs: MetadefService
    notifier: Notifier  # Glance's notifications; closed last, after the imports that emit them
    health: HealthService  # the detailed health check
    metrics: Metrics  # this process's Prometheus metrics (the request middleware records into it)
    close_database: Callable[[], None] = dataclasses.field(repr=False)

    def close(self) -> None:
        """Stop background work, then release the stores and the database (a worker's graceful stop)."""
        self.cache.close()
        self.imports.close()
        self.stores.close()
        self.close_database()
        self.notifier.close()


@dataclasses.dataclass(frozen=True)
class ScrubberServices:
    """What glancelite-scrubber runs, built once by app.build_scrubber."""

    settings: Settings
    scrubber: Scrubber
    stores: StoreSet
    close_database: Callable[[], None] = dataclasses.field(repr=False)

    def close(self) -> None:
        self.stores.close()
        self.close_database()


@dataclasses.dataclass(frozen=True)
class StoreAuditServices:
    """What ``glancelite-manage store audit`` runs, built once by app.build_store_audit."""

    audit: StoreAudit
    stores: StoreSet
    close_database: Callable[[], None] = dataclasses.field(repr=False)

    def close(self) -> None:
        self.stores.close()
        self.close_database()
