"""/v2/metadefs: namespaces, their objects, properties, tags and resource type associations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon

from glancelite import errors
from glancelite.api import common, metadef_schemas
from glancelite.api.views import isotime
from glancelite.services import Services

NS_URL = "/v2/metadefs/namespaces"
SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "owner", "visibility", "id")
APPEND_HEADER = "X-Openstack-Append"


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Glance's wsme models leave unset attributes out."""
    return {k: v for k, v in body.items() if v is not None}


def _times(item) -> dict[str, Any]:
    return {"created_at": isotime(item.created_at), "updated_at": isotime(item.updated_at)}


def association_view(assoc) -> dict[str, Any]:
    return _compact(
        {"name": assoc.name, "prefix": assoc.prefix, "properties_target": assoc.properties_target, **_times(assoc)}
    )


def object_view(namespace: str, obj) -> dict[str, Any]:
    return _compact(
        {
            "name": obj.name,
            "description": obj.description,
            "required": obj.required,
            "properties": obj.properties,
            **_times(obj),
            "schema": "/v2/schemas/metadefs/object",
            "self": f"{NS_URL}/{namespace}/objects/{obj.name}",
        }
    )


def property_view(prop) -> dict[str, Any]:
    return {"name": prop.name, **prop.schema}


def tag_view(tag) -> dict[str, Any]:
    return _compact({"name": tag.name, **_times(tag)})


def namespace_view(ns, associations=(), objects=(), properties=None, tags=()) -> dict[str, Any]:
    body = _compact(
        {
            "namespace": ns.namespace,
            "display_name": ns.display_name,
            "description": ns.description,
            "visibility": ns.visibility,
            "protected": ns.protected,
            "owner": ns.owner,
            **_times(ns),
            "schema": "/v2/schemas/metadefs/namespace",
            "self": f"{NS_URL}/{ns.namespace}",
        }
    )
    # Glance shows each part only when the namespace has some.
    if associations:
        body["resource_type_associations"] = [association_view(a) for a in associations]
    if properties:
        body["properties"] = properties
    if objects:
        body["objects"] = [object_view(ns.namespace, o) for o in objects]
    if tags:
        body["tags"] = [{"name": t.name} for t in tags]
    return body


def detail_view(detail) -> dict[str, Any]:
    return namespace_view(detail.namespace, detail.associations, detail.objects, detail.properties, detail.tags)


def _check_path(req, resp, resource, params) -> None:
    """Names in the URL go into queries: a NUL is a 400 here, not a database error."""
    for key, value in params.items():
        common.check_text(value, key)
    for key, value in req.params.items():
        for item in value if isinstance(value, list) else [value]:
            common.check_text(item, key)


def _int_param(req, name: str, default: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.Invalid(f"{name} param must be an integer") from None
    if value < 0:
        raise errors.Invalid(f"{name} param must be positive")
    return value


@falcon.before(_check_path)
class NamespacesResource:
    def __init__(self, services: Services):
        self.services = services
        self.settings = services.settings

    def on_get(self, req, resp):
        common.reject_body(req)
        limit = min(_int_param(req, "limit", self.settings.limit_param_default), self.settings.api_limit_max)
        sort_key = req.get_param("sort_key") or "created_at"
        if sort_key not in SORT_KEYS:
            raise errors.Invalid(f"Invalid sort key: {sort_key}")
        sort_dir = req.get_param("sort_dir") or "desc"
        if sort_dir not in ("asc", "desc"):
            raise errors.Invalid(f"Invalid sort direction: {sort_dir}")
        visibility = req.get_param("visibility")
        if visibility and visibility not in ("public", "private"):
            raise errors.Invalid(f"Invalid visibility value: {visibility}")
        resource_types = [t.strip() for t in (req.get_param("resource_types") or "").split(",") if t.strip()]
        found = self.services.metadefs.list_namespaces(
            common.context(req),
            visibility=visibility,
            resource_types=resource_types,
            marker=req.get_param("marker"),
            limit=limit,
            sort_key=sort_key,
            sort_dir=sort_dir,
        )
        params = {k: v for k, v in req.params.items() if k != "marker"}
        body: dict[str, Any] = {
            "namespaces": [namespace_view(ns, assocs) for ns, assocs in found],
            "first": f"{NS_URL}?{urlencode(params, doseq=True)}" if params else NS_URL,
            "schema": "/v2/schemas/metadefs/namespaces",
        }
        if found and len(found) == limit:
            body["next"] = f"{NS_URL}?{urlencode({**params, 'marker': found[-1][0].namespace}, doseq=True)}"
        common.send_json(resp, body)

    def on_post(self, req, resp):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("namespace", common.read_json(req, expect=dict))
        detail = self.services.metadefs.create_namespace(ctx, body)
        resp.location = f"{NS_URL}/{detail.namespace.namespace}"
        common.send_json(resp, detail_view(detail), falcon.HTTP_201)


@falcon.before(_check_path)
class NamespaceResource:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, namespace):
        common.reject_body(req)
        detail = self.services.metadefs.show_namespace(common.context(req), namespace, req.get_param("resource_type"))
        common.send_json(resp, detail_view(detail))

    def on_put(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("namespace", common.read_json(req, expect=dict))
        common.send_json(resp, namespace_view(self.services.metadefs.update_namespace(ctx, namespace, body)))

    def on_delete(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.services.metadefs.delete_namespace(ctx, namespace)
        resp.status = falcon.HTTP_204


@falcon.before(_check_path)
class ObjectsResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace):
        common.reject_body(req)
        objects = self.metadefs.list_objects(common.context(req), namespace)
        # COMPAT: Glance's objects listing names its schema without the leading slash.
        body = {"objects": [object_view(namespace, o) for o in objects], "schema": "v2/schemas/metadefs/objects"}
        common.send_json(resp, body)

    def on_post(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("object", common.read_json(req, expect=dict))
        obj = self.metadefs.create_object(ctx, namespace, body)
        common.send_json(resp, object_view(namespace, obj), falcon.HTTP_201)

    def on_delete(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_objects(ctx, namespace)
        resp.status = falcon.HTTP_204


@falcon.before(_check_path)
class ObjectResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace, name):
        common.reject_body(req)
        common.send_json(resp, object_view(namespace, self.metadefs.show_object(common.context(req), namespace, name)))

    def on_put(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("object", common.read_json(req, expect=dict))
        common.send_json(resp, object_view(namespace, self.metadefs.update_object(ctx, namespace, name, body)))

    def on_delete(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_object(ctx, namespace, name)
        resp.status = falcon.HTTP_204


@falcon.before(_check_path)
class PropertiesResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace):
        common.reject_body(req)
        properties = self.metadefs.list_properties(common.context(req), namespace)
        common.send_json(resp, {"properties": properties})

    def on_post(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("property", common.read_json(req, expect=dict))
        common.send_json(resp, property_view(self.metadefs.create_property(ctx, namespace, body)), falcon.HTTP_201)

    def on_delete(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_properties(ctx, namespace)
        resp.status = falcon.HTTP_204


@falcon.before(_check_path)
class PropertyResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace, name):
        common.reject_body(req)
        common.send_json(resp, property_view(self.metadefs.show_property(common.context(req), namespace, name)))

    def on_put(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("property", common.read_json(req, expect=dict))
        common.send_json(resp, property_view(self.metadefs.update_property(ctx, namespace, name, body)))

    def on_delete(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_property(ctx, namespace, name)
        resp.status = falcon.HTTP_204


def _tag_names(body: dict[str, Any]) -> list[str]:
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise errors.Invalid("Provided object does not match schema 'tags': 'tags' is a required property")
    names = []
    for item in tags:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise errors.Invalid("Provided object does not match schema 'tag': each tag needs a name")
        metadef_schemas.validate("tag", item)
        names.append(item["name"])
    return names


@falcon.before(_check_path)
class TagsResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace):
        common.reject_body(req)
        tags = self.metadefs.list_tags(common.context(req), namespace)
        common.send_json(resp, {"tags": [tag_view(t) for t in tags]})

    def on_post(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        names = _tag_names(common.read_json(req, expect=dict))
        append = (req.get_header(APPEND_HEADER) or "").lower() == "true"
        tags = self.metadefs.create_tags(ctx, namespace, names, append)
        common.send_json(resp, {"tags": [{"name": t.name} for t in tags]}, falcon.HTTP_201)

    def on_delete(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_tags(ctx, namespace)
        resp.status = falcon.HTTP_204


@falcon.before(_check_path)
class TagResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace, name):
        common.reject_body(req)
        common.send_json(resp, tag_view(self.metadefs.show_tag(common.context(req), namespace, name)))

    def on_post(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        metadef_schemas.validate("tag", {"name": name})
        common.send_json(resp, tag_view(self.metadefs.create_tag(ctx, namespace, name)), falcon.HTTP_201)

    def on_put(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("tag", common.read_json(req, expect=dict))
        common.send_json(resp, tag_view(self.metadefs.update_tag(ctx, namespace, name, body["name"])))

    def on_delete(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_tag(ctx, namespace, name)
        resp.status = falcon.HTTP_204


@falcon.before(_check_path)
class ResourceTypesResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp):
        common.reject_body(req)
        types = self.metadefs.list_resource_types(common.context(req))
        common.send_json(resp, {"resource_types": [_compact({"name": t.name, **_times(t)}) for t in types]})


@falcon.before(_check_path)
class AssociationsResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_get(self, req, resp, namespace):
        common.reject_body(req)
        assocs = self.metadefs.list_associations(common.context(req), namespace)
        common.send_json(resp, {"resource_type_associations": [association_view(a) for a in assocs]})

    def on_post(self, req, resp, namespace):
        ctx = common.mutating_context(req)
        body = metadef_schemas.validate("resource_type", common.read_json(req, expect=dict))
        assoc = self.metadefs.create_association(ctx, namespace, body)
        common.send_json(resp, association_view(assoc), falcon.HTTP_201)


@falcon.before(_check_path)
class AssociationResource:
    def __init__(self, services: Services):
        self.metadefs = services.metadefs

    def on_delete(self, req, resp, namespace, name):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        self.metadefs.delete_association(ctx, namespace, name)
        resp.status = falcon.HTTP_204
