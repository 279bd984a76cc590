"""Fixtures shared by the functional modules (tests/conftest.py has the session-wide ones)."""

from __future__ import annotations

import pytest

from tests.support.imports import WebSource


@pytest.fixture(scope="module")
def web():
    """A 127.0.0.1 web-download source; ``web.filtering_opts`` lets a service's import filter reach it."""
    source = WebSource()
    yield source
    source.close()
