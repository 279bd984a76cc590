"""One repository per aggregate, each binding the engine once.

Services and import steps hold these, never the engine. Each method is the
module function of the same name (db/images.py, db/image_listing.py, ...)
without its engine argument; migrations, glancelite-manage and tests may still
call those functions with an engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from glancelite import model
from glancelite.db import image_listing, scrub_queue, store_references
from glancelite.db import images as images_db
from glancelite.db import locations as locations_db
from glancelite.db import members as members_db
from glancelite.db import metadef_records as records
from glancelite.db import metadefs as metadefs_db
from glancelite.db import tasks as tasks_db
from glancelite.db import usage as usage_db


class ImageRepository:
    """Images with their properties, tags and locations; listing (db/image_listing.py) included."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get_image(self, image_id: str) -> model.Image:
        return images_db.get_image(self.engine, image_id)

    def get_images(self, image_ids: Iterable[str]) -> list[model.Image]:
        return images_db.get_images(self.engine, image_ids)

    def images_with_property(self, name: str, *, status: str) -> list[model.Image]:
        return images_db.images_with_property(self.engine, name, status=status)

    def create_image(
        self, values: dict, properties: Mapping[str, str] | None = None, tags: Iterable[str] = ()
    ) -> model.Image:
        return images_db.create_image(self.engine, values, properties, tags)

    def update_image(self, image_id: str, **options: Any) -> model.Image:
        """db/images.py update_image, keyword options as there."""
        return images_db.update_image(self.engine, image_id, **options)

    def delete_image(
        self, image_id: str, *, expected_status: str | None = None, keep_data: bool = False
    ) -> model.Image:
        return images_db.delete_image(self.engine, image_id, expected_status=expected_status, keep_data=keep_data)

    def set_location_metadata(self, image_id: str, location_id: int, metadata: Mapping[str, Any]) -> bool:
        return images_db.set_location_metadata(self.engine, image_id, location_id, metadata)

    def acquire_property_lock(self, image_id: str, name: str, value: str) -> model.Image:
        return images_db.acquire_property_lock(self.engine, image_id, name, value)

    def release_property_lock(self, image_id: str, name: str, value: str) -> bool:
        return images_db.release_property_lock(self.engine, image_id, name, value)

    def back_to_queued(
        self, image_id: str, from_statuses: Iterable[str], *, properties_removed: Iterable[str] = ()
    ) -> bool:
        return images_db.back_to_queued(self.engine, image_id, from_statuses, properties_removed=properties_removed)

    def list_images(self, **options: Any) -> list[model.Image]:
        """db/image_listing.py list_images, keyword options as there."""
        return image_listing.list_images(self.engine, **options)


class MemberRepository:
    """Image members: the projects a shared image is offered to, and their answers."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def list_members(self, image_id: str) -> list[model.Member]:
        return members_db.list_members(self.engine, image_id)

    def find_member(self, image_id: str, member_id: str | None) -> model.Member | None:
        return members_db.find_member(self.engine, image_id, member_id)

    def member_projects(self, image_ids: list[str], project_id: str | None) -> set[str]:
        return members_db.member_projects(self.engine, image_ids, project_id)

    def create_member(self, image_id: str, member_id: str, *, quota: int = -1) -> model.Member:
        return members_db.create_member(self.engine, image_id, member_id, quota=quota)

    def update_member(self, image_id: str, member_id: str, status: str) -> model.Member:
        return members_db.update_member(self.engine, image_id, member_id, status)

    def delete_member(self, image_id: str, member_id: str) -> None:
        return members_db.delete_member(self.engine, image_id, member_id)


class LocationRepository:
    """Image locations, the upload that makes an image active, and storage used per owner."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def finish_upload(self, image_id: str, **options: Any) -> model.Image:
        """db/locations.py finish_upload, keyword options as there."""
        return locations_db.finish_upload(self.engine, image_id, **options)

    def add_location(self, image_id: str, url: str, metadata: Mapping[str, Any]) -> int:
        return locations_db.add_location(self.engine, image_id, url, metadata)

    def remove_location(self, image_id: str, location_id: int) -> bool:
        return locations_db.remove_location(self.engine, image_id, location_id)

    def storage_used(self, owner: str | None) -> int:
        return locations_db.storage_used(self.engine, owner)


class TaskRepository:
    """Tasks (imports, location imports) and their input, result and expiry."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create_task(self, values: Mapping[str, Any], task_input: Any) -> model.Task:
        return tasks_db.create_task(self.engine, values, task_input)

    def get_task(self, task_id: str, *, owner: str | None = None, admin: bool = True) -> model.Task:
        return tasks_db.get_task(self.engine, task_id, owner=owner, admin=admin)

    def list_tasks(self, **options: Any) -> list[model.Task]:
        """db/tasks.py list_tasks, keyword options as there."""
        return tasks_db.list_tasks(self.engine, **options)

    def image_tasks(self, image_id: str) -> list[dict]:
        return tasks_db.image_tasks(self.engine, image_id)

    def unfinished_tasks(self, task_type: str | None = None) -> list[model.Task]:
        return tasks_db.unfinished_tasks(self.engine, task_type)

    def update_task(self, task_id: str, **options: Any) -> model.Task:
        """db/tasks.py update_task, keyword options as there."""
        return tasks_db.update_task(self.engine, task_id, **options)

    def delete_task(self, task_id: str) -> bool:
        return tasks_db.delete_task(self.engine, task_id)


class UsageRepository:
    """What a project uses, as keystone unified limits count it."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def owner_usage(self, owner: str | None) -> usage_db.OwnerUsage:
        return usage_db.owner_usage(self.engine, owner)


class ScrubQueueRepository:
    """Images pending delete (delayed delete), the scrubbers' claims on them, and restore."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def pending_images(self, **options: Any) -> list[scrub_queue.PendingImage]:
        """db/scrub_queue.py pending_images, keyword options as there."""
        return scrub_queue.pending_images(self.engine, **options)

    def pending_image(self, image_id: str) -> scrub_queue.PendingImage:
        return scrub_queue.pending_image(self.engine, image_id)

    def claim(
        self, image_id: str, holder: scrub_queue.Holder, *, replacing: scrub_queue.Claim | None = None
    ) -> scrub_queue.PendingImage | None:
        return scrub_queue.claim(self.engine, image_id, holder, replacing=replacing)

    def renew(self, holder: scrub_queue.Holder) -> int:
        return scrub_queue.renew(self.engine, holder)

    def location_scrubbed(self, image_id: str, location_id: int, holder: scrub_queue.Holder) -> bool:
        return scrub_queue.location_scrubbed(self.engine, image_id, location_id, holder)

    def finish(self, image_id: str, holder: scrub_queue.Holder) -> bool:
        return scrub_queue.finish(self.engine, image_id, holder)

    def release(self, image_id: str, holder: scrub_queue.Holder) -> bool:
        return scrub_queue.release(self.engine, image_id, holder)

    def restore(self, image_id: str, *, replacing: scrub_queue.Claim | None = None) -> model.Image:
        return scrub_queue.restore(self.engine, image_id, replacing=replacing)


class MetadefRepository:
    """Metadata definitions: namespaces and their objects, properties, tags and resource types."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get_namespace(self, name: str, viewer: records.Viewer) -> records.Namespace:
        return metadefs_db.get_namespace(self.engine, name, viewer)

    def list_namespaces(self, viewer: records.Viewer, **options: Any) -> list[records.Namespace]:
        """db/metadefs.py list_namespaces, keyword options as there."""
        return metadefs_db.list_namespaces(self.engine, viewer, **options)

    def create_namespace(self, values: dict[str, Any], **options: Any) -> records.Namespace:
        """db/metadefs.py create_namespace, keyword options as there."""
        return metadefs_db.create_namespace(self.engine, values, **options)

    def update_namespace(self, ns: records.Namespace, values: dict[str, Any]) -> records.Namespace:
        return metadefs_db.update_namespace(self.engine, ns, values)

    def delete_namespace(self, ns: records.Namespace) -> None:
        return metadefs_db.delete_namespace(self.engine, ns)

    def list_resource_types(self) -> list[records.ResourceType]:
        return metadefs_db.list_resource_types(self.engine)

    def list_associations(self, ns: records.Namespace) -> list[records.Association]:
        return metadefs_db.list_associations(self.engine, ns)

    def create_association(self, ns: records.Namespace, values: dict[str, Any]) -> records.Association:
        return metadefs_db.create_association(self.engine, ns, values)

    def delete_association(self, ns: records.Namespace, name: str) -> None:
        return metadefs_db.delete_association(self.engine, ns, name)

    def list_children(self, kind: records.ChildKind, ns: records.Namespace) -> list:
        return metadefs_db.list_children(self.engine, kind, ns)

    def get_child(self, kind: records.ChildKind, ns: records.Namespace, name: str):
        return metadefs_db.get_child(self.engine, kind, ns, name)

    def create_object(self, ns: records.Namespace, values: dict[str, Any]) -> records.MetadefObject:
        return metadefs_db.create_object(self.engine, ns, values)

    def create_property(self, ns: records.Namespace, name: str, schema: dict[str, Any]) -> records.Property:
        return metadefs_db.create_property(self.engine, ns, name, schema)

    def create_tag(self, ns: records.Namespace, name: str) -> records.Tag:
        return metadefs_db.create_tag(self.engine, ns, name)

    def create_tags(self, ns: records.Namespace, names: list[str], *, append: bool) -> list[records.Tag]:
        return metadefs_db.create_tags(self.engine, ns, names, append=append)

    def update_object(self, ns: records.Namespace, name: str, values: dict[str, Any]) -> records.MetadefObject:
        return metadefs_db.update_object(self.engine, ns, name, values)

    def update_property(
        self, ns: records.Namespace, name: str, new_name: str, schema: dict[str, Any]
    ) -> records.Property:
        return metadefs_db.update_property(self.engine, ns, name, new_name, schema)

    def update_tag(self, ns: records.Namespace, name: str, new_name: str) -> records.Tag:
        return metadefs_db.update_tag(self.engine, ns, name, new_name)

    def delete_child(self, kind: records.ChildKind, ns: records.Namespace, name: str) -> None:
        return metadefs_db.delete_child(self.engine, kind, ns, name)

    def delete_children(self, kind: records.ChildKind, ns: records.Namespace) -> None:
        return metadefs_db.delete_children(self.engine, kind, ns)


class StoreReferenceRepository:
    """The locations whose data must exist in the stores (the store audit)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def location_references(self) -> list[store_references.LocationReference]:
        return store_references.location_references(self.engine)

    def tenancy_hints(self) -> store_references.TenancyHints:
        return store_references.tenancy_hints(self.engine)
