"""Expand: image_scrub_claims, the scrubber's claim on a pending_delete image.

glancelite's own addition (Glance's scrubber takes no claim, so two scrubbers may
delete the same data): a row says which scrubber process is deleting the image's
data; another scrubber takes it over only when that process is gone. Only
additive; Glance ignores the table.

Revision ID: expand04
Revises: expand03
"""

import sqlalchemy as sa
from alembic import op

revision = "expand04"
down_revision = "expand03"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "image_scrub_claims",
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("holder", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("process_start", sa.String(32)),
        sa.Column("claimed_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
    )
