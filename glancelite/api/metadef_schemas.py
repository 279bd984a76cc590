"""The metadata definition schemas Glance serves under /v2/schemas/metadefs, and body validation.

Shapes follow Glance's glance.schema: an item schema is
``{name, properties, additionalProperties: false, required, definitions}``; a
collection wraps it as an array (a dict for properties) with first/next/schema
links. The same dicts validate request bodies.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonschema

from glancelite import errors
from glancelite.api import common

JSON_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
# Glance's RequestDeserializers refuse these in a body with 403, before schema validation.
READ_ONLY = ("self", "schema", "created_at", "updated_at")


def _string(description: str | None = None, max_length: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if description:
        schema["description"] = description
    if max_length:
        schema["maxLength"] = max_length
    return schema


def _timestamps(what: str) -> dict[str, Any]:
    return {
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": f"Date and time of {what} creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": f"Date and time of the last {what} modification",
            "format": "date-time",
        },
    }


def _property_fields() -> dict[str, Any]:
    """What one property definition may say (a JSON-schema subset)."""
    return {
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": JSON_TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": JSON_TYPES}, "enum": {"type": "array"}},
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _definitions() -> dict[str, Any]:
    fields = _property_fields()
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "property": {
            "type": "object",
            "additionalProperties": {"type": "object", "required": ["title", "type"], "properties": fields},
        },
    }


def _item(name: str, properties: dict[str, Any], required: list[str], definitions: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"name": name, "properties": properties, "additionalProperties": False}
    if definitions:
        schema["definitions"] = _definitions()
    if required:
        schema["required"] = required
    return schema


def _collection(name: str, item: dict[str, Any], *, as_dict: bool = False) -> dict[str, Any]:
    item = copy.deepcopy(item)
    definitions = item.pop("definitions", None)
    members = {"type": "object", "additionalProperties": item} if as_dict else {"type": "array", "items": item}
    schema: dict[str, Any] = {
        "name": name,
        "properties": {
            name: members,
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
    if definitions:
        schema["definitions"] = definitions
    return schema


def namespace() -> dict[str, Any]:
    properties = {
        "namespace": _string("The unique namespace text.", 80),
        "display_name": _string("The user friendly name for the namespace. Used by UI if available.", 80),
        "description": _string("Provides a user friendly description of the namespace.", 500),
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": ["public", "private"],
        },
        "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
        "owner": _string("Owner of the namespace.", 255),
        **_timestamps("namespace"),
        "schema": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        "resource_type_associations": {"type": "array", "items": _association_fields()},
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": _string(max_length=80),
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                },
            },
        },
        "tags": {"type": "array", "items": {"type": "object", "properties": {"name": _string(max_length=80)}}},
    }
    return _item("namespace", properties, ["namespace"])


def _association_fields() -> dict[str, Any]:
    return {
        "type": "object",
        # glancelite: the column widths as maxLength, so a long name is a 400 on every database.
        "properties": {
            "name": _string(max_length=80),
            "prefix": _string(max_length=80),
            "properties_target": _string(max_length=80),
        },
    }


def object_() -> dict[str, Any]:
    properties = {
        "name": _string(max_length=80),
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        **_timestamps("object"),
    }
    return _item("object", properties, ["name"])


def property_() -> dict[str, Any]:
    return _item("property", _property_fields(), ["name", "title", "type"])


def properties() -> dict[str, Any]:
    item = property_()
    # In the collection the name is the key, not a field.
    item["required"] = ["title", "type"]
    return _collection("properties", item, as_dict=True)


def tag() -> dict[str, Any]:
    return _item("tag", {"name": _string(max_length=80), **_timestamps("tag")}, ["name"], definitions=False)


def resource_type() -> dict[str, Any]:
    properties = {
        "name": _string(
            "Resource type names should be aligned with Heat resource types whenever possible: "
            "https://docs.openstack.org/heat/latest/template_guide/openstack.html",
            80,
        ),
        "prefix": _string(
            "Specifies the prefix to use for the given resource type. Any properties in the namespace "
            "should be prefixed with this prefix when being applied to the specified resource type.",
            80,
        ),
        "properties_target": _string(
            "Some resource types allow more than one key / value pair per instance. For example, Cinder "
            "allows user and image metadata on volumes. Only the image properties metadata is evaluated "
            "by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity.",
            80,
        ),
        **_timestamps("resource type association"),
    }
    return _item("resource_type_association", properties, ["name"], definitions=False)


# URL path under /v2/schemas/metadefs/ -> schema builder.
SCHEMAS = {
    "namespace": namespace,
    "namespaces": lambda: _collection("namespaces", namespace()),
    "object": object_,
    "objects": lambda: _collection("objects", object_()),
    "property": property_,
    "properties": properties,
    "tag": tag,
    "tags": lambda: _collection("tags", tag()),
    "resource_type": resource_type,
    "resource_types": lambda: _collection("resource_type_associations", resource_type()),
}


@functools.cache
def _validator(path: str) -> jsonschema.protocols.Validator:
    schema = SCHEMAS[path]()
    return jsonschema.Draft4Validator(schema)


def validate(path: str, body: Any) -> dict[str, Any]:
    """A request body checked against the schema at /v2/schemas/metadefs/<path>: 403 read-only, 400 invalid."""
    if not isinstance(body, dict):
        raise errors.Invalid("Unexpected body type. Expected list/dict.")
    for key in READ_ONLY:
        if key in body:
            raise errors.Forbidden(f"Attribute '{key}' is read-only.")
    error = jsonschema.exceptions.best_match(_validator(path).iter_errors(body))
    if error is not None:
        raise errors.Invalid(f"Provided object does not match schema '{SCHEMAS[path]()['name']}': {error.message}")
    return body


class MetadefSchemaResource:
    def __init__(self, path: str):
        self.path = path

    def on_get(self, req, resp):
        common.reject_body(req)
        common.send_json(resp, SCHEMAS[self.path]())
