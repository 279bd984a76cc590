"""Multi-tenant swift store (``swift_store_multi_tenant``, glance_store's MultiTenantStore).

Each image goes into a container ``<swift_store_container>_<image_id>`` of the *caller's*
account, the ``swift_store_service_type`` endpoint of the caller's service catalog
(``swift_store_region``, ``swift_store_endpoint_type``; ``swift_store_endpoint``
overrides it), written, read and deleted with the caller's token. The location
carries the storage URL and no credentials:
``swift+https://<storage URL without scheme>/<container>_<image_id>/<image_id>``.
``set_acls`` maps image visibility/members onto the container's read ACL.

The driver holds the store's settings only; ``for_context(context)`` returns a
``CallerView`` bound to one caller, which does the work. The driver's own
operations act for no caller (background work) and fail as glance_store does.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Sequence

import swiftclient.client as sc

from glancelite import errors
from glancelite.context import RequestContext
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.drivers.swift.auth import CallerToken, storage_url_from_catalog
from glancelite.store.drivers.swift.client import SwiftClient
from glancelite.store.drivers.swift.common import SwiftBase, redact

ENDPOINT_TYPES = ("publicURL", "internalURL", "adminURL")


class MultiTenantSwiftDriver(SwiftBase):
    per_caller = True

    def __init__(self, store: StoreSettings):
        super().__init__(store)
        if self.option("swift_store_config_file"):
            # glance_store refuses this pair too: the references file is the single-tenant login.
            raise errors.ConfigError(
                self.store.id, "swift_store_multi_tenant", "cannot be combined with swift_store_config_file"
            )
        self.endpoint_type = self.option("swift_store_endpoint_type")
        if self.endpoint_type not in ENDPOINT_TYPES:
            raise errors.ConfigError(self.store.id, "swift_store_endpoint_type", f"must be one of {ENDPOINT_TYPES}")
        self.service_type = self.option("swift_store_service_type")
        self.region = self.option("swift_store_region")
        self.endpoint = self.option("swift_store_endpoint")
        self.admin_tenants = list(self.option("swift_store_admin_tenants") or [])

    def for_context(self, context: RequestContext | None) -> CallerView:
        """The store acting for ``context``'s caller: its token, its catalog, its account."""
        return CallerView(self, context)

    # -- locations -------------------------------------------------------------------

    def parse(self, url: str) -> tuple[str, str]:
        """(container, object) of a location in one of this store's per-image containers."""
        split, container, obj = self._split(url)
        if split.scheme == "swift+config" or not container.startswith(f"{self.container}_"):
            raise base.BadStoreUri(
                f"Location {redact(url)} is not in a {self.container}_<image> container of "
                f"multi-tenant store {self.store.id}."
            )
        return container, obj

    def owns(self, url: str) -> bool:
        try:
            self.parse(url)
        except errors.GlanceliteError:
            return False
        return True

    # -- live state ------------------------------------------------------------------

    def probe(self) -> base.Probe:
        return base.Probe(self.configured_capabilities())  # every account is a caller's: nothing to probe without one

    # -- operations: as no caller ----------------------------------------------------------

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        return self.for_context(None).add(image_id, reader, size)

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        return self.for_context(None).get(url, offset, length)

    def get_size(self, url: str) -> int:
        return self.for_context(None).get_size(url)

    def delete(self, url: str) -> None:
        self.for_context(None).delete(url)

    def set_acls(self, url: str, *, public: bool, read_projects: Sequence[str]) -> None:
        self.for_context(None).set_acls(url, public=public, read_projects=read_projects)

    def iter_objects(self):
        return self.for_context(None).iter_objects()


class CallerView(base.Driver):
    """A multi-tenant store acting for one caller (None: no caller, so every request fails)."""

    TYPE = SwiftBase.TYPE
    SCHEMES = SwiftBase.SCHEMES
    STATIC_CAPABILITIES = SwiftBase.STATIC_CAPABILITIES
    per_caller = True

    def __init__(self, driver: MultiTenantSwiftDriver, context: RequestContext | None):
        super().__init__(driver.store)
        self.driver = driver
        self.token = context.auth_token if context else None
        self.catalog = context.service_catalog if context else ()

    def storage_url(self) -> str:
        """The caller's account: ``swift_store_endpoint``, else the caller's catalog entry."""
        driver = self.driver
        if not self.token:
            CallerToken(driver.store.id, None).get()  # raises: no caller to act for
        url = driver.endpoint or storage_url_from_catalog(
            self.catalog,
            service_type=driver.service_type,
            region=driver.region,
            endpoint_type=driver.endpoint_type,
        )
        if not url:
            where = f" in region {driver.region}" if driver.region else ""
            raise base.StoreUnavailable(
                f"Multi-tenant swift store {driver.store.id}: the caller's service catalog has no "
                f"{driver.service_type} {driver.endpoint_type} endpoint{where}."
            )
        return url.rstrip("/")

    def client(self, storage_url: str) -> SwiftClient:
        """Requests to the account at ``storage_url`` with the caller's token."""
        credentials = CallerToken(self.driver.store.id, self.token, storage_url)
        return SwiftClient(
            self.driver.store.id,
            credentials,
            self.driver.tuning,
            callers_token=True,
            pending_removals=self.driver.pending_removals,
        )

    def _at(self, url: str) -> tuple[SwiftClient, str, str]:
        """(client of the location's account, container, object)."""
        container, obj = self.driver.parse(url)
        return self.client(multi_tenant_storage_url(url)), container, obj

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        storage_url = self.storage_url()
        container = f"{self.driver.container}_{image_id}"
        written = self.client(storage_url).put_image(container, image_id, reader, size)
        return base.StoredObject(url=multi_tenant_url(storage_url, container, image_id), size=written, metadata={})

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        client, container, obj = self._at(url)
        return client.get(container, obj, offset, length)

    def get_size(self, url: str) -> int:
        client, container, obj = self._at(url)
        return client.size(container, obj)

    def delete(self, url: str) -> None:
        client, container, obj = self._at(url)
        client.delete(container, obj)
        # glance_store's MultiTenantStore removes the image's own container too.
        with contextlib.suppress(base.StoreNotFound):
            client.call(f"delete container {container}", sc.delete_container, container, missing=True)

    def set_acls(self, url: str, *, public: bool, read_projects: Sequence[str]) -> None:
        """glance_store's MultiTenantStore.set_acls: who may read the image's container.

        Public: ``*:*`` (every authenticated project); otherwise the member projects;
        ``swift_store_admin_tenants`` get the write ACL (as in glance_store).
        """
        client, container, _ = self._at(url)
        read = "*:*" if public else ",".join(f"{p}:*" for p in read_projects)
        write = ",".join(f"{p}:*" for p in self.driver.admin_tenants)
        headers = {"X-Container-Read": read, "X-Container-Write": write}
        client.call(f"set the ACLs of {container}", sc.post_container, container, headers, missing=True)

    def iter_objects(self):
        raise base.ListingNotSupported(
            f"Store {self.driver.store.id} is multi-tenant: each image lives in its owner's Swift account, "
            "and the store has no account of its own to list."
        )

    def owns(self, url: str) -> bool:
        return self.driver.owns(url)


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
