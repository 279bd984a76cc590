"""Single-tenant swift store (glance_store's SingleTenantStore): every image in one container
of the store's own account.

Credentials come from ``swift_store_auth_address``/``_user``/``_key`` or from a
reference in ``swift_store_config_file``. Locations never carry them:
``swift+config://<reference>/<container>/<obj>`` with a references file,
otherwise ``swift+http(s)://<auth host/path>/<container>/<obj>``.
# COMPAT: glance_store embeds ``user:key@`` in the second form; we read such
# locations (ignoring the embedded keys) but never write them.

The token is refreshed before any request once it is within
``swift_store_expire_soon_interval`` seconds of expiring, so a long upload outlives it.
"""

from __future__ import annotations

import configparser
import urllib.parse
from collections.abc import Iterator

import swiftclient.client as sc

from glancelite import errors
from glancelite.settings import StoreSettings
from glancelite.store import base
from glancelite.store.capabilities import Capability
from glancelite.store.drivers.swift.auth import Credentials
from glancelite.store.drivers.swift.client import PROBE_TIMEOUT, SwiftClient
from glancelite.store.drivers.swift.common import SwiftBase, fold_segments, redact
from glancelite.store.drivers.swift.multi_tenant import MultiTenantSwiftDriver


class SwiftDriver(SwiftBase):
    """The registry's driver for type ``swift``; ``variant`` hands multi-tenant stores to MultiTenantSwiftDriver."""

    @classmethod
    def variant(cls, store: StoreSettings) -> type[base.Driver]:
        return MultiTenantSwiftDriver if store.options.get("swift_store_multi_tenant") else cls

    def __init__(self, store: StoreSettings):
        if store.options.get("swift_store_multi_tenant"):
            raise ValueError(f"store {store.id} is multi-tenant: build it with registry.driver_for(store)")
        super().__init__(store)
        self.credentials = self._credentials()
        self.client = SwiftClient(store.id, self.credentials, self.tuning, pending_removals=self.pending_removals)

    def _credentials(self) -> Credentials:
        conn_opts = {
            "insecure": self.tuning.insecure,
            "cacert": self.tuning.cacert,
            "region": self.option("swift_store_region"),
            "endpoint": self.option("swift_store_endpoint"),
        }
        version = self.option("swift_store_auth_version")
        config_file = self.option("swift_store_config_file")
        if config_file:
            self.reference = self.option("default_swift_reference")
            parser = configparser.ConfigParser()
            if not parser.read(config_file):
                raise errors.ConfigError(self.store.id, "swift_store_config_file", f"cannot read {config_file}")
            if not parser.has_section(self.reference):
                raise errors.ConfigError(
                    self.store.id, "default_swift_reference", f"{config_file} has no section [{self.reference}]"
                )
            ref = dict(parser.items(self.reference))
            auth, user, key = ref.get("auth_address"), ref.get("user"), ref.get("key")
            version = ref.get("auth_version", version)
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
        if "://" not in auth:
            auth = "https://" + auth
        self.auth_address = auth
        return Credentials(self.store.id, auth, user, key, version, conn_opts)

    # -- locations -------------------------------------------------------------------

    def url_of(self, obj: str) -> str:
        path = f"{urllib.parse.quote(self.container)}/{urllib.parse.quote(obj)}"
        if self.reference:
            return f"swift+config://{urllib.parse.quote(self.reference)}/{path}"
        split = urllib.parse.urlsplit(self.auth_address)
        return f"swift+{split.scheme}://{split.netloc}{split.path.rstrip('/')}/{path}"

    def parse(self, url: str) -> tuple[str, str]:
        """(container, object) of a location of this store's container."""
        _, container, obj = self._split(url)
        if container != self.container:
            # A store reads only its own container: two swift stores never serve each other's data.
            raise base.BadStoreUri(
                f"Location {redact(url)} is not in container {self.container} of store {self.store.id}."
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

    # -- live state ------------------------------------------------------------------

    def probe(self) -> base.Probe:
        caps = self.configured_capabilities()
        try:
            conn = self.client.conn(PROBE_TIMEOUT)
            self.client.call("probe", sc.head_container, self.container, conn=conn, missing=True)
        except base.StoreNotFound:
            if self.tuning.create_container:
                return base.Probe(caps)
            return base.Probe(Capability.DRIVER_REUSABLE, f"container {self.container} does not exist")
        except errors.GlanceliteError as exc:
            return base.Probe(Capability.DRIVER_REUSABLE, exc.message, unreachable=True)
        return base.Probe(caps)

    # -- operations ------------------------------------------------------------------

    def add(self, image_id: str, reader: base.Readable, size: int | None) -> base.StoredObject:
        written = self.client.put_image(self.container, image_id, reader, size)
        return base.StoredObject(url=self.url_of(image_id), size=written, metadata={})

    def get(self, url: str, offset: int = 0, length: int | None = None) -> base.DataStream:
        return self.client.get(*self.parse(url), offset, length)

    def get_size(self, url: str) -> int:
        return self.client.size(*self.parse(url))

    def delete(self, url: str) -> None:
        self.client.delete(*self.parse(url))

    def iter_objects(self, scope: base.ListingScope | None = None) -> Iterator[base.ListedObject]:
        """The container's objects; a manifest's segments (``<obj>-00001``...) count in its size."""
        try:
            listing = self.client.listing(self.container)
        except base.StoreNotFound:
            return
        for name, size, modified in fold_segments(listing):
            yield base.ListedObject(key=name, url=self.url_of(name), size=size, modified=modified)

    def object_key(self, url: str) -> str:
        return self.parse(url)[1]
