"""/v2/schemas/*: served as Glance does and the same documents validate our own responses."""

from __future__ import annotations

import jsonschema
import pytest

NAMES = ("image", "images", "member", "members", "task", "tasks")


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_served(service, http, name):
    resp = http.get(f"{service.url}/v2/schemas/{name}")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    schema = resp.json()
    assert schema["name"] == name and "properties" in schema
    jsonschema.Draft4Validator.check_schema(schema)
    assert http.post(f"{service.url}/v2/schemas/{name}", json={}).status_code == 405
    assert http.get(f"{service.url}/v2/schemas/{name}", data=b"x").status_code == 400


def test_image_schema_shape(service, http):
    schema = http.get(f"{service.url}/v2/schemas/image").json()
    assert schema["additionalProperties"] == {"type": "string"}
    assert [link["rel"] for link in schema["links"]] == ["self", "enclosure", "describedby"]
    props = schema["properties"]
    for key in ("status", "checksum", "size", "virtual_size", "created_at", "updated_at", "self", "file", "schema"):
        assert props[key]["readOnly"] is True
    assert props["visibility"]["enum"] == ["community", "public", "private", "shared"]
    assert None in props["disk_format"]["enum"] and "qcow2" in props["disk_format"]["enum"]
    listing = http.get(f"{service.url}/v2/schemas/images").json()
    assert listing["properties"]["images"]["items"] == schema
    assert [link["rel"] for link in listing["links"]] == ["first", "next", "describedby"]


def test_responses_validate_against_the_served_schemas(service, http):
    image_schema = http.get(f"{service.url}/v2/schemas/image").json()
    created = http.post(f"{service.url}/v2/images", json={"name": "s", "os_distro": "cirros"}).json()
    jsonschema.validate(created, image_schema)
    listing = http.get(f"{service.url}/v2/images").json()
    jsonschema.validate(listing, http.get(f"{service.url}/v2/schemas/images").json())
    member = http.post(f"{service.url}/v2/images/{created['id']}/members", json={"member": "p"}).json()
    jsonschema.validate(member, http.get(f"{service.url}/v2/schemas/member").json())
    members = http.get(f"{service.url}/v2/images/{created['id']}/members").json()
    jsonschema.validate(members, http.get(f"{service.url}/v2/schemas/members").json())


def test_schema_custom_properties_are_enforced(service, http):
    bad = http.post(
        f"{service.url}/v2/images", json={"kernel_id": "not-a-uuid"}, headers={"Accept": "application/json"}
    )
    assert bad.status_code == 400
    assert "Provided object does not match schema 'image'" in bad.json()["message"]
    bad = http.post(f"{service.url}/v2/images", json={"cinder_encryption_key_deletion_policy": "sometimes"})
    assert bad.status_code == 400


@pytest.fixture(scope="module")
def narrow_formats(tmp_path_factory):
    from tests.support.inprocess import InProcessService
    from tests.support.server import write_config

    sections = {"image_format": {"disk_formats": "raw,qcow2", "container_formats": "bare"}}
    server = InProcessService(write_config(tmp_path_factory.mktemp("formats"), sections)).start()
    yield server
    server.stop()


def test_configured_formats_are_served_and_enforced(narrow_formats, http):
    url = narrow_formats.url
    schema = http.get(f"{url}/v2/schemas/image").json()["properties"]
    assert schema["disk_format"]["enum"] == [None, "raw", "qcow2"]
    assert schema["container_format"]["enum"] == [None, "bare"]
    refused = http.post(f"{url}/v2/images", json={"disk_format": "vmdk", "container_format": "bare"})
    assert refused.status_code == 400 and "vmdk" in refused.text
    image = http.post(f"{url}/v2/images", json={"disk_format": "qcow2", "container_format": "bare"})
    assert image.status_code == 201, image.text
    patch = http.patch(
        f"{url}/v2/images/{image.json()['id']}",
        json=[{"op": "replace", "path": "/container_format", "value": "ovf"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert patch.status_code == 400 and "ovf" in patch.text
