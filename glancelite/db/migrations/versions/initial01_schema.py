"""Base schema: Glance's tables as they stood before the ocata visibility change.

Images still carry the legacy ``is_public`` flag; ``visibility`` arrives in the
expand branch (expand01), is filled by the data migration
(data_migrations/m01_visibility.py) and ``is_public`` is dropped in contract01, the same
rolling-upgrade triple Glance used (ocata_expand01 / ocata_contract01).

Revision ID: initial01
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "initial01"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "images",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("disk_format", sa.String(length=20), nullable=True),
        sa.Column("container_format", sa.String(length=20), nullable=True),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("min_disk", sa.Integer(), nullable=False),
        sa.Column("min_ram", sa.Integer(), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("virtual_size", sa.BigInteger(), nullable=True),
        # Legacy flag; a server default lets code that writes only ``visibility``
        # insert rows while old and new code share the database (expand..contract).
        sa.Column("is_public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("os_hidden", sa.Boolean(), nullable=False),
        sa.Column("os_hash_algo", sa.String(length=64), nullable=True),
        sa.Column("os_hash_value", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "image_locations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("meta_data", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "image_members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("member", sa.String(length=255), nullable=False),
        sa.Column("can_share", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "image_id",
            "member",
            "deleted_at",
            name="image_members_image_id_member_deleted_at_key",
        ),
    )
    op.create_table(
        "image_properties",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
    )
    op.create_table(
        "image_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "task_info",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("checksum_image_idx", "images", ["checksum"], unique=False)
    op.create_index("created_at_image_idx", "images", ["created_at"], unique=False)
    op.create_index("ix_images_deleted", "images", ["deleted"], unique=False)
    op.create_index("os_hash_value_image_idx", "images", ["os_hash_value"], unique=False)
    op.create_index("os_hidden_image_idx", "images", ["os_hidden"], unique=False)
    op.create_index("owner_image_idx", "images", ["owner"], unique=False)
    op.create_index("updated_at_image_idx", "images", ["updated_at"], unique=False)
    op.create_index("ix_images_is_public", "images", ["is_public"], unique=False)
    op.create_index("ix_tasks_deleted", "tasks", ["deleted"], unique=False)
    op.create_index("ix_tasks_image_id", "tasks", ["image_id"], unique=False)
    op.create_index("ix_tasks_owner", "tasks", ["owner"], unique=False)
    op.create_index("ix_tasks_status", "tasks", ["status"], unique=False)
    op.create_index("ix_tasks_type", "tasks", ["type"], unique=False)
    op.create_index("ix_tasks_updated_at", "tasks", ["updated_at"], unique=False)
    op.create_index("ix_image_locations_deleted", "image_locations", ["deleted"], unique=False)
    op.create_index("ix_image_locations_image_id", "image_locations", ["image_id"], unique=False)
    op.create_index("ix_image_members_deleted", "image_members", ["deleted"], unique=False)
    op.create_index("ix_image_members_image_id", "image_members", ["image_id"], unique=False)
    op.create_index(
        "ix_image_members_image_id_member",
        "image_members",
        ["image_id", "member"],
        unique=False,
    )
    op.create_index("ix_image_members_member", "image_members", ["member"], unique=False)
    op.create_index("ix_image_properties_deleted", "image_properties", ["deleted"], unique=False)
    op.create_index("ix_image_properties_image_id", "image_properties", ["image_id"], unique=False)
    op.create_index(
        "ix_image_properties_name_value",
        "image_properties",
        ["name", "value"],
        unique=False,
    )
    op.create_index("ix_image_tags_image_id", "image_tags", ["image_id"], unique=False)
    op.create_index(
        "ix_image_tags_image_id_tag_value",
        "image_tags",
        ["image_id", "value"],
        unique=False,
    )
