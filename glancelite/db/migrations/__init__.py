"""alembic environment, revisions (versions/) and data migrations (data_migrations/)."""
