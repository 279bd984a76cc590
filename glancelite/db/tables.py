"""Glance's schema as SQLAlchemy Core tables.

Names, columns and soft-delete columns match Glance so an operator's
existing database reads the same. Migrations (db/migrations) build exactly
this; a test compares the migrated schema with this metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UnicodeText,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData()


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime),
        Column("deleted_at", DateTime),
        Column("deleted", Boolean, nullable=False, default=False),
    ]


images = Table(
    "images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255)),
    Column("size", BigInteger),
    Column("status", String(30), nullable=False),
    *_timestamps(),
    Column("disk_format", String(20)),
    Column("container_format", String(20)),
    Column("checksum", String(32)),
    Column("owner", String(255)),
    Column("min_disk", Integer, nullable=False, default=0),
    Column("min_ram", Integer, nullable=False, default=0),
    Column("protected", Boolean, nullable=False, default=False),
    Column("virtual_size", BigInteger),
    Column(
        "visibility",
        Enum("private", "public", "shared", "community", name="image_visibility", create_constraint=True),
        nullable=False,
        default="shared",
    ),
    Column("os_hidden", Boolean, nullable=False, default=False),
    Column("os_hash_algo", String(64)),
    Column("os_hash_value", String(128)),
    Index("checksum_image_idx", "checksum"),
    Index("visibility_image_idx", "visibility"),
    Index("ix_images_deleted", "deleted"),
    Index("owner_image_idx", "owner"),
    Index("created_at_image_idx", "created_at"),
    Index("updated_at_image_idx", "updated_at"),
    Index("os_hidden_image_idx", "os_hidden"),
    Index("os_hash_value_image_idx", "os_hash_value"),
    # glancelite: keyset pagination of the default listing (created_at desc, id desc).
    Index("ix_images_created_at_id", "created_at", "id"),
    # glancelite: the same over live rows only; soft-deleted rows stay until db purge (expand05).
    Index(
        "ix_images_live_created_at_id",
        "created_at",
        "id",
        postgresql_where=text("deleted = false"),
        sqlite_where=text("deleted = 0"),
    ),
)

image_properties = Table(
    "image_properties",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(36), ForeignKey("images.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", Text),
    *_timestamps(),
    UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
    Index("ix_image_properties_image_id", "image_id"),
    Index("ix_image_properties_deleted", "deleted"),
    Index("ix_image_properties_name_value", "name", "value"),
)

image_locations = Table(
    "image_locations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(36), ForeignKey("images.id"), nullable=False),
    Column("value", Text, nullable=False),
    *_timestamps(),
    Column("meta_data", Text),  # JSON object
    Column("status", String(30), nullable=False, default="active"),
    Index("ix_image_locations_image_id", "image_id"),
    Index("ix_image_locations_deleted", "deleted"),
)

image_tags = Table(
    "image_tags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(36), ForeignKey("images.id"), nullable=False),
    Column("value", String(255), nullable=False),
    *_timestamps(),
    Index("ix_image_tags_image_id", "image_id"),
    Index("ix_image_tags_image_id_tag_value", "image_id", "value"),
)

image_members = Table(
    "image_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(36), ForeignKey("images.id"), nullable=False),
    Column("member", String(255), nullable=False),
    Column("can_share", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False, default="pending"),
    *_timestamps(),
    UniqueConstraint("image_id", "member", "deleted_at", name="image_members_image_id_member_deleted_at_key"),
    Index("ix_image_members_image_id", "image_id"),
    Index("ix_image_members_deleted", "deleted"),
    Index("ix_image_members_image_id_member", "image_id", "member"),
    Index("ix_image_members_member", "member"),
)

# glancelite's own (Glance has none): the scrubber process deleting a pending_delete image's
# data. One row per image at most (the key is the claim); a live holder renews heartbeat_at.
image_scrub_claims = Table(
    "image_scrub_claims",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id"), primary_key=True),
    Column("holder", String(36), nullable=False),  # the claiming scrubber's token
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("process_start", String(32)),  # tells a reused pid apart (processes.py)
    Column("claimed_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(30), nullable=False),
    Column("status", String(30), nullable=False),
    Column("owner", String(255)),
    Column("expires_at", DateTime),
    *_timestamps(),
    Column("image_id", String(36)),
    Column("request_id", String(64)),
    Column("user_id", String(64)),
    Index("ix_tasks_type", "type"),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_owner", "owner"),
    Index("ix_tasks_deleted", "deleted"),
    Index("ix_tasks_updated_at", "updated_at"),
    Index("ix_tasks_image_id", "image_id"),
)

task_info = Table(
    "task_info",
    metadata,
    Column("task_id", String(36), ForeignKey("tasks.id"), primary_key=True),
    Column("input", Text),
    Column("result", Text),
    Column("message", Text),
)

# Metadata definitions (Glance's metadef_* tables). Rows are deleted, not soft-deleted.
metadef_namespaces = Table(
    "metadef_namespaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(80), nullable=False),
    Column("display_name", String(80)),
    Column("description", Text),
    Column("visibility", String(32)),
    Column("protected", Boolean),
    Column("owner", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
    Index("ix_metadef_namespaces_owner", "owner"),
)

metadef_resource_types = Table(
    "metadef_resource_types",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False),
    Column("protected", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    UniqueConstraint("name", name="uq_metadef_resource_types_name"),
)

metadef_namespace_resource_types = Table(
    "metadef_namespace_resource_types",
    metadata,
    Column("resource_type_id", Integer, ForeignKey("metadef_resource_types.id"), primary_key=True),
    Column("namespace_id", Integer, ForeignKey("metadef_namespaces.id"), primary_key=True),
    Column("properties_target", String(80)),
    Column("prefix", String(80)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    Index("ix_metadef_ns_res_types_namespace_id", "namespace_id"),
)


def _namespace_child(name: str, *columns: Column) -> Table:
    """metadef_objects/properties/tags: a name unique within its namespace."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("namespace_id", Integer, ForeignKey("metadef_namespaces.id"), nullable=False),
        Column("name", String(80), nullable=False),
        *columns,
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime),
        UniqueConstraint("namespace_id", "name", name=f"uq_{name}_namespace_id_name"),
        Index(f"ix_{name}_name", "name"),
    )


metadef_objects = _namespace_child(
    "metadef_objects",
    Column("description", Text),
    Column("required", Text),  # JSON list
    Column("json_schema", Text, nullable=False),  # JSON object: the object's properties
)
metadef_properties = _namespace_child("metadef_properties", Column("json_schema", Text, nullable=False))
metadef_tags = _namespace_child("metadef_tags")

# [taskflow_jobboard]: taskflow's SQLAlchemy persistence tables (taskflow's
# persistence/backends/sqlalchemy/tables.py at its latest migration), created by expand06 and
# read and written only by taskflow's backend. Declared here, not imported: taskflow stays in tasks/.
_TF_UUID, _TF_NAME = 64, 255


def _tf_json():
    """taskflow's JSONType: JSON on PostgreSQL, text holding JSON elsewhere."""
    return UnicodeText().with_variant(postgresql.JSON(), "postgresql")


def _tf_common(parent: str | None) -> list[Column]:
    columns = [Column("created_at", DateTime), Column("updated_at", DateTime)]
    if parent:
        columns.append(Column("parent_uuid", String(_TF_UUID), ForeignKey(f"{parent}.uuid", ondelete="CASCADE")))
    columns.append(Column("meta", _tf_json()))
    columns.append(Column("name", String(_TF_NAME)))
    return columns


def _tf_uuid() -> Column:
    return Column("uuid", String(_TF_UUID), primary_key=True, nullable=False, unique=True)


taskflow_logbooks = Table("logbooks", metadata, *_tf_common(None), _tf_uuid())
taskflow_flowdetails = Table("flowdetails", metadata, *_tf_common("logbooks"), Column("state", String(255)), _tf_uuid())
taskflow_atomdetails = Table(
    "atomdetails",
    metadata,
    *_tf_common("flowdetails"),
    Column("version", String(64)),
    Column("state", String(255)),
    _tf_uuid(),
    Column("failure", _tf_json()),
    Column("results", _tf_json()),
    Column("revert_results", _tf_json()),
    Column("revert_failure", _tf_json()),
    Column("atom_type", Enum("RETRY_DETAIL", "TASK_DETAIL", name="atom_types")),
    Column("intention", Enum("EXECUTE", "IGNORE", "REVERT", "RETRY", name="intentions")),
)
