"""Image use cases: create, show, list, update, delete, deactivate/reactivate, tags.

No HTTP here. Every check that Glance makes in its deserializer, domain and
policy layers happens once, in this module, before the repository is called.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db.image_listing import SORT_KEYS  # noqa: F401 (re-exported for the api layer)
from glancelite.db.repositories import ImageRepository, MemberRepository
from glancelite.services.cache import CacheService
from glancelite.services.image_access import ImageAccess
from glancelite.services.image_locations import LocationEditor
from glancelite.services.image_rules import (  # noqa: F401 (re-exported for the api layer)
    BASE_ATTRIBUTES,
    DELETE_ATTEMPTS,
    FORMAT_CHANGE_STATES,
    HIDDEN_PROPERTIES,
    READ_ONLY_ON_CREATE,
    READ_ONLY_ON_PATCH,
    RESERVED,
    RESERVED_NAMESPACE,
    WRITABLE_COLUMNS,
    WRITABLE_INTS,
    Change,
    ListQuery,
    check_create_attributes,
    check_patch_path,
    is_reserved,
)
from glancelite.services.imports import ImportService
from glancelite.services.notifier import Notifier
from glancelite.services.policy import Policy
from glancelite.services.property_protections import PropertyProtections
from glancelite.services.quotas import Quotas
from glancelite.services.stage_hosts import StageHosts
from glancelite.settings import Settings
from glancelite.store import acls as store_acls
from glancelite.store.stores import StoreSet

LOG = logging.getLogger(__name__)


class ImageService:
    check_create_attributes = staticmethod(check_create_attributes)

    def __init__(
        self,
        settings: Settings,
        *,
        images: ImageRepository,
        members: MemberRepository,
        access: ImageAccess,
        policy: Policy,
        quotas: Quotas,
        stores: StoreSet,
        locations: LocationEditor,
        imports: ImportService,
        stage_hosts: StageHosts,
        cache: CacheService,
        property_protections: PropertyProtections | None = None,
        notifier: Notifier,
    ):
        self.settings = settings
        self.images = images
        self.members = members  # who may read the image's data in stores keeping ACLs
        self.access = access
        self.policy = policy
        self.quotas = quotas
        self.stores = stores
        self.locations = locations  # PATCH on /locations
        self.imports = imports  # staged data goes with the image
        self.stage_hosts = stage_hosts  # ... and is deleted on the node that holds it
        self.cache = cache
        # [DEFAULT] property_protection_file; None when off. Applied to what create, update,
        # show and list take in and give back (Glance's ProtectedImage*Proxy), nowhere else.
        self.protections = property_protections
        self.notifier = notifier  # image.create, image.update, image.delete

    # ------------------------------------------------------------ read

    def show(self, ctx: RequestContext, image_id: str) -> model.Image:
        return self._as_seen(ctx, self.access.visible_image(ctx, image_id))

    def _as_seen(self, ctx: RequestContext, image: model.Image) -> model.Image:
        """The image as the caller may read it: properties protected from reading left out."""
        return image if self.protections is None else self.protections.image_as_seen(ctx, image)

    def list(self, ctx: RequestContext, query: ListQuery) -> list[model.Image]:
        self.policy.enforce(ctx, "get_images", {"project_id": ctx.project_id})
        images = self.images.list_images(
            project_id=ctx.project_id,
            is_admin=ctx.is_admin,
            filters=query.filters,
            visibility=query.visibility,
            member_status=query.member_status,
            sort=query.sort,
            limit=query.limit,
            marker=query.marker,
        )
        if self.protections is not None:
            # COMPAT: the filters above still match properties the caller cannot read (Glance
            # filters in the database, then hides them from each image).
            images = self.protections.images_as_seen(ctx, images)
        if self.policy.check(ctx, "context_is_admin", {}):
            return images
        targets = self.access.targets(ctx, images)
        if images and self.policy.is_default("get_image"):
            # Glance's default get_image allows every image the visibility query returns
            # to a reader: one check answers for the page.
            allowed = [self.policy.check(ctx, "get_image", targets[0])] * len(images)
        else:
            allowed = self.policy.check_many(ctx, "get_image", targets)
        return [i for i, ok in zip(images, allowed, strict=True) if ok]

    # ------------------------------------------------------------ create

    def create(self, ctx: RequestContext, body: Mapping[str, Any]) -> model.Image:
        """``body`` has passed check_create_attributes and the image schema."""
        check_create_attributes(body)
        image_id = body.get("id") or str(uuid.uuid4())
        owner = body.get("owner", ctx.project_id)
        is_admin = self.policy.is_admin(ctx)
        if "owner" in body and owner != ctx.project_id and not is_admin:
            raise errors.Forbidden(f"You are not permitted to create images owned by '{owner}'.")
        self.policy.enforce(
            ctx,
            "add_image",
            {"project_id": ctx.project_id, "owner": owner, "visibility": body.get("visibility", "shared")},
            "You are not authorized to complete add_image action.",
        )
        self.quotas.check_create(ctx)
        visibility = body.get("visibility", model.Visibility.SHARED.value)
        self._check_visibility_change(ctx, visibility, owner)
        values: dict[str, Any] = {"id": image_id, "owner": owner, "visibility": visibility}
        for key in (*WRITABLE_COLUMNS, *WRITABLE_INTS):
            if key in body and key not in values:
                values[key] = body[key]
        properties = {k: v for k, v in body.items() if k not in BASE_ATTRIBUTES}
        self._check_property_names(properties)
        if self.protections is not None:
            self.protections.check_create(ctx, properties)
        tags = list(dict.fromkeys(body.get("tags") or ()))
        self._check_quota("property", image_id, self._count_properties(properties))
        self._check_quota("tag", image_id, len(tags))
        created = self.images.create_image(values, properties, tags)
        self.notifier.image("image.create", created)
        return self._as_seen(ctx, created)

    def _check_visibility_change(self, ctx: RequestContext, visibility: str, owner: str | None) -> None:
        target = {"project_id": owner, "owner": owner, "visibility": visibility}
        if visibility == model.Visibility.PUBLIC:
            self.policy.enforce(
                ctx, "publicize_image", target, "You are not authorized to complete publicize_image action."
            )
        elif visibility == model.Visibility.COMMUNITY:
            self.policy.enforce(
                ctx, "communitize_image", target, "You are not authorized to complete communitize_image action."
            )

    @staticmethod
    def _check_property_names(properties: Mapping[str, Any]) -> None:
        for name in properties:
            if len(name) > 255:
                raise errors.Invalid("Custom property should not be greater than 255 characters.")
            if is_reserved(name):
                raise errors.Forbidden(f"Attribute '{name}' is reserved.")

    @staticmethod
    def _count_properties(properties: Mapping[str, Any]) -> int:
        return sum(1 for name in properties if not name.startswith(RESERVED_NAMESPACE))

    def _check_quota(self, kind: str, image_id: str, attempted: int) -> None:
        maximum = {
            "property": self.settings.image_property_quota,
            "tag": self.settings.image_tag_quota,
        }[kind]
        if maximum >= 0 and attempted > maximum:
            raise errors.TooLarge(
                f"Image {kind} limit exceeded for image {image_id}: attempted: {attempted}, maximum: {maximum}"
            )

    # ------------------------------------------------------------ update

    def update(self, ctx: RequestContext, image_id: str, changes: Sequence[Change]) -> model.Image:
        image = self.access.authorize(ctx, image_id, "modify_image")
        if not changes:
            return self._as_seen(ctx, image)
        columns: dict[str, Any] = {k: getattr(image, k) for k in (*WRITABLE_COLUMNS, *WRITABLE_INTS)}
        # The patch sees only the properties the caller may read (Glance's ExtraPropertiesProxy):
        # the others "do not exist" for it and are left as they are.
        seen = self._as_seen(ctx, image).properties
        props: dict[str, Any] = dict(seen)
        tags = set(image.tags)
        current = image
        written: set[str] = set()
        for change in changes:
            if change.path[0] == "locations":
                # Location edits touch stores and rows at once; they are applied in order, immediately.
                current = self.locations.apply(ctx, current, change)
            else:
                self._apply(ctx, image, change, columns, props, tags)
                written.add(change.path[0])
        # Unreadable properties stay, unless the patch created one of the same name.
        # (Glance's save drops them all: a data loss not copied.)
        props = {**{k: v for k, v in image.properties.items() if k not in seen and k not in written}, **props}
        values = {k: v for k, v in columns.items() if v != getattr(image, k)}
        if "owner" in values and not self.policy.is_admin(ctx):
            raise errors.Forbidden("Owner can't be updated by non admin.")
        if "visibility" in values:
            self._check_visibility_change(ctx, values["visibility"], columns["owner"])
        for key in ("disk_format", "container_format"):
            if key in values and image.status not in FORMAT_CHANGE_STATES:
                raise errors.Forbidden(f"Attribute {key} can be only replaced for a queued image.")
        props_set = {k: v for k, v in props.items() if image.properties.get(k) != v or k not in image.properties}
        props_removed = [k for k in image.properties if k not in props]
        new_props = [k for k in props if k not in image.properties]
        if new_props:
            self._check_quota("property", image_id, self._count_properties(props))
        if tags - set(image.tags):
            self._check_quota("tag", image_id, len(tags))
        if not (values or props_set or props_removed or tags != set(image.tags)):
            if current is not image:  # only locations changed
                self.notifier.image("image.update", current)
            return self._as_seen(ctx, current)
        formats_changed = "disk_format" in values or "container_format" in values
        updated = self.images.update_image(
            image_id,
            # The format rule depends on the status we read: hold it with the CAS.
            expected_status=image.status if formats_changed else None,
            values=values,
            properties_set=props_set,
            properties_removed=props_removed,
            tags=sorted(tags) if tags != set(image.tags) else None,
        )
        store_acls.sync(self.stores, self.members, ctx, updated)
        self.notifier.image("image.update", updated)
        return self._as_seen(ctx, updated)

    def _apply(self, ctx, image, change: Change, columns, props, tags) -> None:
        root = change.path[0]
        check_patch_path(root)
        if root in columns:
            if change.op == "remove":
                raise errors.Forbidden(f"Property {root} may not be removed.")
            columns[root] = change.value
        elif root == "tags":
            if change.op == "remove":
                raise errors.Forbidden(f"Property {root} may not be removed.")
            tags.clear()
            tags.update(change.value or ())
        elif change.op == "remove":
            if root not in props:
                raise errors.Conflict(f"Property {root} does not exist.")
            self._protect(ctx, root, "delete")
            del props[root]
        elif change.op == "replace":
            if root not in props:
                raise errors.Conflict(f"Property {root} does not exist.")
            self._protect(ctx, root, "update")
            props[root] = change.value
        else:
            if change.strict_add and root in props:
                raise errors.Conflict(f"Property {root} already present.")
            if len(root) > 255:
                raise errors.Invalid("Custom property should not be greater than 255 characters.")
            # 'add' of a property the caller can read updates it; otherwise it creates one.
            self._protect(ctx, root, "update" if root in props else "create")
            props[root] = change.value

    def _protect(self, ctx: RequestContext, name: str, operation: str) -> None:
        if self.protections is not None:
            self.protections.enforce(ctx, name, operation)

    # ------------------------------------------------------------ delete

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        image = self.access.authorize(
            ctx, image_id, "delete_image", not_found=f"Failed to find image {image_id} to delete"
        )
        if image.protected:
            raise errors.Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        image = self._delete_on_stage_host(ctx, image)
        if image is None:
            return
        for attempt in range(DELETE_ATTEMPTS):
            # Delayed delete: an image with data waits pending_delete for the scrubber
            # (services/scrubber.py), which deletes its data later; one without goes at once.
            keep_data = self.settings.delayed_delete and bool(image.locations)
            if keep_data:
                self._check_pending_delete(image)
            else:
                model.check_transition(image.status, model.ImageStatus.DELETED)
            self._delete_data(ctx, image, keep_stored=keep_data)
            try:
                deleted = self.images.delete_image(image_id, expected_status=image.status, keep_data=keep_data)
                self.cache.forget(image_id)
                self.notifier.image_deleted(deleted)
                return
            except errors.Conflict:
                # The image moved on (an upload finished?) while we deleted its data:
                # look again so data written meanwhile is removed too.
                if attempt == DELETE_ATTEMPTS - 1:
                    raise
                image = self.images.get_image(image_id)

    def _delete_on_stage_host(self, ctx: RequestContext, image: model.Image) -> model.Image | None:
        """An image staged on another node is deleted there, so that node removes its staged data.

        None when the remote did it; its error answers are ours. When it cannot be
        reached, the delete goes on here and the staged data stays behind (as in Glance).
        """
        host = self.stage_hosts.remote_host(image)
        if not host:
            return image
        try:
            self.stage_hosts.forward(ctx, "DELETE", host, f"/v2/images/{image.id}")
            return None
        except errors.BadGateway:
            LOG.warning("image %s: stage host %s unreachable; deleting here, its staged data stays", image.id, host)
            try:
                return self.images.get_image(image.id)
            except errors.NotFound as exc:
                raise errors.NotFound(f"Failed to find image {image.id} to delete") from exc

    @staticmethod
    def _check_pending_delete(image: model.Image) -> None:
        # COMPAT: Glance's domain puts every image with locations into pending_delete, and its
        # status table allows that from active alone: a deactivated image answers 400.
        if model.ImageStatus.PENDING_DELETE not in model.TRANSITIONS[model.ImageStatus(image.status)]:
            raise errors.Invalid(f"Image status transition from {image.status} to pending_delete is not allowed")

    def _delete_data(self, ctx: RequestContext, image: model.Image, *, keep_stored: bool = False) -> None:
        """Remove the image's bytes from every store (unless ``keep_stored``) and its staged data.

        A failure stops the delete. Data already gone (NotFound) counts as deleted, so a
        retried DELETE converges. Staged data goes even with delayed delete, as in Glance.
        """
        failures = []
        for location in () if keep_stored else image.locations:
            try:
                self.stores.delete_location(location, context=ctx, image_id=image.id)
            except errors.NotFound:
                LOG.info("image %s: data at %s already gone", image.id, location.store_id)
            except errors.GlanceliteError as exc:
                LOG.error("image %s: cannot delete data in store %s: %s", image.id, location.store_id, exc)
                failures.append(f"{location.store_id or location.url}: {exc.public_message}")
        # Staged data lives in the staging store, which the import service keeps.
        try:
            self.imports.delete_staged_data(image)
        except errors.NotFound:
            pass
        except errors.GlanceliteError as exc:
            failures.append(f"staging: {exc.message}")
        if failures:
            raise errors.Unavailable(
                f"Image {image.id} was not deleted because its data could not be removed from "
                + "; ".join(failures)
                + ". Try again later."
            )

    # ------------------------------------------------------------ actions

    def deactivate(self, ctx: RequestContext, image_id: str) -> None:
        image = self.access.authorize(ctx, image_id, "deactivate")
        if image.status == model.ImageStatus.DEACTIVATED:
            return
        if image.status != model.ImageStatus.ACTIVE:
            raise errors.Forbidden(f"Not allowed to deactivate image in status '{image.status}'")
        self._set_status(image, model.ImageStatus.DEACTIVATED)

    def reactivate(self, ctx: RequestContext, image_id: str) -> None:
        image = self.access.authorize(ctx, image_id, "reactivate")
        if image.status == model.ImageStatus.ACTIVE:
            return
        if image.status != model.ImageStatus.DEACTIVATED:
            raise errors.Forbidden(f"Not allowed to reactivate image in status '{image.status}'")
        self._set_status(image, model.ImageStatus.ACTIVE)

    def _set_status(self, image: model.Image, target: str) -> model.Image:
        model.check_transition(image.status, target)
        updated = self.images.update_image(image.id, expected_status=image.status, values={"status": target})
        self.notifier.image("image.update", updated)
        return updated

    # ------------------------------------------------------------ tags

    def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        image = self.access.authorize(ctx, image_id, "modify_image", not_found=f"Image {image_id} not found.")
        if tag in image.tags:
            return
        if len(tag) > 255:
            raise errors.Invalid(f"Provided object does not match schema 'image': '{tag}' is too long")
        self._check_quota("tag", image_id, len(image.tags) + 1)
        self.notifier.image("image.update", self.images.update_image(image_id, tags_added=[tag]))

    def delete_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        image = self.access.authorize(ctx, image_id, "modify_image", not_found=f"Image {image_id} not found.")
        if tag not in image.tags:
            raise errors.NotFound(f"Tag {tag} not found.")
        self.notifier.image("image.update", self.images.update_image(image_id, tags_removed=[tag]))
