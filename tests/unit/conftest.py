"""Fixtures of the unit tests that use a real database."""

from __future__ import annotations

import pytest

from glancelite.db import engine as db_engine
from glancelite.db import tables
from glancelite.settings import DatabaseSettings


@pytest.fixture
def engine(database_url):
    """An engine on a fresh database (SQLite, then PostgreSQL) with every table created."""
    eng = db_engine.create_engine(DatabaseSettings(connection=database_url))
    tables.metadata.create_all(eng)
    yield eng
    eng.dispose()
