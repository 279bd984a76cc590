"""alembic environment: the engine comes from the caller (glancelite-manage), never from a global."""

from alembic import context

from glancelite.db import tables

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
