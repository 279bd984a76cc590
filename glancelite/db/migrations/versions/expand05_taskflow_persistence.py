"""Expand: taskflow's persistence tables (logbooks, flowdetails, atomdetails) for the job board.

With ``[taskflow_jobboard]`` the import flows' state lives in the service's database, where
taskflow's SQLAlchemy persistence backend reads and writes it. taskflow ships alembic
migrations of its own, but its alembic environment keeps its revision in the default
``alembic_version`` table, which is ours: running it in the same database would overwrite our
revision marker. So this revision creates the same tables from taskflow's own table
definitions (its latest schema), and db/tables.py includes them, so the schema check covers
them. Only additive; Glance ignores the tables.

Revision ID: expand05
Revises: expand04
"""

import sqlalchemy as sa
from alembic import op
from taskflow.persistence.backends.sqlalchemy import tables as taskflow_tables

revision = "expand05"
down_revision = "expand04"
branch_labels = None
depends_on = None


def upgrade():
    metadata = sa.MetaData()
    taskflow_tables.fetch(metadata)
    metadata.create_all(op.get_bind())
