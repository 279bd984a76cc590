"""Metadata definitions use cases: who may read and change namespaces and their content.

Reading: a namespace is visible when public, owned by the caller's project,
or the caller is an admin (the repository filters by ``Viewer``); then the
``get_metadef_*`` rule is checked with the namespace as target. Writing: the
``*_metadef_*`` rule (Glance's default: ``rule:metadef_admin``), then, for a
non-admin an operator let through, ownership of the namespace.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from glancelite import errors
from glancelite.context import RequestContext
from glancelite.db import metadefs as repo
from glancelite.db.repositories import MetadefRepository
from glancelite.services.policy import Policy

MAX_NAME = 80  # metadef_*.name columns


@dataclasses.dataclass(frozen=True)
class NamespaceDetail:
    namespace: repo.Namespace
    associations: list[repo.Association]
    objects: list[repo.MetadefObject]
    properties: dict[str, dict[str, Any]]
    tags: list[repo.Tag]


class MetadefService:
    def __init__(self, metadefs: MetadefRepository, policy: Policy):
        self.metadefs = metadefs
        self.policy = policy

    # -- helpers

    def _viewer(self, ctx: RequestContext) -> repo.Viewer:
        return repo.Viewer(ctx.project_id, self.policy.is_admin(ctx))

    @staticmethod
    def _target(ns: repo.Namespace) -> dict[str, Any]:
        return {"project_id": ns.owner, "visibility": ns.visibility, "namespace": ns.namespace}

    def _read(self, ctx: RequestContext, name: str, rule: str) -> repo.Namespace:
        ns = self.metadefs.get_namespace(name, self._viewer(ctx))
        self.policy.enforce(ctx, rule, self._target(ns))
        return ns

    def _write(self, ctx: RequestContext, name: str, rule: str) -> repo.Namespace:
        ns = self.metadefs.get_namespace(name, self._viewer(ctx))
        self.policy.enforce(ctx, rule, self._target(ns))
        if not self.policy.is_admin(ctx) and ns.owner != ctx.project_id:
            raise errors.Forbidden(f"You are not permitted to modify namespace {name}.")
        return ns

    def _check_owner(self, ctx: RequestContext, owner: str | None) -> None:
        if owner is not None and owner != ctx.project_id and not self.policy.is_admin(ctx):
            raise errors.Forbidden(f"You are not permitted to create or modify a namespace owned by '{owner}'.")

    @staticmethod
    def _protected(ns: repo.Namespace) -> None:
        if ns.protected:
            raise errors.Forbidden(f"Metadata definition namespace {ns.namespace} is protected and cannot be deleted.")

    # -- namespaces

    def list_namespaces(self, ctx: RequestContext, **filters) -> list[tuple[repo.Namespace, list[repo.Association]]]:
        self.policy.enforce(ctx, "get_metadef_namespaces", {"project_id": ctx.project_id})
        found = self.metadefs.list_namespaces(self._viewer(ctx), **filters)
        return [(ns, self.metadefs.list_associations(ns)) for ns in found]

    def show_namespace(self, ctx: RequestContext, name: str, resource_type: str | None = None) -> NamespaceDetail:
        ns = self._read(ctx, name, "get_metadef_namespace")
        return self._detail(ns, resource_type)

    def _detail(self, ns: repo.Namespace, resource_type: str | None = None) -> NamespaceDetail:
        associations = self.metadefs.list_associations(ns)
        objects = self.metadefs.list_children(repo.OBJECTS, ns)
        properties = {p.name: p.schema for p in self.metadefs.list_children(repo.PROPERTIES, ns)}
        prefix = next((a.prefix for a in associations if a.name == resource_type), None) if resource_type else None
        if prefix:
            # Names as the resource type spells them (e.g. hw_ for OS::Glance::Image).
            properties = {prefix + k: v for k, v in properties.items()}
            objects = [
                dataclasses.replace(
                    o,
                    properties={prefix + k: v for k, v in o.properties.items()},
                    required=[prefix + r for r in o.required],
                )
                for o in objects
            ]
        tags = self.metadefs.list_children(repo.TAGS, ns)
        return NamespaceDetail(ns, associations, objects, properties, tags)

    def create_namespace(self, ctx: RequestContext, body: dict[str, Any]) -> NamespaceDetail:
        for name in body.get("properties") or {}:
            if not name or len(name) > MAX_NAME:
                raise errors.Invalid(f"Property name must be 1 to {MAX_NAME} characters: {name[:MAX_NAME]}...")
        _require_name(body.get("namespace"), "namespace")
        for key in ("tags", "objects", "resource_type_associations"):
            _require_names(body.get(key) or [], key)
        owner = body.get("owner") or ctx.project_id or ""
        values = {
            "namespace": body["namespace"],
            "display_name": body.get("display_name"),
            "description": body.get("description"),
            "visibility": body.get("visibility") or "private",
            "protected": bool(body.get("protected", False)),
            "owner": owner,
        }
        self.policy.enforce(ctx, "add_metadef_namespace", {"project_id": owner, "visibility": values["visibility"]})
        self._check_owner(ctx, body.get("owner"))
        ns = self.metadefs.create_namespace(
            values,
            associations=body.get("resource_type_associations") or [],
            objects=body.get("objects") or [],
            properties=_property_schemas(body.get("properties") or {}),
            tags=[t["name"] for t in body.get("tags") or []],
        )
        return self._detail(ns)

    def update_namespace(self, ctx: RequestContext, name: str, body: dict[str, Any]) -> repo.Namespace:
        ns = self._write(ctx, name, "modify_metadef_namespace")
        if "namespace" in body:
            _require_name(body["namespace"], "namespace")
        self._check_owner(ctx, body.get("owner"))
        # COMPAT: PUT replaces; visibility, protected and owner fall back to create's defaults.
        values = {
            "namespace": body.get("namespace", ns.namespace),
            "display_name": body.get("display_name"),
            "description": body.get("description"),
            "visibility": body.get("visibility") or "private",
            "protected": bool(body.get("protected", False)),
            "owner": body.get("owner") or ctx.project_id or ns.owner,
        }
        return self.metadefs.update_namespace(ns, values)

    def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        ns = self._write(ctx, name, "delete_metadef_namespace")
        self._protected(ns)
        self.metadefs.delete_namespace(ns)

    # -- objects

    def list_objects(self, ctx: RequestContext, namespace: str) -> list[repo.MetadefObject]:
        return self.metadefs.list_children(repo.OBJECTS, self._read(ctx, namespace, "get_metadef_objects"))

    def show_object(self, ctx: RequestContext, namespace: str, name: str) -> repo.MetadefObject:
        return self.metadefs.get_child(repo.OBJECTS, self._read(ctx, namespace, "get_metadef_object"), name)

    def create_object(self, ctx: RequestContext, namespace: str, body: dict[str, Any]) -> repo.MetadefObject:
        ns = self._write(ctx, namespace, "add_metadef_object")
        _require_name(body.get("name"), "object")
        return self.metadefs.create_object(ns, body)

    def update_object(self, ctx: RequestContext, namespace: str, name: str, body: dict[str, Any]):
        ns = self._write(ctx, namespace, "modify_metadef_object")
        if "name" in body:
            _require_name(body["name"], "object")
        return self.metadefs.update_object(ns, name, body)

    def delete_object(self, ctx: RequestContext, namespace: str, name: str) -> None:
        ns = self._write(ctx, namespace, "delete_metadef_object")
        self.metadefs.delete_child(repo.OBJECTS, ns, name)

    def delete_objects(self, ctx: RequestContext, namespace: str) -> None:
        ns = self._write(ctx, namespace, "delete_metadef_object")
        # COMPAT: emptying a namespace counts as deleting it, so a protected one refuses.
        self._protected(ns)
        self.metadefs.delete_children(repo.OBJECTS, ns)

    # -- properties

    def list_properties(self, ctx: RequestContext, namespace: str) -> dict[str, dict[str, Any]]:
        ns = self._read(ctx, namespace, "get_metadef_properties")
        return {p.name: p.schema for p in self.metadefs.list_children(repo.PROPERTIES, ns)}

    def show_property(self, ctx: RequestContext, namespace: str, name: str) -> repo.Property:
        ns = self._read(ctx, namespace, "get_metadef_property")
        return self.metadefs.get_child(repo.PROPERTIES, ns, name)

    def create_property(self, ctx: RequestContext, namespace: str, body: dict[str, Any]) -> repo.Property:
        ns = self._write(ctx, namespace, "add_metadef_property")
        _require_name(body.get("name"), "property")
        return self.metadefs.create_property(ns, body["name"], _property_schema(body))

    def update_property(self, ctx: RequestContext, namespace: str, name: str, body: dict[str, Any]) -> repo.Property:
        ns = self._write(ctx, namespace, "modify_metadef_property")
        _require_name(body.get("name"), "property")
        return self.metadefs.update_property(ns, name, body["name"], _property_schema(body))

    def delete_property(self, ctx: RequestContext, namespace: str, name: str) -> None:
        ns = self._write(ctx, namespace, "remove_metadef_property")
        self.metadefs.delete_child(repo.PROPERTIES, ns, name)

    def delete_properties(self, ctx: RequestContext, namespace: str) -> None:
        ns = self._write(ctx, namespace, "remove_metadef_property")
        self._protected(ns)
        self.metadefs.delete_children(repo.PROPERTIES, ns)

    # -- tags

    def list_tags(self, ctx: RequestContext, namespace: str) -> list[repo.Tag]:
        return self.metadefs.list_children(repo.TAGS, self._read(ctx, namespace, "get_metadef_tags"))

    def show_tag(self, ctx: RequestContext, namespace: str, name: str) -> repo.Tag:
        return self.metadefs.get_child(repo.TAGS, self._read(ctx, namespace, "get_metadef_tag"), name)

    def create_tag(self, ctx: RequestContext, namespace: str, name: str) -> repo.Tag:
        ns = self._write(ctx, namespace, "add_metadef_tag")
        return self.metadefs.create_tag(ns, name)

    def create_tags(self, ctx: RequestContext, namespace: str, names: list[str], append: bool) -> list[repo.Tag]:
        ns = self._write(ctx, namespace, "add_metadef_tags")
        seen = set()
        for name in names:
            _require_name(name, "tag")
            if name in seen:
                raise errors.Conflict(f"Duplicate tag {name} in the request.")
            seen.add(name)
        return self.metadefs.create_tags(ns, names, append=append)

    def update_tag(self, ctx: RequestContext, namespace: str, name: str, new_name: str) -> repo.Tag:
        ns = self._write(ctx, namespace, "modify_metadef_tag")
        _require_name(new_name, "tag")
        return self.metadefs.update_tag(ns, name, new_name)

    def delete_tag(self, ctx: RequestContext, namespace: str, name: str) -> None:
        ns = self._write(ctx, namespace, "delete_metadef_tag")
        self.metadefs.delete_child(repo.TAGS, ns, name)

    def delete_tags(self, ctx: RequestContext, namespace: str) -> None:
        ns = self._write(ctx, namespace, "delete_metadef_tags")
        self._protected(ns)
        self.metadefs.delete_children(repo.TAGS, ns)

    # -- resource types

    def list_resource_types(self, ctx: RequestContext) -> list[repo.ResourceType]:
        self.policy.enforce(ctx, "list_metadef_resource_types", {"project_id": ctx.project_id})
        return self.metadefs.list_resource_types()

    def list_associations(self, ctx: RequestContext, namespace: str) -> list[repo.Association]:
        return self.metadefs.list_associations(self._read(ctx, namespace, "get_metadef_resource_type"))

    def create_association(self, ctx: RequestContext, namespace: str, body: dict[str, Any]) -> repo.Association:
        ns = self._write(ctx, namespace, "add_metadef_resource_type_association")
        _require_name(body.get("name"), "resource type")
        return self.metadefs.create_association(ns, body)

    def delete_association(self, ctx: RequestContext, namespace: str, name: str) -> None:
        ns = self._write(ctx, namespace, "remove_metadef_resource_type_association")
        self.metadefs.delete_association(ns, name)


def _property_schema(body: dict[str, Any]) -> dict[str, Any]:
    """What is stored for a property: its JSON-schema fields; the name is the row's."""
    return {k: v for k, v in body.items() if k != "name"}


def _property_schemas(properties: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: _property_schema(schema) for name, schema in properties.items()}


def _require_name(name: Any, what: str) -> None:
    """A name that is empty (or not text) names nothing: no URL could reach the resource again
    (/v2/metadefs/namespaces//tags is another path, and .../properties/ is the collection, whose
    DELETE removes every property), so it is a 400."""
    if not isinstance(name, str) or not name:
        raise errors.Invalid(f"The {what} name must not be empty.")


def _require_names(items: list, what: str) -> None:
    """Tags, objects and associations nested in a new namespace each need a name (the schema leaves it
    optional, as Glance's does): a 400 here rather than a failure in the database layer."""
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise errors.Invalid(f"Each of the namespace's {what} needs a non-empty name.")
