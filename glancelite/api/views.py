"""Model objects rendered as Glance's JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from glancelite import model
from glancelite.services.image_rules import HIDDEN_PROPERTIES
from glancelite.settings import Settings

IMAGE_ATTRIBUTES = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
)


def isotime(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None


def _public_store_ids(settings: Settings) -> set[str]:
    return {s.id for s in settings.public_stores}


def _weight(settings: Settings, loc: model.Location) -> int:
    store = settings.store(loc.store_id) if loc.store_id else None
    return store.weight if store else 0


def image(img: model.Image, settings: Settings) -> dict[str, Any]:
    # COMPAT: a custom property stored as NULL is shown as "".
    view: dict[str, Any] = {
        k: ("" if v is None else v) for k, v in img.properties.items() if k not in HIDDEN_PROPERTIES
    }
    for attr in IMAGE_ATTRIBUTES:
        view[attr] = getattr(img, attr)
    view["id"] = img.id
    view["created_at"] = isotime(img.created_at)
    view["updated_at"] = isotime(img.updated_at or img.created_at)
    view["tags"] = sorted(img.tags)
    active = sorted((loc for loc in img.locations if loc.status == "active"), key=lambda loc: -_weight(settings, loc))
    if settings.show_multiple_locations:
        view["locations"] = [{"url": loc.url, "metadata": dict(loc.metadata)} for loc in active]
    if settings.show_image_direct_url and active:
        view["direct_url"] = active[0].url
    view["self"] = f"/v2/images/{img.id}"
    view["file"] = f"/v2/images/{img.id}/file"
    view["schema"] = "/v2/schemas/image"
    if settings.multi_store:
        public = _public_store_ids(settings)
        stores = [loc.store_id for loc in active if loc.store_id and loc.store_id in public]
        if stores:
            view["stores"] = ",".join(dict.fromkeys(stores))
    return view


def member(m: model.Member) -> dict[str, Any]:
    return {
        "member_id": m.member_id,
        "image_id": m.image_id,
        "status": m.status,
        "created_at": isotime(m.created_at),
        "updated_at": isotime(m.updated_at or m.created_at),
        "schema": "/v2/schemas/member",
    }
