"""Expand: taskflow's persistence tables (logbooks, flowdetails, atomdetails) for the job board.

With ``[taskflow_jobboard]`` the import flows' state lives in the service's database, where
taskflow's SQLAlchemy persistence backend reads and writes it. taskflow ships alembic
migrations of its own, but its alembic environment keeps its revision in the default
``alembic_version`` table, which is ours: running it in the same database would overwrite our
revision marker. So this revision creates the tables as taskflow's latest migration leaves
them (its persistence/backends/sqlalchemy/tables.py: JSON on PostgreSQL, text elsewhere);
db/tables.py declares the same, so the schema check covers them. Only additive; Glance ignores
the tables.

Revision ID: expand06
Revises: expand05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "expand06"
down_revision = "expand05"
branch_labels = None
depends_on = None


def _json():
    return sa.UnicodeText().with_variant(postgresql.JSON(), "postgresql")


def _uuid():
    return sa.Column("uuid", sa.String(64), primary_key=True, nullable=False, unique=True)


def upgrade():
    op.create_table(
        "logbooks",
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("meta", _json()),
        sa.Column("name", sa.String(255)),
        _uuid(),
    )
    op.create_table(
        "flowdetails",
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("parent_uuid", sa.String(64), sa.ForeignKey("logbooks.uuid", ondelete="CASCADE")),
        sa.Column("meta", _json()),
        sa.Column("name", sa.String(255)),
        sa.Column("state", sa.String(255)),
        _uuid(),
    )
    op.create_table(
        "atomdetails",
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("parent_uuid", sa.String(64), sa.ForeignKey("flowdetails.uuid", ondelete="CASCADE")),
        sa.Column("meta", _json()),
        sa.Column("name", sa.String(255)),
        sa.Column("version", sa.String(64)),
        sa.Column("state", sa.String(255)),
        _uuid(),
        sa.Column("failure", _json()),
        sa.Column("results", _json()),
        sa.Column("revert_results", _json()),
        sa.Column("revert_failure", _json()),
        sa.Column("atom_type", sa.Enum("RETRY_DETAIL", "TASK_DETAIL", name="atom_types")),
        sa.Column("intention", sa.Enum("EXECUTE", "IGNORE", "REVERT", "RETRY", name="intentions")),
    )
