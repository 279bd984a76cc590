"""GET /v2/images through gunicorn: what the server refuses before the application sees it.

The listing's behaviour itself is tests/api/test_listing.py.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def svc(service):
    return service


def test_huge_query_is_a_client_error(svc, http):
    # gunicorn refuses request lines past 4094 bytes (414) before we see them.
    assert http.get(f"{svc.url}/v2/images?name={'x' * 5000}").status_code == 414
    assert http.get(f"{svc.url}/v2/images?name={'x' * 3000}").status_code == 200
