"""Image JSON: Glance's shape, timestamps, stores without reserved ones, hidden bookkeeping."""

from __future__ import annotations

from datetime import datetime

from glancelite import model
from glancelite.api import views
from glancelite.settings import Settings, StoreSettings

STORES = (
    StoreSettings("slow", "file", None, 10, {}),
    StoreSettings("fast", "file", None, 100, {}),
    StoreSettings("os_glance_staging_store", "file", None, 0, {}, reserved=True),
)


def image(**changes) -> model.Image:
    base = model.Image(
        id="11111111-2222-3333-4444-555555555555",
        name="n",
        status="active",
        visibility="shared",
        protected=False,
        os_hidden=False,
        owner="p",
        size=3,
        virtual_size=None,
        checksum="c",
        os_hash_algo="sha512",
        os_hash_value="h",
        disk_format="raw",
        container_format="bare",
        min_disk=0,
        min_ram=0,
        created_at=datetime(2024, 1, 2, 3, 4, 5, 678901),
        updated_at=None,
        properties={"empty": None, "os_glance_stage_host": "http://w1", "kept": "v"},
        tags=frozenset({"b", "a"}),
        locations=(
            model.Location("file:///slow/x", {"store": "slow"}, id=1),
            model.Location("file:///fast/x", {"store": "fast"}, id=2),
            model.Location("file:///staging/x", {"store": "os_glance_staging_store"}, id=3),
            model.Location("file:///gone/x", {"store": "fast"}, status="deleted", id=4),
        ),
    )
    return base.replace(**changes)


def test_shape_and_timestamps():
    view = views.image(image(), Settings(multi_store=True, stores=STORES))
    assert view["created_at"] == "2024-01-02T03:04:05Z" and view["updated_at"] == view["created_at"]
    assert view["tags"] == ["a", "b"] and view["empty"] == "" and view["kept"] == "v"
    assert "os_glance_stage_host" not in view
    assert view["self"].endswith(view["id"]) and view["schema"] == "/v2/schemas/image"
    # Highest weight first; reserved stores never named.
    assert view["stores"] == "fast,slow"
    assert "locations" not in view and "direct_url" not in view


def test_locations_and_direct_url_when_enabled():
    settings = Settings(multi_store=True, stores=STORES, show_multiple_locations=True, show_image_direct_url=True)
    view = views.image(image(), settings)
    assert [loc["url"] for loc in view["locations"]][:2] == ["file:///fast/x", "file:///slow/x"]
    assert view["direct_url"] == "file:///fast/x"


def test_single_store_has_no_stores_key():
    assert "stores" not in views.image(image(), Settings(multi_store=False, stores=STORES))
