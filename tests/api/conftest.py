"""The in-process API tier: the real application and services under falcon's TestClient, no server process.

The fixtures mirror the functional tier's (tests/conftest.py): ``service`` has the same stores and
options, ``service.url`` works with any requests session (``http``, ``json_http``, ``requests.get``).
GLANCELITE_TEST_DATABASE=postgresql puts every service on the session's private PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.support import inprocess
from tests.support.imports import WebSource


@pytest.fixture(scope="session", autouse=True)
def inprocess_routing():
    """Requests to an in-process service's URL go to its application; every other URL to the network."""
    with inprocess.routing():
        yield


@pytest.fixture(scope="module")
def service(request, tmp_path_factory):
    """The in-process twin of the functional ``service``: two file stores (fast, slow) and the reserved stores."""
    yield from inprocess.serve(request, tmp_path_factory, "service")


@pytest.fixture(scope="module")
def web():
    """A 127.0.0.1 web-download source, as in tests/functional/conftest.py; reached over the network."""
    source = WebSource()
    yield source
    source.close()
