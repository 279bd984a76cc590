"""Contract: drop the legacy is_public flag, visibility becomes required (Glance's ocata_contract01).

Runs only after ``db migrate`` filled every row's visibility; by then no
running code reads is_public any more.

Revision ID: contract01
Revises: initial01
Depends on: expand01
"""

import sqlalchemy as sa
from alembic import op

revision = "contract01"
down_revision = "initial01"
branch_labels = ("contract",)
depends_on = "expand01"

VISIBILITY = sa.Enum("private", "public", "shared", "community", name="image_visibility", create_constraint=True)


def upgrade():
    bind = op.get_bind()
    missing = bind.execute(sa.text("SELECT count(*) FROM images WHERE visibility IS NULL")).scalar()
    if missing:
        raise RuntimeError(f"{missing} image(s) have no visibility yet: run 'glancelite-manage db migrate' first")
    op.drop_index("ix_images_is_public", table_name="images")
    # SQLite cannot alter a column in place: batch mode rebuilds the table, and
    # passing the enum as the new type restores its CHECK constraint there.
    with op.batch_alter_table("images") as batch:
        batch.drop_column("is_public")
        batch.alter_column("visibility", existing_type=VISIBILITY, type_=VISIBILITY, nullable=False)
    op.create_index("visibility_image_idx", "images", ["visibility"], unique=False)
