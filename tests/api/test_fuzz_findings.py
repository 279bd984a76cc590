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


@pytest.mark.parametrize(
    "path, body",
    [
        ("", {"namespace": ""}),
        ("/fuzz-names/objects", {"name": ""}),
        ("/fuzz-names/tags", {"tags": [{"name": ""}]}),
        ("/fuzz-names/resource_types", {"name": ""}),
        ("/fuzz-names/properties", {"name": "", "title": "t", "type": "string"}),
    ],
)
def test_an_empty_metadef_name_is_a_400(service, json_http, path, body):
    """A namespace "" was created (201) and then unreachable: /v2/metadefs/namespaces//tags is another path (405)."""
    namespaces = f"{service.url}/v2/metadefs/namespaces"
    json_http.post(namespaces, json={"namespace": "fuzz-names"}, headers=ADMIN)
    resp = json_http.post(namespaces + path, json=body, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    assert "must not be empty" in resp.json()["message"] or "needs a" in resp.json()["message"]


def test_renaming_a_metadef_to_an_empty_name_is_a_400(service, json_http):
    namespaces = f"{service.url}/v2/metadefs/namespaces"
    json_http.post(namespaces, json={"namespace": "fuzz-rename", "objects": [{"name": "o"}]}, headers=ADMIN)
    assert json_http.put(f"{namespaces}/fuzz-rename", json={"namespace": ""}, headers=ADMIN).status_code == 400
    assert json_http.put(f"{namespaces}/fuzz-rename/objects/o", json={"name": ""}, headers=ADMIN).status_code == 400
    assert json_http.get(f"{namespaces}/fuzz-rename/objects/o", headers=ADMIN).status_code == 200


def test_a_property_named_empty_cannot_be_made(service, json_http):
    """A property "" was created; its URL .../properties/ is the collection, whose DELETE removed every property."""
    namespaces = f"{service.url}/v2/metadefs/namespaces"
    json_http.post(namespaces, json={"namespace": "fuzz-props"}, headers=ADMIN)
    kept = {"name": "kept", "title": "t", "type": "string"}
    assert json_http.post(f"{namespaces}/fuzz-props/properties", json=kept, headers=ADMIN).status_code == 201
    renamed = {**kept, "name": ""}
    assert json_http.put(f"{namespaces}/fuzz-props/properties/kept", json=renamed, headers=ADMIN).status_code == 400
    assert json_http.get(f"{namespaces}/fuzz-props/properties/kept", headers=ADMIN).status_code == 200
