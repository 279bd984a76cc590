"""GET /v2/openapi.json: the description is built from the route table, covers it exactly, and is committed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from glancelite.api import openapi, routes, schemas

RENDERED = Path(__file__).resolve().parents[2] / "doc" / "openapi.json"


def test_every_route_has_an_operation_and_every_operation_a_route(service):
    table = routes.table(service.services)
    served = openapi.operation_keys(table)
    assert served == set(openapi.OPERATIONS), (
        sorted(served - set(openapi.OPERATIONS)),
        sorted(set(openapi.OPERATIONS) - served),
    )
    # Every responder is either an operation or one of Glance's deliberate 405s.
    paths = dict(table)
    for method, path in openapi.REFUSED:
        assert hasattr(paths[path], f"on_{method}")


def test_a_route_without_a_description_is_refused(service):
    table = routes.table(service.services)

    class Undescribed:
        def on_get(self, req, resp):
            """A responder nobody described."""

    table.append(("/v2/undescribed", Undescribed()))
    with pytest.raises(openapi.DescriptionMismatch, match="/v2/undescribed"):
        openapi.describe(table, schemas.Formats.of(service.settings))
    short = [entry for entry in routes.table(service.services) if entry[0] != "/v2/info/usage"]
    with pytest.raises(openapi.DescriptionMismatch, match="operations without a route.*/v2/info/usage"):
        openapi.describe(short, schemas.Formats.of(service.settings))


def test_refused_methods_answer_405(service, json_http):
    for method, path in openapi.REFUSED:
        url = service.url + path.replace("{task_id}", "00000000-0000-0000-0000-000000000000")
        assert json_http.request(method.upper(), url).status_code == 405, (method, path)


def test_served_description_is_the_committed_one(service, json_http):
    resp = json_http.get(f"{service.url}{openapi.OPENAPI_PATH}")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    if os.environ.get("GLANCELITE_WRITE_OPENAPI") == "1":
        RENDERED.write_text(resp.text)
    assert resp.text == RENDERED.read_text(), "doc/openapi.json is stale: rerun with GLANCELITE_WRITE_OPENAPI=1"


def test_description_is_valid_openapi_3_1():
    from schemathesis import openapi as st_openapi

    document = json.loads(RENDERED.read_text())
    assert document["openapi"] == "3.1.0"
    loaded = st_openapi.from_dict(document)
    loaded.validate()  # against the OpenAPI 3.1 meta-schema; raises on the first violation
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == len(openapi.OPERATIONS)
    # Every $ref points somewhere, and every component is a valid JSON schema (2020-12, OpenAPI 3.1's dialect).
    text = RENDERED.read_text()
    components = document["components"]["schemas"]
    for ref in set(part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]):
        assert ref in components, ref
    for schema in components.values():
        jsonschema.Draft202012Validator.check_schema(schema)  # raises SchemaError naming the fault


def test_operations_answer_what_they_describe(service, json_http):
    """A few live answers validated against the description's own response schemas."""
    document = json.loads(RENDERED.read_text())
    components = document["components"]

    def check(method, path, resp):
        response = document["paths"][path][method]["responses"][str(resp.status_code)]
        schema = response["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator({**schema, "components": components})
        validator.validate(resp.json())

    created = json_http.post(f"{service.url}/v2/images", json={"name": "described"})
    check("post", "/v2/images", created)
    image_id = created.json()["id"]
    check("get", "/v2/images/{image_id}", json_http.get(f"{service.url}/v2/images/{image_id}"))
    check("get", "/v2/images", json_http.get(f"{service.url}/v2/images"))
    missing = json_http.get(f"{service.url}/v2/images/00000000-0000-0000-0000-000000000000")
    check("get", "/v2/images/{image_id}", missing)
    check("get", "/versions", json_http.get(f"{service.url}/versions"))
    check("get", "/v2/info/stores", json_http.get(f"{service.url}/v2/info/stores"))
    check("get", "/v2/info/import", json_http.get(f"{service.url}/v2/info/import"))
