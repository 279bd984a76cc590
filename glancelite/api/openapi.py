"""The OpenAPI 3.1 description of the API, built from the route table and the served JSON schemas.

Glance publishes none. Ours cannot drift from what runs: ``describe`` walks the same
``(path, resource)`` table ``routes.register`` gives falcon, takes each resource's ``on_<method>``
responders as its operations, and fails on a responder that has no entry in ``OPERATIONS`` (or an
entry with no responder). Bodies and responses refer to the very schemas served under
/v2/schemas and used to validate requests (``schemas.SCHEMAS``, ``metadef_schemas.SCHEMAS``).

Served at GET /v2/openapi.json behind the same authentication as /v2/schemas/*; the rendered copy
for the service's default image formats is doc/openapi.json (tests/api/test_openapi.py checks it and
rewrites it with GLANCELITE_WRITE_OPENAPI=1).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any

from glancelite.api import common, metadef_schemas, patch, schemas
from glancelite.services import image_rules

OPENAPI_PATH = "/v2/openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Responders that exist only to answer 405 as Glance does (its router names the allowed methods):
# routes, not operations, so they are left out of the description.
REFUSED = frozenset(
    {
        ("delete", "/v2/images"),
        ("put", "/v2/images"),
        ("patch", "/v2/images"),
        ("delete", "/v2/tasks/{task_id}"),
    }
)

JSON = "application/json"
OCTET = "application/octet-stream"
# Glance's error page is negotiated on Accept (api/errors.py): JSON, HTML or plain text.
ERROR_MEDIA = (JSON, "text/html", "text/plain")
ERROR_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# Every operation may answer these: a bad query/header, no or bad credentials, a policy refusal,
# 414 from gunicorn itself for a request line over its limit_request_line (4094 bytes; an HTML
# page, before the application sees the request), and 503 while the database or a store is unreachable.
COMMON_ERRORS = (400, 401, 403, 414, 503)


@dataclasses.dataclass(frozen=True)
class Operation:
    """One (method, path): what it does, what it takes and what it answers besides COMMON_ERRORS."""

    summary: str
    tag: str
    ok: dict[int, Any]  # status -> response schema (None: no body; OCTET: image data; str: a components name)
    errors: tuple[int, ...] = ()
    body: Any = None  # request body: a components name, a schema dict, OCTET or patch.V21
    query: tuple[tuple[str, dict], ...] = ()
    headers: tuple[tuple[str, dict], ...] = ()
    admin: bool = False
    public: bool = False  # answered without credentials (the version documents)


def _obj(**properties: Any) -> dict:
    return {"type": "object", "properties": properties, "required": sorted(properties)}


STRING = {"type": "string"}
ARRAY_OF_OBJECTS = {"type": "array", "items": {"type": "object"}}
LIST_QUERY = (
    ("limit", {"type": "integer", "minimum": 1}),
    ("marker", STRING),
    ("sort_key", STRING),
    ("sort_dir", {"type": "string", "enum": ["asc", "desc"]}),
)
IMAGE_QUERY = (
    *LIST_QUERY,
    ("sort", STRING),
    ("visibility", {"type": "string", "enum": ["public", "private", "shared", "community", "all"]}),
    ("member_status", {"type": "string", "enum": ["pending", "accepted", "rejected", "all"]}),
    ("name", STRING),
    ("id", STRING),
    ("owner", STRING),
    ("status", STRING),
    ("tag", STRING),
    ("protected", {"type": "string", "enum": ["true", "false"]}),
    ("os_hidden", {"type": "string", "enum": ["true", "false"]}),
    ("container_format", STRING),
    ("disk_format", STRING),
    ("size_min", STRING),
    ("size_max", STRING),
    ("created_at", STRING),
    ("updated_at", STRING),
)
STORE_HEADER = ("X-Image-Meta-Store", STRING)
IMAGE_ERRORS = (404,)

# Plain object shapes of the bodies that have no schema under /v2/schemas.
SHAPES: dict[str, dict] = {
    "versions": _obj(
        versions={
            "type": "array",
            "items": _obj(id=STRING, status=STRING, links=ARRAY_OF_OBJECTS),
        }
    ),
    "error": {
        "description": "Glance's error body for Accept: application/json (webob's error page).",
        **_obj(message=STRING, code=STRING, title=STRING),
    },
    "import_request": {
        "type": "object",
        "properties": {
            "method": _obj(name=STRING),
            "stores": {"type": "array", "items": STRING},
            "all_stores": {"type": "boolean"},
            "all_stores_must_succeed": {"type": "boolean"},
        },
        "required": ["method"],
    },
    "import_info": _obj(**{"import-methods": _obj(description=STRING, type=STRING, value={"type": "array"})}),
    "stores": _obj(stores={"type": "array", "items": {"type": "object", "properties": {"id": STRING}}}),
    "usage": _obj(usage={"type": "object"}),
    "member_request": _obj(member=STRING),
    "member_status_request": _obj(status={"type": "string", "enum": ["pending", "accepted", "rejected"]}),
    "image_tasks": _obj(tasks=ARRAY_OF_OBJECTS),
    "locations": {"type": "array", "items": _obj(url=STRING, metadata={"type": "object"})},
    "location_request": {
        "type": "object",
        "properties": {"url": STRING, "validation_data": {"type": "object"}},
        "required": ["url"],
    },
    "task_request": {
        "type": "object",
        "properties": {"type": STRING, "input": {"type": "object"}},
        "required": ["type", "input"],
    },
    "health": {
        "type": "object",
        "properties": {
            "available": {"type": "boolean"},
            "database": {"type": "object"},
            "stores": {"type": "object", "additionalProperties": {"type": "object"}},
            "stop_file": {"type": "object"},
        },
        "required": ["available", "database", "stores", "stop_file"],
    },
    "cache_state": _obj(cached_images=ARRAY_OF_OBJECTS, queued_images={"type": "array"}),
    "cache_cleaned": _obj(total_files_cleaned={"type": "integer"}),
    "cache_pruned": _obj(total_files_pruned={"type": "integer"}, total_bytes_pruned={"type": "integer"}),
    "metadef_tags_request": _obj(tags={"type": "array", "items": _obj(name=STRING)}),
    "metadef_tag_names": _obj(tags={"type": "array", "items": _obj(name=STRING)}),
    "metadef_resource_types": _obj(resource_types=ARRAY_OF_OBJECTS),
    "image_patch": {
        "description": "RFC 6902 operations on the image (Glance's v2.1 json-patch).",
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "op": {"type": "string", "enum": list(patch.OPS)},
                "path": STRING,
                "value": {},
            },
            "required": ["op", "path"],
        },
    },
}

_IMG = "/v2/images/{image_id}"
_NS = "/v2/metadefs/namespaces/{namespace}"
_MD = "metadefs"

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("get", "/"): Operation("The API versions (multiple choices)", "versions", {300: "versions"}, public=True),
    ("get", "/versions"): Operation("The API versions", "versions", {200: "versions"}, public=True),
    ("get", OPENAPI_PATH): Operation("This description", "versions", {200: {"type": "object"}}),
    # The detailed health check: admins, or callers on the host itself; 503 carries the same report.
    ("get", "/healthcheck/detailed"): Operation(
        "The service's health in detail", "health", {200: "health", 503: "health"}, admin=True
    ),
    # Images.
    ("get", "/v2/images"): Operation("List images", "images", {200: "images"}, query=IMAGE_QUERY),
    ("post", "/v2/images"): Operation(
        "Create an image record", "images", {201: "image"}, (409, 413), body="image_create"
    ),
    ("get", _IMG): Operation("Show an image", "images", {200: "image"}, IMAGE_ERRORS),
    ("patch", _IMG): Operation("Update an image", "images", {200: "image"}, (404, 409, 413, 415), body=patch.V21),
    ("delete", _IMG): Operation("Delete an image", "images", {204: None}, (404, 409)),
    ("post", _IMG + "/actions/deactivate"): Operation("Deactivate an image", "images", {204: None}, IMAGE_ERRORS),
    ("post", _IMG + "/actions/reactivate"): Operation("Reactivate an image", "images", {204: None}, IMAGE_ERRORS),
    ("put", _IMG + "/tags/{tag}"): Operation("Add a tag", "tags", {204: None}, (404, 413)),
    ("delete", _IMG + "/tags/{tag}"): Operation("Remove a tag", "tags", {204: None}, IMAGE_ERRORS),
    # Data, stage and import.
    ("put", _IMG + "/file"): Operation(
        "Upload image data",
        "data",
        {204: None},
        (404, 409, 410, 413, 415),
        body=OCTET,
        headers=(STORE_HEADER,),
    ),
    ("get", _IMG + "/file"): Operation(
        "Download image data",
        "data",
        {200: OCTET, 204: None, 206: OCTET},
        (404, 416),
        query=(("prefer", STRING),),
        headers=(("Range", STRING), ("Content-Range", STRING)),
    ),
    ("put", _IMG + "/stage"): Operation(
        "Stage image data for import", "import", {204: None}, (404, 409, 410, 413, 415), body=OCTET
    ),
    ("post", _IMG + "/import"): Operation(
        "Import staged or remote data",
        "import",
        {202: None},
        (404, 409, 413),
        body="import_request",
        headers=(STORE_HEADER,),
    ),
    ("get", "/v2/info/import"): Operation("The import methods", "info", {200: "import_info"}),
    ("delete", "/v2/stores/{store_id}/{image_id}"): Operation(
        "Delete an image's data from one store", "stores", {204: None}, (404, 409)
    ),
    ("get", "/v2/info/stores"): Operation("The stores", "stores", {200: "stores"}, (404,)),
    ("get", "/v2/info/stores/detail"): Operation(
        "The stores with their properties (admin)", "stores", {200: "stores"}, (404,), admin=True
    ),
    ("get", "/v2/info/usage"): Operation("The project's quota usage", "info", {200: "usage"}),
    # Locations.
    ("post", _IMG + "/locations"): Operation(
        "Add a location (service role)", "images", {202: None}, (404, 409, 413), body="location_request"
    ),
    ("get", _IMG + "/locations"): Operation(
        "List an image's locations (service role)", "images", {200: "locations"}, (404,)
    ),
    # Members.
    ("get", _IMG + "/members"): Operation("List an image's members", "members", {200: "members"}, IMAGE_ERRORS),
    ("post", _IMG + "/members"): Operation(
        "Share an image with a project", "members", {200: "member"}, (404, 409, 413), body="member_request"
    ),
    ("get", _IMG + "/members/{member_id}"): Operation("Show a member", "members", {200: "member"}, IMAGE_ERRORS),
    ("put", _IMG + "/members/{member_id}"): Operation(
        "Accept or reject a shared image", "members", {200: "member"}, (404,), body="member_status_request"
    ),
    ("delete", _IMG + "/members/{member_id}"): Operation("Stop sharing an image", "members", {204: None}, (404,)),
    # Tasks.
    ("get", _IMG + "/tasks"): Operation("An image's import tasks", "tasks", {200: "image_tasks"}, IMAGE_ERRORS),
    ("get", "/v2/tasks"): Operation(
        "List tasks (admin)",
        "tasks",
        {200: "tasks"},
        query=(*LIST_QUERY, ("status", STRING), ("type", STRING)),
        admin=True,
    ),
    ("post", "/v2/tasks"): Operation(
        "Create a task (admin)", "tasks", {201: "task"}, (413,), "task_request", admin=True
    ),
    ("get", "/v2/tasks/{task_id}"): Operation("Show a task (admin)", "tasks", {200: "task"}, (404,), admin=True),
    # Cache.
    ("get", "/v2/cache"): Operation("The cache's state (admin)", "cache", {200: "cache_state"}, (404,), admin=True),
    ("delete", "/v2/cache"): Operation("Empty the cache (admin)", "cache", {204: None}, (404,), admin=True),
    ("post", "/v2/cache/clean"): Operation(
        "Remove stalled and invalid entries (admin)", "cache", {200: "cache_cleaned"}, (404,), admin=True
    ),
    ("post", "/v2/cache/prune"): Operation(
        "Prune the cache to its size (admin)", "cache", {200: "cache_pruned"}, (404,), admin=True
    ),
    ("put", "/v2/cache/{image_id}"): Operation(
        "Queue an image for caching (admin)", "cache", {202: None}, (404,), admin=True
    ),
    ("delete", "/v2/cache/{image_id}"): Operation(
        "Drop an image from the cache (admin)", "cache", {204: None}, (404,), admin=True
    ),
    # Metadata definitions.
    ("get", "/v2/metadefs/namespaces"): Operation(
        "List namespaces",
        _MD,
        {200: "metadef_namespaces"},
        (404,),
        query=(*LIST_QUERY, ("visibility", STRING), ("resource_types", STRING)),
    ),
    ("post", "/v2/metadefs/namespaces"): Operation(
        "Create a namespace", _MD, {201: "metadef_namespace"}, (409, 413), body="metadef_namespace"
    ),
    ("get", _NS): Operation(
        "Show a namespace", _MD, {200: "metadef_namespace"}, (404,), query=(("resource_type", STRING),)
    ),
    ("put", _NS): Operation(
        "Update a namespace", _MD, {200: "metadef_namespace"}, (404, 409, 413), body="metadef_namespace"
    ),
    ("delete", _NS): Operation("Delete a namespace", _MD, {204: None}, (404,)),
    ("get", _NS + "/objects"): Operation("List objects", _MD, {200: "metadef_objects"}, (404,)),
    ("post", _NS + "/objects"): Operation(
        "Create an object", _MD, {201: "metadef_object"}, (404, 409, 413), body="metadef_object"
    ),
    ("delete", _NS + "/objects"): Operation("Delete every object", _MD, {204: None}, (404,)),
    ("get", _NS + "/objects/{name}"): Operation("Show an object", _MD, {200: "metadef_object"}, (404,)),
    ("put", _NS + "/objects/{name}"): Operation(
        "Update an object", _MD, {200: "metadef_object"}, (404, 409, 413), body="metadef_object"
    ),
    ("delete", _NS + "/objects/{name}"): Operation("Delete an object", _MD, {204: None}, (404,)),
    ("get", _NS + "/properties"): Operation("List properties", _MD, {200: "metadef_properties"}, (404,)),
    ("post", _NS + "/properties"): Operation(
        "Create a property", _MD, {201: "metadef_property"}, (404, 409, 413), body="metadef_property"
    ),
    ("delete", _NS + "/properties"): Operation("Delete every property", _MD, {204: None}, (404,)),
    ("get", _NS + "/properties/{name}"): Operation("Show a property", _MD, {200: "metadef_property"}, (404,)),
    ("put", _NS + "/properties/{name}"): Operation(
        "Update a property", _MD, {200: "metadef_property"}, (404, 409, 413), body="metadef_property"
    ),
    ("delete", _NS + "/properties/{name}"): Operation("Delete a property", _MD, {204: None}, (404,)),
    ("get", _NS + "/tags"): Operation("List tags", _MD, {200: "metadef_tags"}, (404,)),
    ("post", _NS + "/tags"): Operation(
        "Create tags", _MD, {201: "metadef_tag_names"}, (404, 409, 413), body="metadef_tags_request"
    ),
    ("delete", _NS + "/tags"): Operation("Delete every tag", _MD, {204: None}, (404,)),
    ("get", _NS + "/tags/{name}"): Operation("Show a tag", _MD, {200: "metadef_tag"}, (404,)),
    ("post", _NS + "/tags/{name}"): Operation("Create a tag", _MD, {201: "metadef_tag"}, (404, 409)),
    ("put", _NS + "/tags/{name}"): Operation(
        "Rename a tag", _MD, {200: "metadef_tag"}, (404, 409, 413), body="metadef_tag"
    ),
    ("delete", _NS + "/tags/{name}"): Operation("Delete a tag", _MD, {204: None}, (404,)),
    ("get", _NS + "/resource_types"): Operation(
        "List a namespace's resource types", _MD, {200: "metadef_resource_types_of_namespace"}, (404,)
    ),
    ("post", _NS + "/resource_types"): Operation(
        "Associate a resource type", _MD, {201: "metadef_resource_type"}, (404, 409, 413), body="metadef_resource_type"
    ),
    ("delete", _NS + "/resource_types/{name}"): Operation("Dissociate a resource type", _MD, {204: None}, (404,)),
    ("get", "/v2/metadefs/resource_types"): Operation("List resource types", _MD, {200: "metadef_resource_types"}),
}

# /v2/schemas/{name} and /v2/schemas/metadefs/{name}: one operation each, answering that schema.
for _name in schemas.SCHEMAS:
    OPERATIONS[("get", f"/v2/schemas/{_name}")] = Operation(f"The {_name} schema", "schemas", {200: {"type": "object"}})
for _name in metadef_schemas.SCHEMAS:
    OPERATIONS[("get", f"/v2/schemas/metadefs/{_name}")] = Operation(
        f"The metadefs {_name} schema", "schemas", {200: {"type": "object"}}
    )

PATH_PARAMETERS = {
    "image_id": {"type": "string", "format": "uuid"},
    "member_id": {"type": "string", "maxLength": 255},
    "tag": {"type": "string", "maxLength": 255},
    "store_id": {"type": "string"},
    "task_id": {"type": "string"},
    "namespace": {"type": "string", "maxLength": 80},
    "name": {"type": "string", "maxLength": 80},
}

# OpenAPI links: what the stateful fuzzing follows from a created resource to the operations on it.
LINKS = {
    ("post", "/v2/images", 201): {
        op: (f"{method} {_IMG}{suffix}", {"image_id": "$response.body#/id"})
        for op, method, suffix in (
            ("GetImage", "get", ""),
            ("PatchImage", "patch", ""),
            ("DeleteImage", "delete", ""),
            ("UploadData", "put", "/file"),
            ("DownloadData", "get", "/file"),
            ("StageData", "put", "/stage"),
            ("ImportImage", "post", "/import"),
            ("AddMember", "post", "/members"),
            ("ListMembers", "get", "/members"),
            ("AddTag", "put", "/tags/{tag}"),
            ("Deactivate", "post", "/actions/deactivate"),
            ("ImageTasks", "get", "/tasks"),
        )
    },
    ("post", _IMG + "/members", 200): {
        op: (
            f"{method} {_IMG}/members/{{member_id}}",
            {"image_id": "$response.body#/image_id", "member_id": "$response.body#/member_id"},
        )
        for op, method in (("GetMember", "get"), ("UpdateMember", "put"), ("DeleteMember", "delete"))
    },
    ("post", "/v2/metadefs/namespaces", 201): {
        op: (f"{method} {_NS}{suffix}", {"namespace": "$response.body#/namespace"})
        for op, method, suffix in (
            ("GetNamespace", "get", ""),
            ("UpdateNamespace", "put", ""),
            ("DeleteNamespace", "delete", ""),
            ("CreateObject", "post", "/objects"),
            ("CreateProperty", "post", "/properties"),
            ("CreateTags", "post", "/tags"),
            ("AssociateResourceType", "post", "/resource_types"),
        )
    },
}


class DescriptionMismatch(Exception):
    """The route table and OPERATIONS disagree: a route without a description or the other way round."""


def operation_keys(table) -> set[tuple[str, str]]:
    """Every (method, path) the route table answers with a real responder (REFUSED ones left out)."""
    keys = set()
    for path, resource in table:
        for method in HTTP_METHODS:
            if hasattr(resource, f"on_{method}") and (method, path) not in REFUSED:
                keys.add((method, path))
    return keys


def check_table(table) -> None:
    served = operation_keys(table)
    undescribed = served - OPERATIONS.keys()
    unserved = OPERATIONS.keys() - served
    if undescribed or unserved:
        raise DescriptionMismatch(
            f"routes without an operation: {sorted(undescribed)}; operations without a route: {sorted(unserved)}"
        )


def _error_response(status: int) -> dict:
    return {
        "description": ERROR_REASONS[status],
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/error"}} if media == JSON else {"schema": STRING}
            for media in ERROR_MEDIA
        },
    }


def _schema_ref(schema: Any) -> dict:
    return {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema


def _ok_response(schema: Any) -> dict:
    if schema is None:
        return {"description": "No body"}
    if schema == OCTET:
        return {"description": "Image data", "content": {OCTET: {"schema": {"type": "string", "format": "binary"}}}}
    return {"description": "Success", "content": {JSON: {"schema": _schema_ref(schema)}}}


def _request_body(body: Any) -> dict:
    if body == OCTET:
        content = {OCTET: {"schema": {"type": "string", "format": "binary"}}}
    elif body == patch.V21:
        content = {patch.V21: {"schema": {"$ref": "#/components/schemas/image_patch"}}}
    else:
        content = {JSON: {"schema": _schema_ref(body)}}
    return {"required": True, "content": content}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path).replace("-", "_").replace(".", "_").strip("/").split("/")
    return method + ("".join(w.title().replace("_", "") for w in words if w) or "Root")


def _operation(method: str, path: str, op: Operation) -> dict:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
        for name in re.findall(r"{(\w+)}", path)
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in op.query]
    parameters += [{"name": name, "in": "header", "required": False, "schema": schema} for name, schema in op.headers]
    responses = {str(status): _ok_response(schema) for status, schema in op.ok.items()}
    for status in () if op.public else sorted({*COMMON_ERRORS, *op.errors} - op.ok.keys()):
        responses[str(status)] = _error_response(status)
    for (m, p, status), links in LINKS.items():
        if (m, p) == (method, path):
            responses[str(status)]["links"] = {
                name: {"operationId": _operation_id(*target.split(" ", 1)), "parameters": params}
                for name, (target, params) in sorted(links.items())
            }
    described: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if parameters:
        described["parameters"] = parameters
    if op.body is not None:
        described["requestBody"] = _request_body(op.body)
    if op.public:
        described["security"] = []
    if op.admin:
        described["description"] = "Needs the admin role under the default policy."
    return described


def _components(formats: schemas.Formats) -> dict[str, dict]:
    """The served schemas, with the metadef ones' ``#/definitions`` hoisted to components."""
    found: dict[str, dict] = {name: copy.deepcopy(build(formats)) for name, build in schemas.SCHEMAS.items()}
    definitions: dict[str, dict] = {}
    for name, build in metadef_schemas.SCHEMAS.items():
        schema = copy.deepcopy(build())
        definitions.update(schema.pop("definitions", {}))
        found[f"metadef_{name}"] = schema
    found.update({f"metadef_definition_{name}": schema for name, schema in definitions.items()})
    # A namespace's resource_types listing is not the resource_types collection schema.
    found["metadef_resource_types_of_namespace"] = found.pop("metadef_resource_types")
    found["image_create"] = _image_create(found["image"])
    found["image"] = _as_rendered(found["image"])
    found["images"]["properties"]["images"]["items"] = {"$ref": "#/components/schemas/image"}
    found.update(copy.deepcopy(SHAPES))
    text = json.dumps(found).replace('"#/definitions/', '"#/components/schemas/metadef_definition_')
    return json.loads(text)


def _image_create(image: dict) -> dict:
    """The image schema as a create body: without what the service refuses on create (403), read-only
    and reserved names (image_rules), so that generated bodies are ones the service can accept."""
    refused = sorted(image_rules.READ_ONLY_ON_CREATE | image_rules.RESERVED | {"locations"})
    properties = {
        name: {key: value for key, value in prop.items() if key != "readOnly"}
        for name, prop in image["properties"].items()
        if name not in refused and not prop.get("readOnly")
    }
    return {
        "description": "An image record to create: the image schema's writable properties and custom string ones.",
        "type": "object",
        "properties": properties,
        "additionalProperties": image["additionalProperties"],
        "propertyNames": {
            "maxLength": 255,
            "not": {"anyOf": [{"enum": refused}, {"pattern": f"^{image_rules.RESERVED_NAMESPACE}"}]},
        },
    }


def _as_rendered(image: dict) -> dict:
    """The image schema as responses render it. COMPAT: Glance shows a custom property stored as
    NULL as "" (api/views.py), which its own patterns (kernel_id, ramdisk_id) do not allow."""
    image = copy.deepcopy(image)
    for name, prop in image["properties"].items():
        if prop.get("is_base") is False and "null" in prop.get("type", ()):
            image["properties"][name] = {"anyOf": [prop, {"const": ""}]}
    return image


def describe(table, formats: schemas.Formats) -> dict:
    """The OpenAPI document for this route table; DescriptionMismatch if the two disagree."""
    check_table(table)
    paths: dict[str, dict] = {}
    for method, path in sorted(operation_keys(table)):
        paths.setdefault(path, {})[method] = _operation(method, path, OPERATIONS[(method, path)])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "glancelite: the OpenStack Image service API v2",
            "version": "2.17",
            "description": (
                "Glance's image API as glancelite serves it. Errors are Glance's: a JSON body "
                "{message, code, title} when the request accepts application/json."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in sorted({op.tag for op in OPERATIONS.values()})],
        "security": [{"keystone": []}],
        "paths": paths,
        "components": {
            "schemas": _components(formats),
            "securitySchemes": {
                "keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
            },
        },
    }


def render(document: dict) -> str:
    """The document as committed in doc/openapi.json: sorted keys, two-space indent, final newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


class OpenAPIResource:
    """GET /v2/openapi.json: the description of ``table`` (the route table this resource is part of)."""

    def __init__(self, table: list, formats: schemas.Formats):
        self.table = table  # read at request time: routes.table appends this resource to it
        self.formats = formats
        self._text: str | None = None

    def on_get(self, req, resp):
        common.reject_body(req)
        if self._text is None:
            self._text = render(describe(self.table, self.formats))
        resp.content_type = JSON
        resp.text = self._text
