"""Shared fixtures: a real service per test module, identities as headers."""

from __future__ import annotations

import pytest
import requests

from tests.support.server import Server, write_config


def identity(project: str = "project-a", roles: str = "reader,member", user: str = "user-a") -> dict:
    """Trusted identity headers, as keystonemiddleware would set them."""
    return {"X-Identity-Status": "Confirmed", "X-Project-Id": project, "X-User-Id": user, "X-Roles": roles}


ADMIN = identity("admin-project", "admin,reader,member", "admin-user")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A glancelite-api with two file stores (fast, slow) and the reserved stores."""
    server = Server(write_config(tmp_path_factory.mktemp("service"))).start()
    yield server
    server.stop()


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session
