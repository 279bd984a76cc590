"""Expand: add images.visibility next to the legacy is_public flag (Glance's ocata_expand01).

Only additive: old code keeps writing is_public, new code writes visibility;
``glancelite-manage db migrate`` fills visibility for rows written by old code.

Revision ID: expand01
Revises: initial01
"""

import sqlalchemy as sa
from alembic import op

revision = "expand01"
down_revision = "initial01"
branch_labels = ("expand",)
depends_on = None

VISIBILITY = sa.Enum("private", "public", "shared", "community", name="image_visibility", create_constraint=True)


def upgrade():
    bind = op.get_bind()
    # PostgreSQL: the enum is a type of its own and must exist before the column.
    VISIBILITY.create(bind, checkfirst=True)
    # Nullable until contract01: rows written by old code have none yet. On SQLite
    # the CHECK of the enum arrives with contract01's table rebuild.
    column_type = VISIBILITY
    if bind.dialect.name == "sqlite":
        column_type = sa.Enum(*VISIBILITY.enums, name=VISIBILITY.name, create_constraint=False)
    op.add_column("images", sa.Column("visibility", column_type, nullable=True))
