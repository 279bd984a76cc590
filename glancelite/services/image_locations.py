"""PATCH on /locations (only with show_multiple_locations=True, as in Glance).

add: a URL some configured store can read; a queued image becomes active
with it (size from the store, hashes from ``validation_data``). remove: only
from active images, never the last location, and the data goes too.
replace: on an image without locations, a series of adds; on one with data,
only the same URLs again (their metadata may change).
Location indexes refer to the list as shown (highest store weight first).
"""

from __future__ import annotations

import logging
from typing import Any

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db.repositories import ImageRepository, LocationRepository
from glancelite.services.image_access import ImageAccess
from glancelite.services.image_rules import Change
from glancelite.services.policy import Policy
from glancelite.settings import Settings
from glancelite.store.stores import StoreSet

LOG = logging.getLogger(__name__)
EDITABLE = {"add": ("queued", "active"), "remove": ("active",), "replace": ("queued", "active")}


class LocationEditor:
    def __init__(
        self,
        settings: Settings,
        *,
        images: ImageRepository,
        locations: LocationRepository,
        access: ImageAccess,
        policy: Policy,
        stores: StoreSet,
    ):
        self.settings = settings
        self.images = images
        self.locations = locations
        self.access = access
        self.policy = policy
        self.stores = stores

    def ordered(self, image: model.Image) -> list[model.Location]:
        active = [loc for loc in image.locations if loc.status == "active"]
        return self.stores.sort_locations(active)

    def apply(self, ctx: RequestContext, image: model.Image, change: Change) -> model.Image:
        verb = change.op
        if not self.settings.show_multiple_locations:
            raise errors.Forbidden(f"It's not allowed to {verb} locations if locations are invisible.")
        if image.status not in EDITABLE[verb]:
            raise errors.Conflict(f"It's not allowed to {verb} locations if image status is {image.status}.")
        target = self.access.target(ctx, image)
        if verb == "remove":
            self.policy.enforce(ctx, "delete_image_location", target)
            return self._remove(ctx, image, change.path[1])
        self.policy.enforce(ctx, "set_image_location", target)
        if verb == "add":
            return self._add(ctx, image, change.value)
        if not change.value:
            raise errors.Forbidden("Cannot set locations to empty list.")
        current = self.ordered(image)
        if not current:
            for value in change.value:
                image = self._add(ctx, image, value)
            return image
        return self._replace_metadata(image, current, change.value)

    def _replace_metadata(self, image: model.Image, current: list[model.Location], wanted: list) -> model.Image:
        """COMPAT: on an image with data, replace may only restate the same URLs (metadata may change)."""
        by_url = {loc.url: loc for loc in current}
        urls = [value["url"] for value in wanted]
        if sorted(urls) != sorted(by_url):
            raise errors.Invalid(
                "Invalid locations: replace may only change the metadata of the image's locations; "
                "add or remove locations one by one."
            )
        for value in wanted:
            location = by_url[value["url"]]
            metadata = dict(value.get("metadata") or {})
            if location.store_id and self.settings.multi_store:
                metadata.setdefault("store", location.store_id)
            if metadata != dict(location.metadata):
                self.images.set_location_metadata(image.id, location.id, metadata)
        return self.images.get_image(image.id)

    def _add(self, ctx: RequestContext, image: model.Image, value: dict[str, Any]) -> model.Image:
        current = self.ordered(image)
        url, metadata = value["url"], dict(value.get("metadata") or {})
        if any(loc.url == url for loc in current):
            raise errors.Invalid(f"The location {url} already exists")
        quota = self.settings.image_location_quota
        if quota >= 0 and len(current) + 1 > quota:
            raise errors.TooLarge(
                f"Image location limit exceeded for image {image.id}: attempted: {len(current) + 1}, maximum: {quota}"
            )
        candidate = model.Location(url=url, metadata=metadata)
        try:
            store_id = self.stores.store_of(candidate)
            size = self.stores.get_size(candidate, context=ctx)
        except (errors.NotFound, errors.Invalid) as exc:
            raise errors.Invalid(f"Invalid location: {exc.message}") from None
        if self.settings.multi_store:
            metadata.setdefault("store", store_id)
        hashes = self._hashes(image, value.get("validation_data") or {})
        if image.status == model.ImageStatus.QUEUED:
            if not (image.disk_format and image.container_format):
                raise errors.Invalid("Properties disk_format, container_format must be set prior to saving data.")
            return self.locations.finish_upload(
                image.id,
                url=url,
                metadata=metadata,
                size=size,
                expected_status="queued",
                target_status="active",
                **hashes,
            )
        if image.size is not None and size != image.size:
            raise errors.Conflict(f"The location {url} holds {size} bytes; the image has {image.size}.")
        self.locations.add_location(image.id, url, metadata)
        return self.images.get_image(image.id)

    @staticmethod
    def _hashes(image: model.Image, data: dict[str, Any]) -> dict[str, Any]:
        wanted = {
            "checksum": data.get("checksum", image.checksum),
            "os_hash_algo": data.get("os_hash_algo", image.os_hash_algo),
            "os_hash_value": data.get("os_hash_value", image.os_hash_value),
        }
        if image.status != model.ImageStatus.QUEUED:
            for key, value in data.items():
                if getattr(image, key) != value:
                    raise errors.Conflict(f"{key} in validation_data does not match the image's {key}.")
        return wanted

    def _remove(self, ctx: RequestContext, image: model.Image, index: str) -> model.Image:
        current = self.ordered(image)
        try:
            location = current[int(index)]
        except (ValueError, IndexError):
            raise errors.Invalid(f"Invalid location index {index}") from None
        if len(current) == 1:
            raise errors.Forbidden("Cannot remove last location in the image.")
        try:
            self.stores.delete_location(location, context=ctx)
        except errors.NotFound:
            LOG.info("image %s: data at %s already gone", image.id, location.store_id)
        self.locations.remove_location(image.id, location.id)
        return self.images.get_image(image.id)
