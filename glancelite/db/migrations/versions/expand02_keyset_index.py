"""Expand: composite index for keyset pagination of the default image listing.

glancelite's own addition (Glance has none): the default sort is
created_at desc, id desc, which this index serves without a sort step.

Revision ID: expand02
Revises: expand01
"""

from alembic import op

revision = "expand02"
down_revision = "expand01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_images_created_at_id", "images", ["created_at", "id"], unique=False)
