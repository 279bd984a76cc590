"""Expand: the metadata definition tables (Glance's metadef_*), with Glance's resource types.

Glance created these in its liberty_initial schema and seeded the five resource
types its services use (OS::Nova::Instance was renamed OS::Nova::Server by
mitaka02); glancelite adds them in one additive step.

Revision ID: expand03
Revises: expand02
"""

import datetime

import sqlalchemy as sa
from alembic import op

revision = "expand03"
down_revision = "expand02"
branch_labels = None
depends_on = None

RESOURCE_TYPES = (
    "OS::Glance::Image",
    "OS::Cinder::Volume",
    "OS::Nova::Flavor",
    "OS::Nova::Aggregate",
    "OS::Nova::Server",
)


def _timestamps():
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    ]


def _namespace_child(name, *columns):
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        *columns,
        *_timestamps(),
        sa.ForeignKeyConstraint(["namespace_id"], ["metadef_namespaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace_id", "name", name=f"uq_{name}_namespace_id_name"),
    )
    op.create_index(f"ix_{name}_name", name, ["name"], unique=False)


def upgrade():
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(length=32), nullable=True),
        sa.Column("protected", sa.Boolean(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
    )
    op.create_index("ix_metadef_namespaces_owner", "metadef_namespaces", ["owner"], unique=False)
    resource_types = op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),
    )
    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column("resource_type_id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("properties_target", sa.String(length=80), nullable=True),
        sa.Column("prefix", sa.String(length=80), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["namespace_id"], ["metadef_namespaces.id"]),
        sa.ForeignKeyConstraint(["resource_type_id"], ["metadef_resource_types.id"]),
        sa.PrimaryKeyConstraint("resource_type_id", "namespace_id"),
    )
    op.create_index(
        "ix_metadef_ns_res_types_namespace_id", "metadef_namespace_resource_types", ["namespace_id"], unique=False
    )
    _namespace_child(
        "metadef_objects",
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("required", sa.Text(), nullable=True),
        sa.Column("json_schema", sa.Text(), nullable=False),
    )
    _namespace_child("metadef_properties", sa.Column("json_schema", sa.Text(), nullable=False))
    _namespace_child("metadef_tags")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    op.bulk_insert(resource_types, [{"name": name, "protected": True, "created_at": now} for name in RESOURCE_TYPES])
