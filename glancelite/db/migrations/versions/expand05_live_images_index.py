"""Expand: a partial index of the live images for the default listing.

glancelite's own addition (Glance has none): the default listing (created_at desc,
id desc, deleted = false) walked ix_images_created_at_id / created_at_image_idx
past every soft-deleted row newer than the page. Deleted rows stay until
``db purge``: with 60,000 of 100,000 images deleted, a page took ~70 ms on
PostgreSQL; over this index, which holds only live rows, ~0.1 ms. Only additive;
Glance ignores it.

Revision ID: expand05
Revises: expand04
"""

import sqlalchemy as sa
from alembic import op

revision = "expand05"
down_revision = "expand04"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_images_live_created_at_id",
        "images",
        ["created_at", "id"],
        unique=False,
        # The term as SQLAlchemy renders the listing's filter, so each planner matches it.
        postgresql_where=sa.text("deleted = false"),
        sqlite_where=sa.text("deleted = 0"),
    )
