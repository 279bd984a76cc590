"""Metadata definition records: what the metadef repository returns, and how rows become them."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from glancelite import errors
from glancelite.db import tables

T_NS = tables.metadef_namespaces
T_RT = tables.metadef_resource_types
T_ASSOC = tables.metadef_namespace_resource_types
T_OBJ = tables.metadef_objects
T_PROP = tables.metadef_properties
T_TAG = tables.metadef_tags
CHILD_TABLES = (T_OBJ, T_PROP, T_TAG, T_ASSOC)
NAMESPACE_SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "owner", "visibility", "id")


@dataclasses.dataclass(frozen=True)
class Viewer:
    project_id: str | None
    is_admin: bool


@dataclasses.dataclass(frozen=True)
class Namespace:
    id: int
    namespace: str
    display_name: str | None
    description: str | None
    visibility: str
    protected: bool
    owner: str
    created_at: datetime
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class ResourceType:
    name: str
    protected: bool
    created_at: datetime
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Association:
    name: str
    prefix: str | None
    properties_target: str | None
    created_at: datetime
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class MetadefObject:
    name: str
    description: str | None
    required: list[str]
    properties: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Property:
    name: str
    schema: dict[str, Any]  # the property's JSON-schema fields (title, type, enum...), without its name
    created_at: datetime
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Tag:
    name: str
    created_at: datetime
    updated_at: datetime | None


def namespace_not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f"Metadata definition namespace={name} was not found.")


def namespace_from_row(row) -> Namespace:
    return Namespace(
        id=row.id,
        namespace=row.namespace,
        display_name=row.display_name,
        description=row.description,
        visibility=row.visibility or "private",
        protected=bool(row.protected),
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _loads(text: str | None, default):
    return json.loads(text) if text else default


def _object(row) -> MetadefObject:
    return MetadefObject(
        name=row.name,
        description=row.description,
        required=_loads(row.required, []),
        properties=_loads(row.json_schema, {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _property(row) -> Property:
    return Property(row.name, _loads(row.json_schema, {}), row.created_at, row.updated_at)


def _tag(row) -> Tag:
    return Tag(row.name, row.created_at, row.updated_at)


def association_query():
    return sa.select(
        T_RT.c.name, T_ASSOC.c.prefix, T_ASSOC.c.properties_target, T_ASSOC.c.created_at, T_ASSOC.c.updated_at
    ).join(T_RT, T_RT.c.id == T_ASSOC.c.resource_type_id)


def association_from_row(row) -> Association:
    return Association(row.name, row.prefix, row.properties_target, row.created_at, row.updated_at)


# Objects, properties and tags: rows named uniquely within their namespace.


@dataclasses.dataclass(frozen=True)
class ChildKind:
    table: sa.Table
    label: str  # Glance's word for it in messages
    load: Any

    def not_found(self, name: str, namespace: str) -> errors.NotFound:
        return errors.NotFound(
            f"The metadata definition {self.label} with name={name} was not found in namespace={namespace}."
        )

    def duplicate(self, name: str, namespace: str) -> errors.Conflict:
        return errors.Conflict(
            f"A metadata definition {self.label} with name={name} already exists in namespace={namespace}."
        )


OBJECTS = ChildKind(T_OBJ, "object", _object)
PROPERTIES = ChildKind(T_PROP, "property", _property)
TAGS = ChildKind(T_TAG, "tag", _tag)


def object_row(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": values["name"],
        "description": values.get("description"),
        "required": json.dumps(values.get("required") or []),
        "json_schema": json.dumps(values.get("properties") or {}),
    }
