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

``for_operator()`` (glancelite-manage store audit) is an ``OperatorView``: it logs in with
``swift_store_auth_address`` / ``swift_store_user`` / ``swift_store_key`` (unused otherwise
in this mode), a reseller admin who may act on every account (tempauth ``.reseller_admin``,
keystone's ``ResellerAdmin`` role). Swift cannot list its accounts, so the view lists those
the database knows of (``ListingScope``): every account a recorded location names, and the
account of every project that owns an image (the admin's storage URL with its account
replaced by ``<reseller prefix><project>``, Swift's own naming, e.g. ``AUTH_<project id>``),
plus ``swift_store_endpoint``'s when set. In each, the containers ``<container>_*``.
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
from glancelite.store.drivers.swift.auth import CallerToken, Credentials, InAccount, storage_url_from_catalog
from glancelite.store.drivers.swift.client import SwiftClient
from glancelite.store.drivers.swift.common import SwiftBase, fold_segments, redact

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

    def for_operator(self) -> CallerView:
        """The store as its operator (a reseller admin) sees it; as no caller when no login is configured."""
        auth, user, key = (self.option(o) for o in ("swift_store_auth_address", "swift_store_user", "swift_store_key"))
        if not (auth and user and key):
            return CallerView(self, None)
        version = self.option("swift_store_auth_version")
        if version not in ("1", "2", "3"):
            raise errors.ConfigError(self.store.id, "swift_store_auth_version", "must be 1, 2 or 3")
        options = {"insecure": self.tuning.insecure, "cacert": self.tuning.cacert, "region": self.region}
        auth = auth if "://" in auth else "https://" + auth
        return OperatorView(self, Credentials(self.store.id, auth, user, key, version, options))

    def object_key(self, url: str) -> str:
        """``<account>/<container>/<object>``: the same object whatever host the location names."""
        container, obj = self.parse(url)
        return f"{multi_tenant_storage_url(url).rsplit('/', 1)[-1]}/{container}/{obj}"

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

    def iter_objects(self, scope: base.ListingScope | None = None):
        return self.for_context(None).iter_objects(scope)


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

    def iter_objects(self, scope: base.ListingScope | None = None):
        raise base.ListingNotSupported(
            f"Store {self.driver.store.id} is multi-tenant: each image lives in its owner's Swift account; "
            "set swift_store_auth_address, swift_store_user and swift_store_key to a reseller admin "
            "to audit them."
        )

    def owns(self, url: str) -> bool:
        return self.driver.owns(url)

    def object_key(self, url: str) -> str:
        return self.driver.object_key(url)


class OperatorView(CallerView):
    """The multi-tenant store acting as its operator: a reseller admin's token on every account."""

    def __init__(self, driver: MultiTenantSwiftDriver, credentials: Credentials):
        super().__init__(driver, None)
        self.credentials = credentials

    def client(self, storage_url: str) -> SwiftClient:
        return SwiftClient(self.driver.store.id, InAccount(self.credentials, storage_url), self.driver.tuning)

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        raise base.StoreWriteDenied(f"Store {self.driver.store.id}: an operator writes no image.")

    def delete(self, url: str) -> None:
        client, container, obj = self._at(url)
        client.delete(container, obj)
        # The image's own container goes with its last object (a Conflict: others are still in it).
        with contextlib.suppress(base.StoreNotFound, base.Duplicate):
            client.call(f"delete container {container}", sc.delete_container, container, missing=True)

    def accounts(self, scope: base.ListingScope | None) -> dict[str, str]:
        """Account name -> storage URL of every account the store may hold data in."""
        driver = self.driver
        admin_url = self.credentials.get(driver.tuning.expire_soon)[0].rstrip("/")
        found: dict[str, str] = {}

        def add(storage_url: str) -> None:
            found.setdefault(storage_url.rstrip("/").rsplit("/", 1)[-1], storage_url.rstrip("/"))

        if driver.endpoint:
            add(driver.endpoint)
        for url in scope.urls if scope else ():
            if driver.owns(url):
                add(multi_tenant_storage_url(url))
        root, _, admin_account = admin_url.rpartition("/")
        prefix, underscore, _ = admin_account.partition("_")
        if underscore:
            for project in scope.projects if scope else ():
                add(f"{root}/{prefix}_{project}")
        return found

    def iter_objects(self, scope: base.ListingScope | None = None):
        """Objects of the ``<container>_*`` containers of every account of ``accounts(scope)``;
        a manifest's segments counted in its size, a segment without its manifest an object of its own."""
        prefix = f"{self.driver.container}_"
        for account, storage_url in sorted(self.accounts(scope).items()):
            client = self.client(storage_url)
            try:
                _, containers = client.call(
                    f"list account {account}", sc.get_account, prefix=prefix, full_listing=True, missing=True
                )
            except base.StoreNotFound:
                continue  # an account Swift has never seen: nothing in it
            for entry in containers:
                container = entry["name"]
                try:
                    listing = client.listing(container)
                except base.StoreNotFound:
                    continue  # removed while we looked
                for name, size, modified in fold_segments(listing):
                    yield base.ListedObject(
                        key=f"{account}/{container}/{name}",
                        url=multi_tenant_url(storage_url, container, name),
                        size=size,
                        modified=modified,
                    )


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
