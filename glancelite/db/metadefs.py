"""Metadata definitions: namespaces and what they hold (objects, properties, tags, resource types).

Rows are deleted outright (Glance's metadef tables have no soft delete).
Who may see a namespace is decided here, in the query, by a ``Viewer``: an
admin sees every namespace, anyone else the public ones and their own.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors
from glancelite.db.engine import run_in_transaction
from glancelite.db.images import utcnow
from glancelite.db.metadef_records import (
    CHILD_TABLES,
    OBJECTS,
    PROPERTIES,
    T_ASSOC,
    T_NS,
    T_RT,
    T_TAG,
    TAGS,
    Association,
    ChildKind,
    MetadefObject,
    Namespace,
    Property,
    ResourceType,
    Tag,
    Viewer,
    association_from_row,
    association_query,
    namespace_from_row,
    namespace_not_found,
    object_row,
)


def _visible(viewer: Viewer) -> list:
    if viewer.is_admin:
        return []
    return [sa.or_(T_NS.c.visibility == "public", T_NS.c.owner == (viewer.project_id or ""))]


def _get_namespace(conn: Connection, name: str, viewer: Viewer) -> Namespace:
    row = conn.execute(sa.select(T_NS).where(T_NS.c.namespace == name, *_visible(viewer))).first()
    if row is None:
        raise namespace_not_found(name)
    return namespace_from_row(row)


def get_namespace(engine: Engine, name: str, viewer: Viewer) -> Namespace:
    return run_in_transaction(engine, _get_namespace, name, viewer)


def list_namespaces(
    engine: Engine,
    viewer: Viewer,
    *,
    visibility: str | None = None,
    resource_types: list[str] | None = None,
    marker: str | None = None,
    limit: int | None = None,
    sort_key: str = "created_at",
    sort_dir: str = "desc",
) -> list[Namespace]:
    order = sa.desc if sort_dir == "desc" else sa.asc

    def work(conn: Connection) -> list[Namespace]:
        query = sa.select(T_NS).where(*_visible(viewer))
        if visibility:
            query = query.where(T_NS.c.visibility == visibility)
        if resource_types:
            with_type = (
                sa.select(T_ASSOC.c.namespace_id)
                .join(T_RT, T_RT.c.id == T_ASSOC.c.resource_type_id)
                .where(T_RT.c.name.in_(resource_types))
            )
            query = query.where(T_NS.c.id.in_(with_type))
        rows = [namespace_from_row(r) for r in conn.execute(query.order_by(order(T_NS.c[sort_key]), order(T_NS.c.id)))]
        if marker is not None:
            names = [ns.namespace for ns in rows]
            if marker not in names:
                # A marker the caller cannot see is as unknown as one that does not exist.
                raise namespace_not_found(marker)
            rows = rows[names.index(marker) + 1 :]
        return rows if limit is None else rows[:limit]

    return run_in_transaction(engine, work)


def _namespace_values(values: dict[str, Any]) -> dict[str, Any]:
    keys = ("namespace", "display_name", "description", "visibility", "protected", "owner")
    return {k: values[k] for k in keys if k in values}


def _duplicate_namespace(name: str) -> errors.Conflict:
    return errors.Conflict(f"The metadata definition namespace={name} already exists.")


def insert_namespace(conn: Connection, values: dict[str, Any]) -> int:
    name = values["namespace"]
    if conn.execute(sa.select(T_NS.c.id).where(T_NS.c.namespace == name)).first():
        raise _duplicate_namespace(name)
    now = utcnow()
    result = conn.execute(T_NS.insert().values(**_namespace_values(values), created_at=now, updated_at=now))
    return result.inserted_primary_key[0]


def create_namespace(
    engine: Engine,
    values: dict[str, Any],
    *,
    associations: list[dict[str, Any]] = (),
    objects: list[dict[str, Any]] = (),
    properties: dict[str, dict[str, Any]] | None = None,
    tags: list[str] = (),
) -> Namespace:
    """A namespace and its initial content, in one transaction: all of it or none."""

    def work(conn: Connection) -> Namespace:
        ns_id = insert_namespace(conn, values)
        ns = namespace_from_row(conn.execute(sa.select(T_NS).where(T_NS.c.id == ns_id)).one())
        for assoc in associations:
            insert_association(conn, ns, assoc)
        for obj in objects:
            _insert_object(conn, ns, obj)
        for name, schema in (properties or {}).items():
            _insert_property(conn, ns, name, schema)
        for tag in tags:
            _insert_tag(conn, ns, tag)
        return ns

    return _guard(run_in_transaction, engine, work, conflict=_duplicate_namespace(values["namespace"]))


def update_namespace(engine: Engine, ns: Namespace, values: dict[str, Any]) -> Namespace:
    def work(conn: Connection) -> Namespace:
        new_name = values.get("namespace", ns.namespace)
        if new_name != ns.namespace and conn.execute(sa.select(T_NS.c.id).where(T_NS.c.namespace == new_name)).first():
            raise _duplicate_namespace(new_name)
        result = conn.execute(
            T_NS.update().where(T_NS.c.id == ns.id).values(**_namespace_values(values), updated_at=utcnow())
        )
        if result.rowcount != 1:
            raise namespace_not_found(ns.namespace)
        return namespace_from_row(conn.execute(sa.select(T_NS).where(T_NS.c.id == ns.id)).one())

    return _guard(run_in_transaction, engine, work, conflict=_duplicate_namespace(values.get("namespace", "")))


def delete_namespace(engine: Engine, ns: Namespace) -> None:
    def work(conn: Connection) -> None:
        for table in CHILD_TABLES:
            conn.execute(table.delete().where(table.c.namespace_id == ns.id))
        if conn.execute(T_NS.delete().where(T_NS.c.id == ns.id)).rowcount != 1:
            raise namespace_not_found(ns.namespace)

    run_in_transaction(engine, work)


def _guard(run, engine, work, *, conflict: errors.Conflict):
    """A unique constraint hit by a concurrent writer is the same 409 as the checked duplicate."""
    try:
        return run(engine, work)
    except sa.exc.IntegrityError as exc:
        raise conflict from exc


# Resource types and their association with namespaces.


def list_resource_types(engine: Engine) -> list[ResourceType]:
    def work(conn: Connection):
        rows = conn.execute(sa.select(T_RT).order_by(T_RT.c.id))
        return [ResourceType(r.name, bool(r.protected), r.created_at, r.updated_at) for r in rows]

    return run_in_transaction(engine, work)


def list_associations(engine: Engine, ns: Namespace) -> list[Association]:
    def work(conn: Connection):
        rows = conn.execute(association_query().where(T_ASSOC.c.namespace_id == ns.id).order_by(T_ASSOC.c.created_at))
        return [association_from_row(r) for r in rows]

    return run_in_transaction(engine, work)


def insert_association(conn: Connection, ns: Namespace, values: dict[str, Any]) -> Association:
    name = values["name"]
    now = utcnow()
    type_id = conn.execute(sa.select(T_RT.c.id).where(T_RT.c.name == name)).scalar()
    if type_id is None:
        # Glance creates an unknown resource type on first association (unprotected).
        type_id = conn.execute(
            T_RT.insert().values(name=name, protected=False, created_at=now, updated_at=now)
        ).inserted_primary_key[0]
    exists = sa.and_(T_ASSOC.c.namespace_id == ns.id, T_ASSOC.c.resource_type_id == type_id)
    if conn.execute(sa.select(T_ASSOC.c.namespace_id).where(exists)).first():
        raise _duplicate_association(name, ns.namespace)
    conn.execute(
        T_ASSOC.insert().values(
            namespace_id=ns.id,
            resource_type_id=type_id,
            prefix=values.get("prefix"),
            properties_target=values.get("properties_target"),
            created_at=now,
            updated_at=now,
        )
    )
    return association_from_row(conn.execute(association_query().where(exists)).one())


def _duplicate_association(name: str, namespace: str) -> errors.Conflict:
    return errors.Conflict(
        f"The metadata definition resource-type association of resource-type={name} to "
        f"namespace={namespace}, already exists."
    )


def create_association(engine: Engine, ns: Namespace, values: dict[str, Any]) -> Association:
    conflict = _duplicate_association(values["name"], ns.namespace)
    return _guard(run_in_transaction, engine, lambda conn: insert_association(conn, ns, values), conflict=conflict)


def delete_association(engine: Engine, ns: Namespace, name: str) -> None:
    def work(conn: Connection) -> None:
        type_id = conn.execute(sa.select(T_RT.c.id).where(T_RT.c.name == name)).scalar()
        deleted = 0
        if type_id is not None:
            deleted = conn.execute(
                T_ASSOC.delete().where(T_ASSOC.c.namespace_id == ns.id, T_ASSOC.c.resource_type_id == type_id)
            ).rowcount
        if deleted != 1:
            raise errors.NotFound(
                f"The metadata definition resource-type association of resource-type={name} to "
                f"namespace={ns.namespace}, was not found."
            )

    run_in_transaction(engine, work)


def insert_row(conn: Connection, kind: ChildKind, ns: Namespace, row: dict[str, Any]):
    t = kind.table
    if conn.execute(sa.select(t.c.id).where(t.c.namespace_id == ns.id, t.c.name == row["name"])).first():
        raise kind.duplicate(row["name"], ns.namespace)
    now = utcnow()
    conn.execute(t.insert().values(namespace_id=ns.id, created_at=now, updated_at=now, **row))
    return kind.load(conn.execute(sa.select(t).where(t.c.namespace_id == ns.id, t.c.name == row["name"])).one())


def _insert_object(conn: Connection, ns: Namespace, values: dict[str, Any]) -> MetadefObject:
    return insert_row(conn, OBJECTS, ns, object_row(values))


def _insert_property(conn: Connection, ns: Namespace, name: str, schema: dict[str, Any]) -> Property:
    return insert_row(conn, PROPERTIES, ns, {"name": name, "json_schema": json.dumps(schema)})


def _insert_tag(conn: Connection, ns: Namespace, name: str) -> Tag:
    return insert_row(conn, TAGS, ns, {"name": name})


def list_children(engine: Engine, kind: ChildKind, ns: Namespace) -> list:
    t = kind.table

    def work(conn: Connection):
        return [kind.load(r) for r in conn.execute(sa.select(t).where(t.c.namespace_id == ns.id).order_by(t.c.id))]

    return run_in_transaction(engine, work)


def get_child(engine: Engine, kind: ChildKind, ns: Namespace, name: str):
    t = kind.table

    def work(conn: Connection):
        row = conn.execute(sa.select(t).where(t.c.namespace_id == ns.id, t.c.name == name)).first()
        if row is None:
            raise kind.not_found(name, ns.namespace)
        return kind.load(row)

    return run_in_transaction(engine, work)


def create_object(engine: Engine, ns: Namespace, values: dict[str, Any]) -> MetadefObject:
    conflict = OBJECTS.duplicate(values["name"], ns.namespace)
    return _guard(run_in_transaction, engine, lambda conn: _insert_object(conn, ns, values), conflict=conflict)


def create_property(engine: Engine, ns: Namespace, name: str, schema: dict[str, Any]) -> Property:
    conflict = PROPERTIES.duplicate(name, ns.namespace)
    return _guard(run_in_transaction, engine, lambda conn: _insert_property(conn, ns, name, schema), conflict=conflict)


def create_tag(engine: Engine, ns: Namespace, name: str) -> Tag:
    conflict = TAGS.duplicate(name, ns.namespace)
    return _guard(run_in_transaction, engine, lambda conn: _insert_tag(conn, ns, name), conflict=conflict)


def create_tags(engine: Engine, ns: Namespace, names: list[str], *, append: bool) -> list[Tag]:
    """Several tags at once; without ``append`` they replace the namespace's tags."""

    def work(conn: Connection) -> list[Tag]:
        if not append:
            conn.execute(T_TAG.delete().where(T_TAG.c.namespace_id == ns.id))
        return [_insert_tag(conn, ns, name) for name in names]

    conflict = errors.Conflict(f"A metadata tag already exists in namespace={ns.namespace}.")
    return _guard(run_in_transaction, engine, work, conflict=conflict)


def update_child(engine: Engine, kind: ChildKind, ns: Namespace, name: str, row: dict[str, Any]):
    """Replace the named row's fields (``row`` may rename it)."""
    t = kind.table
    new_name = row.get("name", name)

    def work(conn: Connection):
        where = [t.c.namespace_id == ns.id, t.c.name == name]
        if conn.execute(sa.select(t.c.id).where(*where)).first() is None:
            raise kind.not_found(name, ns.namespace)
        if (
            new_name != name
            and conn.execute(sa.select(t.c.id).where(t.c.namespace_id == ns.id, t.c.name == new_name)).first()
        ):
            raise kind.duplicate(new_name, ns.namespace)
        conn.execute(t.update().where(*where).values(**row, updated_at=utcnow()))
        return kind.load(conn.execute(sa.select(t).where(t.c.namespace_id == ns.id, t.c.name == new_name)).one())

    return _guard(run_in_transaction, engine, work, conflict=kind.duplicate(new_name, ns.namespace))


def update_object(engine: Engine, ns: Namespace, name: str, values: dict[str, Any]) -> MetadefObject:
    return update_child(engine, OBJECTS, ns, name, object_row(values))


def update_property(engine: Engine, ns: Namespace, name: str, new_name: str, schema: dict[str, Any]) -> Property:
    return update_child(engine, PROPERTIES, ns, name, {"name": new_name, "json_schema": json.dumps(schema)})


def update_tag(engine: Engine, ns: Namespace, name: str, new_name: str) -> Tag:
    return update_child(engine, TAGS, ns, name, {"name": new_name})


def delete_child(engine: Engine, kind: ChildKind, ns: Namespace, name: str) -> None:
    t = kind.table

    def work(conn: Connection) -> None:
        if conn.execute(t.delete().where(t.c.namespace_id == ns.id, t.c.name == name)).rowcount != 1:
            raise kind.not_found(name, ns.namespace)

    run_in_transaction(engine, work)


def delete_children(engine: Engine, kind: ChildKind, ns: Namespace) -> None:
    t = kind.table
    run_in_transaction(engine, lambda conn: conn.execute(t.delete().where(t.c.namespace_id == ns.id)))
