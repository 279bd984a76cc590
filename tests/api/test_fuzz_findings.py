"""Regressions for what the schemathesis fuzz tier (tests/fuzz) found: each was a 5xx or a leak."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN


@pytest.mark.parametrize("key", ["tags", "objects", "resource_type_associations"])
def test_namespace_with_an_unnamed_child_is_a_400(service, json_http, key):
    """POST /v2/metadefs/namespaces with {"tags": [{}]} raised KeyError: a 500."""
    resp = json_http.post(
        f"{service.url}/v2/metadefs/namespaces", json={"namespace": f"fuzz-{key}", key: [{}]}, headers=ADMIN
    )
    assert resp.status_code == 400, resp.text
    assert "needs a non-empty name" in resp.json()["message"]
    assert json_http.get(f"{service.url}/v2/metadefs/namespaces/fuzz-{key}", headers=ADMIN).status_code == 404
