"""glance-manage's metadef catalogue files: load, unload and export (``db load_metadefs`` ...).

One JSON file per namespace, in Glance's format: the namespace's fields plus
``resource_type_associations``, ``objects``, ``properties`` and ``tags``. Operators
keep the files their Glance package installed (``/etc/glance/metadefs``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glancelite import errors
from glancelite.db import metadef_records as records
from glancelite.db import metadefs as repo
from glancelite.db.engine import run_in_transaction
from glancelite.db.images import utcnow

LOG = logging.getLogger(__name__)
DEFAULT_PATH = "/etc/glance/metadefs"
ADMIN = repo.Viewer(project_id=None, is_admin=True)
NAMESPACE_FIELDS = ("display_name", "description", "visibility", "protected", "owner")


def _files(path: str) -> list[Path]:
    folder = Path(path)
    if not folder.is_dir():
        raise errors.Invalid(f"Metadata definitions path {path} is not a directory.")
    return sorted(folder.glob("*.json"))


def _read(file: Path) -> dict[str, Any]:
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.Invalid(f"Cannot read metadata definitions file {file}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("namespace"), str):
        raise errors.Invalid(f"Metadata definitions file {file} names no namespace.")
    return doc


def _namespace_values(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": doc["namespace"],
        "display_name": doc.get("display_name"),
        "description": doc.get("description"),
        "visibility": doc.get("visibility") or "public",
        "protected": bool(doc.get("protected", True)),
        "owner": doc.get("owner") or "admin",
    }


def _find(conn: Connection, name: str) -> repo.Namespace | None:
    row = conn.execute(sa.select(records.T_NS).where(records.T_NS.c.namespace == name)).first()
    return records.namespace_from_row(row) if row else None


def _upsert(conn: Connection, kind, ns: repo.Namespace, name: str, row: dict[str, Any], prefer_new: bool) -> None:
    t = kind.table
    where = [t.c.namespace_id == ns.id, t.c.name == name]
    if conn.execute(sa.select(t.c.id).where(*where)).first() is None:
        repo.insert_row(conn, kind, ns, {"name": name, **row})
    elif prefer_new:
        conn.execute(t.update().where(*where).values(**row, updated_at=utcnow()))


def _load_one(conn: Connection, doc: dict[str, Any], merge: bool, prefer_new: bool, overwrite: bool) -> str:
    values = _namespace_values(doc)
    ns = _find(conn, values["namespace"])
    if ns is None:
        ns_id = repo.insert_namespace(conn, values)
        ns = records.namespace_from_row(conn.execute(sa.select(records.T_NS).where(records.T_NS.c.id == ns_id)).one())
        outcome = "created"
    elif not merge:
        return "skipped"
    else:
        if prefer_new:
            conn.execute(records.T_NS.update().where(records.T_NS.c.id == ns.id).values(**values, updated_at=utcnow()))
        if overwrite:
            for table in (records.T_OBJ, records.T_PROP, records.T_TAG):
                conn.execute(table.delete().where(table.c.namespace_id == ns.id))
        outcome = "merged"
    known = {a.name for a in _associations(conn, ns)}
    for assoc in doc.get("resource_type_associations") or []:
        if assoc["name"] not in known:
            repo.insert_association(conn, ns, assoc)
    for obj in doc.get("objects") or []:
        row = records.object_row(obj)
        _upsert(conn, repo.OBJECTS, ns, row.pop("name"), row, prefer_new)
    for name, schema in (doc.get("properties") or {}).items():
        row = {"json_schema": json.dumps({k: v for k, v in schema.items() if k != "name"})}
        _upsert(conn, repo.PROPERTIES, ns, name, row, prefer_new)
    for tag in doc.get("tags") or []:
        _upsert(conn, repo.TAGS, ns, tag["name"], {}, prefer_new=False)
    return outcome


def _associations(conn: Connection, ns: repo.Namespace) -> list[repo.Association]:
    rows = conn.execute(records.association_query().where(records.T_ASSOC.c.namespace_id == ns.id))
    return [records.association_from_row(r) for r in rows]


def load(
    engine: Engine, path: str = DEFAULT_PATH, *, merge: bool = False, prefer_new: bool = False, overwrite: bool = False
) -> dict[str, str]:
    """Load every ``*.json`` under ``path``; an existing namespace is skipped unless ``merge``.

    With ``merge``: missing content is added; ``prefer_new`` also updates what
    exists from the file; ``overwrite`` first drops the namespace's objects,
    properties and tags. Each file is one transaction. Returns namespace -> outcome.
    """
    outcomes = {}
    for file in _files(path):
        doc = _read(file)
        outcomes[doc["namespace"]] = run_in_transaction(engine, _load_one, doc, merge, prefer_new, overwrite)
        LOG.info("metadefs: %s %s from %s", outcomes[doc["namespace"]], doc["namespace"], file.name)
    return outcomes


def unload(engine: Engine) -> int:
    """Delete every namespace and its content, and the resource types that are not protected."""

    def work(conn: Connection) -> int:
        for table in repo.CHILD_TABLES:
            conn.execute(table.delete())
        count = conn.execute(records.T_NS.delete()).rowcount
        conn.execute(records.T_RT.delete().where(records.T_RT.c.protected == sa.false()))
        return count

    return run_in_transaction(engine, work)


def export(engine: Engine, path: str = DEFAULT_PATH) -> list[Path]:
    """Write each namespace to ``<path>/<namespace>.json`` in the format ``load`` reads."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ns in repo.list_namespaces(engine, ADMIN, sort_key="namespace", sort_dir="asc"):
        doc: dict[str, Any] = {"namespace": ns.namespace, **{f: getattr(ns, f) for f in NAMESPACE_FIELDS}}
        doc["resource_type_associations"] = [
            {k: v for k, v in (("name", a.name), ("prefix", a.prefix), ("properties_target", a.properties_target)) if v}
            for a in repo.list_associations(engine, ns)
        ]
        doc["properties"] = {p.name: p.schema for p in repo.list_children(engine, repo.PROPERTIES, ns)}
        doc["objects"] = [
            {"name": o.name, "description": o.description, "required": o.required, "properties": o.properties}
            for o in repo.list_children(engine, repo.OBJECTS, ns)
        ]
        doc["tags"] = [{"name": t.name} for t in repo.list_children(engine, repo.TAGS, ns)]
        target = folder / f"{ns.namespace}.json"
        target.write_text(json.dumps(doc, indent=4, sort_keys=False) + "\n", encoding="utf-8")
        written.append(target)
    return written
