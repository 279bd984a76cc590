"""Multi-tenant swift (swift_store_multi_tenant): location URIs, catalog lookup, options; no server.

The location format is glance_store's MultiTenantStore's:
``swift+http(s)://<storage URL without scheme>/<container>_<image_id>/<image_id>``.
The Swift round trips are in tests/gate/test_swift_multi_tenant.py.
"""

from __future__ import annotations

import pytest

from glancelite import errors
from glancelite.context import RequestContext
from glancelite.settings import StoreSettings
from glancelite.store import base, registry
from glancelite.store.capabilities import Capability
from glancelite.store.drivers.swift.auth import storage_url_from_catalog
from glancelite.store.drivers.swift.multi_tenant import (
    CallerView,
    MultiTenantSwiftDriver,
    multi_tenant_storage_url,
    multi_tenant_url,
)
from glancelite.store.drivers.swift.single_tenant import SwiftDriver

IMAGE = "0b7b5e4c-1b6f-4a7e-9a61-3f1c2d9e8a70"
ACCOUNT = "https://swift.example.test:8080/v1/AUTH_p1"
CATALOG = (
    {"type": "image", "endpoints": [{"region": "r1", "publicURL": "https://glance.example.test"}]},
    {
        "type": "object-store",
        "name": "swift",
        "endpoints": [
            {
                "region": "r0",
                "publicURL": "https://other.example.test/v1/AUTH_p1",
                "internalURL": "http://other-int/v1/AUTH_p1",
            },
            {"region": "r1", "publicURL": ACCOUNT + "/", "internalURL": "http://10.0.0.9:8080/v1/AUTH_p1"},
        ],
    },
)


def _driver(**options) -> MultiTenantSwiftDriver:
    opts = {"swift_store_multi_tenant": True, "swift_store_container": "glance", **options}
    return MultiTenantSwiftDriver(StoreSettings(id="tenant", type="swift", description=None, weight=0, options=opts))


def _context(token: str | None = "tok", catalog=CATALOG) -> RequestContext:
    return RequestContext(project_id="p1", user_id="u1", auth_token=token, service_catalog=catalog)


@pytest.mark.parametrize(
    ("storage_url", "uri"),
    [
        (ACCOUNT, f"swift+https://swift.example.test:8080/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}"),
        (ACCOUNT + "/", f"swift+https://swift.example.test:8080/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}"),
        ("http://127.0.0.1:8080/v1/AUTH_p2", f"swift+http://127.0.0.1:8080/v1/AUTH_p2/glance_{IMAGE}/{IMAGE}"),
    ],
)
def test_location_uri_carries_the_storage_url_and_round_trips(storage_url, uri):
    assert multi_tenant_url(storage_url, f"glance_{IMAGE}", IMAGE) == uri
    assert multi_tenant_storage_url(uri) == storage_url.rstrip("/")
    assert _driver().parse(uri) == (f"glance_{IMAGE}", IMAGE)
    assert _driver().owns(uri)


def test_plain_swift_scheme_and_embedded_credentials_read_as_https():
    uri = f"swift://user:secret@swift.example.test/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}"
    assert multi_tenant_storage_url(uri) == "https://swift.example.test/v1/AUTH_p1"
    assert _driver().parse(uri) == (f"glance_{IMAGE}", IMAGE)


@pytest.mark.parametrize(
    "uri",
    [
        f"swift+https://swift.example.test/v1/AUTH_p1/glance/{IMAGE}",  # the single-tenant container
        f"swift+https://swift.example.test/v1/AUTH_p1/other_{IMAGE}/{IMAGE}",  # another store's prefix
        f"swift+config://ref1/glance_{IMAGE}/{IMAGE}",
        f"swift+https://swift.example.test/glance_{IMAGE}/",
        "s3://host/bucket/x",
    ],
)
def test_foreign_locations_are_refused(uri):
    with pytest.raises(base.BadStoreUri):
        _driver().parse(uri)
    assert not _driver().owns(uri)


def test_storage_url_comes_from_the_callers_catalog():
    assert storage_url_from_catalog(CATALOG, service_type="object-store", region="r1", endpoint_type="publicURL") == (
        ACCOUNT
    )
    assert storage_url_from_catalog(CATALOG, service_type="object-store", region="r1", endpoint_type="internalURL") == (
        "http://10.0.0.9:8080/v1/AUTH_p1"
    )
    # No region: the first endpoint with the interface (keystoneauth's url_for).
    assert storage_url_from_catalog(CATALOG, service_type="object-store", region=None, endpoint_type="publicURL") == (
        "https://other.example.test/v1/AUTH_p1"
    )
    assert (
        storage_url_from_catalog(CATALOG, service_type="object-store", region="r9", endpoint_type="publicURL") is None
    )
    v3 = [{"type": "object-store", "endpoints": [{"region_id": "r1", "interface": "admin", "url": "http://a/v1/x"}]}]
    assert storage_url_from_catalog(v3, service_type="object-store", region="r1", endpoint_type="adminURL") == (
        "http://a/v1/x"
    )


def test_add_targets_the_callers_account_in_a_container_of_the_image():
    caller = _driver(swift_store_region="r1").for_context(_context())
    assert isinstance(caller, CallerView)
    assert caller.storage_url() == ACCOUNT
    assert caller.client(ACCOUNT).credentials.get() == (ACCOUNT, "tok")
    # swift_store_endpoint overrides the catalog, as in glance_store.
    pinned = _driver(swift_store_endpoint="http://pinned:8080/v1/AUTH_x").for_context(_context(catalog=()))
    assert pinned.storage_url() == "http://pinned:8080/v1/AUTH_x"


def test_each_caller_gets_its_own_view_and_the_driver_is_untouched():
    driver = _driver(swift_store_region="r1")
    alice, bob = driver.for_context(_context("tok-a")), driver.for_context(_context("tok-b"))
    assert alice is not bob and alice.driver is bob.driver is driver
    assert alice.client(ACCOUNT).credentials.get() == (ACCOUNT, "tok-a")
    assert bob.client(ACCOUNT).credentials.get() == (ACCOUNT, "tok-b")
    assert not hasattr(driver, "context") and driver.container == "glance"


def test_the_registry_picks_the_driver_by_swift_store_multi_tenant():
    def store(multi):
        return StoreSettings("s", "swift", None, 0, {"swift_store_multi_tenant": multi})

    assert registry.driver_for(store(True)) is MultiTenantSwiftDriver
    assert registry.driver_for(store(False)) is SwiftDriver
    assert registry.driver_class("swift") is SwiftDriver


def test_missing_endpoint_or_token_is_unavailable_not_a_crash():
    with pytest.raises(base.StoreUnavailable, match="no object-store publicURL endpoint in region r9"):
        _driver(swift_store_region="r9").for_context(_context()).storage_url()
    # Background work has no caller: glance_store fails there too (no context, or no token).
    for context in (None, _context(token=None)):
        with pytest.raises(base.StoreUnavailable, match="needs the caller's token"):
            _driver().for_context(context).storage_url()
    with pytest.raises(base.StoreUnavailable, match="needs the caller's token"):
        _driver().get_size(f"swift+https://swift.example.test/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}")


def test_probe_needs_no_account_and_single_tenant_ignores_the_context():
    assert Capability.WRITE_ACCESS in _driver().probe().capabilities
    single = SwiftDriver(
        StoreSettings(
            id="single",
            type="swift",
            description=None,
            weight=0,
            options={
                "swift_store_auth_address": "http://127.0.0.1:1/v3",
                "swift_store_user": "p:u",
                "swift_store_key": "k",
            },
        )
    )
    assert single.for_context(_context()) is single
    assert not single.per_caller and _driver().per_caller


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"swift_store_config_file": "/etc/glance/swift.conf"}, "swift_store_multi_tenant"),
        ({"swift_store_endpoint_type": "public"}, "swift_store_endpoint_type"),
    ],
)
def test_bad_multi_tenant_options_name_the_option(options, option):
    with pytest.raises(errors.ConfigError) as info:
        _driver(**options)
    assert (info.value.group, info.value.option) == ("tenant", option)


# -- the operator's view (glancelite-manage store audit) ------------------------------------


class _AdminLogin:
    """Credentials whose login is already done: a reseller admin's token on its own account."""

    refreshable = True

    def get(self, expire_soon: float = 0, force: bool = False) -> tuple[str, str]:
        return "http://admin.example.test:8080/v1/AUTH_admin", "admin-token"

    def invalidate(self) -> None:
        return None


def test_operator_needs_a_login_else_listing_is_skipped_with_the_reason():
    from glancelite.store import base

    view = _driver().for_operator()
    with pytest.raises(base.ListingNotSupported, match="reseller admin"):
        list(view.iter_objects())
    login = {"swift_store_auth_address": "http://a/auth/v1.0", "swift_store_user": "admin:admin"}
    assert type(_driver(**login, swift_store_key="k").for_operator()).__name__ == "OperatorView"


def test_operator_accounts_from_locations_owners_and_the_pinned_endpoint():
    from glancelite.store import base
    from glancelite.store.drivers.swift.multi_tenant import OperatorView

    driver = _driver(swift_store_endpoint="http://pinned.example.test:8080/v1/AUTH_pinned")
    view = OperatorView(driver, _AdminLogin())
    scope = base.ListingScope(
        urls=(
            f"swift+https://swift.example.test:8080/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}",
            f"swift+https://other.example.test/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}",  # same account, other host
            "swift+https://swift.example.test:8080/v1/AUTH_p9/somebody-else/x",  # not this store's container
            "file:///var/lib/glance/images/x",
        ),
        projects=("p1", "p2"),
    )
    assert view.accounts(scope) == {
        "AUTH_pinned": "http://pinned.example.test:8080/v1/AUTH_pinned",
        "AUTH_p1": "https://swift.example.test:8080/v1/AUTH_p1",
        "AUTH_p2": "http://admin.example.test:8080/v1/AUTH_p2",
    }


def test_object_key_names_the_account_not_the_host():
    driver = _driver()
    a = driver.object_key(f"swift+https://swift.example.test:8080/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}")
    b = driver.object_key(f"swift+http://10.0.0.1/v1/AUTH_p1/glance_{IMAGE}/{IMAGE}")
    assert a == b == f"AUTH_p1/glance_{IMAGE}/{IMAGE}"
