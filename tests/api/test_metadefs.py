"""Metadata definitions (/v2/metadefs) on the real service: the flows tempest runs, and the 4xx around them."""

from __future__ import annotations

import uuid

import jsonschema
import pytest

from tests.conftest import ADMIN, identity

JSON = {"Accept": "application/json"}
ADMIN_H = {**JSON, **ADMIN}
READER = {**JSON, **identity("project-r", "reader,member", "reader-user")}
OTHER = {**JSON, **identity("project-o", "reader,member", "other-user")}
SEEDED = ["OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate", "OS::Nova::Server"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def url(service):
    return f"{service.url}/v2/metadefs"


@pytest.fixture
def namespace(url, http):
    """A fresh unprotected public namespace, removed afterwards (tempest's create_namespace)."""
    name = unique("test-ns")
    resp = http.post(
        f"{url}/namespaces",
        json={
            "namespace": name,
            "visibility": "public",
            "description": "Tempest",
            "protected": False,
            "display_name": name,
        },
        headers=ADMIN_H,
    )
    assert resp.status_code == 201, resp.text
    yield name
    http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("namespace", "namespace"),
        ("namespaces", "namespaces"),
        ("resource_type", "resource_type_association"),
        ("resource_types", "resource_type_associations"),
        ("object", "object"),
        ("objects", "objects"),
        ("property", "property"),
        ("properties", "properties"),
        ("tag", "tag"),
        ("tags", "tags"),
    ],
)
def test_schemas(service, http, path, name):
    resp = http.get(f"{service.url}/v2/schemas/metadefs/{path}", headers=READER)
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == name
    assert "properties" in body


def test_resource_types_are_seeded(url, http):
    resp = http.get(f"{url}/resource_types", headers=READER)
    assert resp.status_code == 200
    names = [t["name"] for t in resp.json()["resource_types"]]
    assert names[: len(SEEDED)] == SEEDED
    assert all("created_at" in t for t in resp.json()["resource_types"])


def test_namespace_lifecycle_protected_and_visibility(url, http):
    resource = http.get(f"{url}/resource_types", headers=ADMIN_H).json()["resource_types"][0]["name"]
    name = unique("namespace")
    resp = http.post(
        f"{url}/namespaces",
        json={
            "namespace": name,
            "visibility": "public",
            "description": "Tempest",
            "display_name": name,
            "resource_type_associations": [{"name": resource}],
            "protected": True,
        },
        headers=ADMIN_H,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"].endswith(f"/v2/metadefs/namespaces/{name}")
    assert created["protected"] is True and created["owner"] == "admin-project"
    assert created["resource_type_associations"][0]["name"] == resource
    assert created["self"] == f"/v2/metadefs/namespaces/{name}"
    assert created["schema"] == "/v2/schemas/metadefs/namespace"

    listed = http.get(f"{url}/namespaces", headers=ADMIN_H).json()
    assert name in [n["namespace"] for n in listed["namespaces"]]
    assert listed["schema"] == "/v2/schemas/metadefs/namespaces"
    shown = http.get(f"{url}/namespaces/{name}", headers=ADMIN_H).json()
    assert shown["namespace"] == name and shown["visibility"] == "public"
    # Public: another project reads it, but cannot change it (metadef_admin).
    assert http.get(f"{url}/namespaces/{name}", headers=READER).status_code == 200
    assert http.delete(f"{url}/namespaces/{name}", headers=READER).status_code == 403

    resp = http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H)
    assert resp.status_code == 403
    assert "protected" in resp.text

    resp = http.put(
        f"{url}/namespaces/{name}",
        json={
            "namespace": name,
            "description": "Tempest",
            "visibility": "private",
            "display_name": name,
            "protected": False,
        },
        headers=ADMIN_H,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["visibility"] == "private" and resp.json()["protected"] is False
    # Private now: invisible to other projects, in show and in the listing.
    assert http.get(f"{url}/namespaces/{name}", headers=READER).status_code == 404
    assert name not in [n["namespace"] for n in http.get(f"{url}/namespaces", headers=READER).json()["namespaces"]]

    assert http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H).status_code == 204
    assert http.get(f"{url}/namespaces/{name}", headers=ADMIN_H).status_code == 404


def test_namespace_errors(url, http, namespace):
    # Duplicate name.
    resp = http.post(f"{url}/namespaces", json={"namespace": namespace}, headers=ADMIN_H)
    assert resp.status_code == 409
    # Bad bodies.
    assert http.post(f"{url}/namespaces", json={"display_name": "x"}, headers=ADMIN_H).status_code == 400
    assert (
        http.post(f"{url}/namespaces", json={"namespace": "n", "visibility": "shared"}, headers=ADMIN_H).status_code
        == 400
    )
    assert http.post(f"{url}/namespaces", json={"namespace": "n", "bogus": 1}, headers=ADMIN_H).status_code == 400
    assert http.post(f"{url}/namespaces", data="{not json", headers=ADMIN_H).status_code == 400
    assert http.post(f"{url}/namespaces", json={"namespace": "n", "self": "/x"}, headers=ADMIN_H).status_code == 403
    # Unknown namespace.
    for method in ("get", "delete"):
        assert getattr(http, method)(f"{url}/namespaces/{unique('nope')}", headers=ADMIN_H).status_code == 404
    # Non-admins cannot create (metadef_admin), even in their own project.
    resp = http.post(f"{url}/namespaces", json={"namespace": unique("mine")}, headers=READER)
    assert resp.status_code == 403
    # Listing parameters.
    assert http.get(f"{url}/namespaces?limit=x", headers=ADMIN_H).status_code == 400
    assert http.get(f"{url}/namespaces?sort_dir=up", headers=ADMIN_H).status_code == 400
    assert http.get(f"{url}/namespaces?visibility=shared", headers=ADMIN_H).status_code == 400
    assert http.get(f"{url}/namespaces?marker={unique('nope')}", headers=ADMIN_H).status_code == 404


def test_namespace_listing_pages_and_filters(url, http):
    names = [unique("page") for _ in range(3)]
    for name in names:
        body = {"namespace": name, "visibility": "public", "resource_type_associations": [{"name": "OS::Nova::Flavor"}]}
        assert http.post(f"{url}/namespaces", json=body, headers=ADMIN_H).status_code == 201
    try:
        seen, page = [], f"{url}/namespaces?limit=2&sort_key=namespace&sort_dir=asc&resource_types=OS::Nova::Flavor"
        while page:
            body = http.get(page, headers=ADMIN_H).json()
            assert len(body["namespaces"]) <= 2
            seen += [n["namespace"] for n in body["namespaces"]]
            page = f"{url.removesuffix('/v2/metadefs')}{body['next']}" if "next" in body else None
        assert [n for n in seen if n in names] == sorted(names)
        assert all(
            "OS::Nova::Flavor" in [a["name"] for a in n["resource_type_associations"]]
            for n in http.get(f"{url}/namespaces?resource_types=OS::Nova::Flavor", headers=ADMIN_H).json()["namespaces"]
        )
        private = http.get(f"{url}/namespaces?visibility=private", headers=ADMIN_H).json()["namespaces"]
        assert not set(names) & {n["namespace"] for n in private}
    finally:
        for name in names:
            http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H)


def test_objects(url, http, namespace):
    objects = f"{url}/namespaces/{namespace}/objects"
    name = unique("object")
    resp = http.post(objects, json={"name": name}, headers=ADMIN_H)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == name
    assert resp.json()["self"] == f"/v2/metadefs/namespaces/{namespace}/objects/{name}"
    assert http.post(objects, json={"name": name}, headers=ADMIN_H).status_code == 409
    assert http.post(objects, json={"description": "no name"}, headers=ADMIN_H).status_code == 400

    listed = http.get(objects, headers=ADMIN_H).json()
    assert name in [o["name"] for o in listed["objects"]]
    assert listed["schema"] == "v2/schemas/metadefs/objects"  # COMPAT
    assert http.get(f"{objects}/{name}", headers=ADMIN_H).json()["name"] == name
    assert http.get(f"{objects}/{name}", headers=READER).status_code == 200  # public namespace

    new = unique("update-object")
    body = {"name": new, "required": ["cpu"], "properties": {"cpu": {"title": "CPU", "type": "integer"}}}
    resp = http.put(f"{objects}/{name}", json=body, headers=ADMIN_H)
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == new and resp.json()["properties"]["cpu"]["type"] == "integer"
    assert http.get(f"{objects}/{name}", headers=ADMIN_H).status_code == 404
    assert http.put(f"{objects}/{new}", json={"name": new}, headers=READER).status_code == 403

    # The namespace shows its objects.
    assert [o["name"] for o in http.get(f"{url}/namespaces/{namespace}", headers=ADMIN_H).json()["objects"]] == [new]
    assert http.delete(f"{objects}/{new}", headers=ADMIN_H).status_code == 204
    assert http.delete(f"{objects}/{new}", headers=ADMIN_H).status_code == 404
    assert new not in [o["name"] for o in http.get(objects, headers=ADMIN_H).json()["objects"]]
    assert http.get(f"{url}/namespaces/{unique('nope')}/objects", headers=ADMIN_H).status_code == 404


def test_properties(url, http, namespace):
    resource = "OS::Glance::Image"
    assoc = http.post(f"{url}/namespaces/{namespace}/resource_types", json={"name": resource}, headers=ADMIN_H)
    assert assoc.status_code == 201
    props = f"{url}/namespaces/{namespace}/properties"
    enum = ["xen", "qemu", "kvm", "lxc", "uml", "vmware", "hyperv"]
    title = unique("property")
    resp = http.post(props, json={"name": resource, "title": title, "type": "string", "enum": enum}, headers=ADMIN_H)
    assert resp.status_code == 201, resp.text
    assert resp.json()["title"] == title
    shown = http.get(f"{props}/{resource}", headers=ADMIN_H).json()
    assert shown == {"name": resource, "title": title, "type": "string", "enum": enum}
    assert http.post(props, json={"name": resource, "title": "t", "type": "string"}, headers=ADMIN_H).status_code == 409
    assert http.post(props, json={"name": "p", "title": "t"}, headers=ADMIN_H).status_code == 400  # no type
    assert http.post(props, json={"name": "p", "title": "t", "type": "text"}, headers=ADMIN_H).status_code == 400

    new_title = unique("update-property")
    resp = http.put(
        f"{props}/{resource}",
        json={"title": new_title, "type": "string", "enum": enum, "name": resource},
        headers=ADMIN_H,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["title"] == new_title
    assert http.get(props, headers=ADMIN_H).json()["properties"][resource]["title"] == new_title
    assert http.delete(f"{props}/{resource}", headers=READER).status_code == 403
    assert http.delete(f"{props}/{resource}", headers=ADMIN_H).status_code == 204
    assert http.get(props, headers=ADMIN_H).json() == {"properties": {}}
    assert http.get(f"{props}/{resource}", headers=ADMIN_H).status_code == 404


def test_property_names_prefixed_for_a_resource_type(url, http, namespace):
    body = {"name": "OS::Nova::Flavor", "prefix": "hw_"}
    assert http.post(f"{url}/namespaces/{namespace}/resource_types", json=body, headers=ADMIN_H).status_code == 201
    prop = {"name": "cpu_policy", "title": "CPU policy", "type": "string"}
    assert http.post(f"{url}/namespaces/{namespace}/properties", json=prop, headers=ADMIN_H).status_code == 201
    shown = http.get(f"{url}/namespaces/{namespace}?resource_type=OS::Nova::Flavor", headers=ADMIN_H).json()
    assert list(shown["properties"]) == ["hw_cpu_policy"]
    assert list(http.get(f"{url}/namespaces/{namespace}", headers=ADMIN_H).json()["properties"]) == ["cpu_policy"]


def test_tags(url, http, namespace):
    tags = f"{url}/namespaces/{namespace}/tags"
    body = {"tags": [{"name": "sample-tag1"}, {"name": "sample-tag2"}, {"name": "sample-tag3"}]}
    resp = http.post(tags, json=body, headers=ADMIN_H)
    assert resp.status_code == 201, resp.text
    assert [t["name"] for t in resp.json()["tags"]] == ["sample-tag1", "sample-tag2", "sample-tag3"]
    assert len(http.get(tags, headers=ADMIN_H).json()["tags"]) == 3

    tag = unique("tag_name")
    resp = http.post(f"{tags}/{tag}", headers=ADMIN_H)
    assert resp.status_code == 201 and resp.json()["name"] == tag
    assert http.post(f"{tags}/{tag}", headers=ADMIN_H).status_code == 409
    assert http.get(f"{tags}/{tag}", headers=ADMIN_H).json()["name"] == tag
    new = unique("update-tag")
    resp = http.put(f"{tags}/{tag}", json={"name": new}, headers=ADMIN_H)
    assert resp.status_code == 200 and resp.json()["name"] == new
    assert http.put(f"{tags}/{new}", json={"name": "sample-tag1"}, headers=ADMIN_H).status_code == 409
    assert http.put(f"{tags}/{new}", json={}, headers=ADMIN_H).status_code == 400
    assert http.delete(f"{tags}/{new}", headers=READER).status_code == 403
    assert http.delete(f"{tags}/{new}", headers=ADMIN_H).status_code == 204
    assert http.get(f"{tags}/{new}", headers=ADMIN_H).status_code == 404

    # Without X-Openstack-Append the new list replaces the old; with it, it adds.
    resp = http.post(tags, json={"tags": [{"name": "only"}]}, headers=ADMIN_H)
    assert [t["name"] for t in http.get(tags, headers=ADMIN_H).json()["tags"]] == ["only"]
    resp = http.post(tags, json={"tags": [{"name": "more"}]}, headers={**ADMIN_H, "X-Openstack-Append": "True"})
    assert resp.status_code == 201
    assert [t["name"] for t in http.get(tags, headers=ADMIN_H).json()["tags"]] == ["only", "more"]
    assert http.post(tags, json={"tags": [{"name": "a"}, {"name": "a"}]}, headers=ADMIN_H).status_code == 409
    assert http.post(tags, json={"tags": "a"}, headers=ADMIN_H).status_code == 400

    assert http.delete(tags, headers=ADMIN_H).status_code == 204
    assert http.get(tags, headers=ADMIN_H).json()["tags"] == []


def test_resource_type_associations(url, http, namespace):
    resource = http.get(f"{url}/resource_types", headers=ADMIN_H).json()["resource_types"][0]["name"]
    assocs = f"{url}/namespaces/{namespace}/resource_types"
    resp = http.post(assocs, json={"name": resource}, headers=ADMIN_H)
    assert resp.status_code == 201 and resp.json()["name"] == resource
    assert http.post(assocs, json={"name": resource}, headers=ADMIN_H).status_code == 409
    assert http.post(assocs, json={"prefix": "x_"}, headers=ADMIN_H).status_code == 400
    assert resource in [a["name"] for a in http.get(assocs, headers=ADMIN_H).json()["resource_type_associations"]]
    assert http.delete(f"{assocs}/{resource}", headers=READER).status_code == 403
    assert http.delete(f"{assocs}/{resource}", headers=ADMIN_H).status_code == 204
    assert http.delete(f"{assocs}/{resource}", headers=ADMIN_H).status_code == 404
    assert http.get(assocs, headers=ADMIN_H).json()["resource_type_associations"] == []
    # An unknown resource type is created on first association, as Glance does.
    custom = unique("Vendor::Thing")
    assert http.post(assocs, json={"name": custom}, headers=ADMIN_H).status_code == 201
    assert custom in [t["name"] for t in http.get(f"{url}/resource_types", headers=ADMIN_H).json()["resource_types"]]


def test_deleting_a_namespace_deletes_its_content(url, http):
    name = unique("full")
    body = {
        "namespace": name,
        "resource_type_associations": [{"name": "OS::Cinder::Volume", "prefix": "vol_"}],
        "objects": [{"name": "obj", "properties": {"a": {"title": "A", "type": "string"}}}],
        "properties": {"p": {"title": "P", "type": "boolean"}},
        "tags": [{"name": "t1"}],
    }
    resp = http.post(f"{url}/namespaces", json=body, headers=ADMIN_H)
    assert resp.status_code == 201, resp.text
    shown = http.get(f"{url}/namespaces/{name}", headers=ADMIN_H).json()
    assert shown["visibility"] == "private" and shown["protected"] is False
    assert [o["name"] for o in shown["objects"]] == ["obj"]
    assert shown["properties"] == {"p": {"title": "P", "type": "boolean"}}
    assert shown["tags"] == [{"name": "t1"}]
    assert http.get(f"{url}/namespaces/{name}", headers=OTHER).status_code == 404  # private
    assert http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H).status_code == 204
    # The same name again starts empty.
    assert http.post(f"{url}/namespaces", json={"namespace": name}, headers=ADMIN_H).status_code == 201
    shown = http.get(f"{url}/namespaces/{name}", headers=ADMIN_H).json()
    assert not {"objects", "properties", "tags", "resource_type_associations"} & set(shown)
    assert http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H).status_code == 204


def test_protected_namespace_keeps_its_content(url, http):
    name = unique("protected")
    body = {"namespace": name, "protected": True, "tags": [{"name": "t"}], "objects": [{"name": "o"}]}
    assert http.post(f"{url}/namespaces", json=body, headers=ADMIN_H).status_code == 201
    try:
        assert http.delete(f"{url}/namespaces/{name}/tags", headers=ADMIN_H).status_code == 403
        assert http.delete(f"{url}/namespaces/{name}/objects", headers=ADMIN_H).status_code == 403
        assert len(http.get(f"{url}/namespaces/{name}/tags", headers=ADMIN_H).json()["tags"]) == 1
    finally:
        http.put(f"{url}/namespaces/{name}", json={"namespace": name, "protected": False}, headers=ADMIN_H)
        assert http.delete(f"{url}/namespaces/{name}", headers=ADMIN_H).status_code == 204


def test_responses_match_the_served_schemas(service, url, http, namespace):
    """What we serve validates against the schemas we publish (as python-glanceclient assumes)."""

    def check(schema_path, document):
        schema = http.get(f"{service.url}/v2/schemas/metadefs/{schema_path}").json()
        jsonschema.Draft4Validator(schema).validate(document)

    ns_url = f"{url}/namespaces/{namespace}"
    assoc = http.post(f"{ns_url}/resource_types", json={"name": "OS::Glance::Image", "prefix": "hw_"}, headers=ADMIN_H)
    check("resource_type", assoc.json())
    obj = http.post(
        f"{ns_url}/objects", json={"name": "o", "properties": {"a": {"title": "A", "type": "string"}}}, headers=ADMIN_H
    )
    check("object", obj.json())
    prop = http.post(
        f"{ns_url}/properties", json={"name": "p", "title": "P", "type": "integer", "minimum": 1}, headers=ADMIN_H
    )
    check("property", prop.json())
    check("tag", http.post(f"{ns_url}/tags/t", headers=ADMIN_H).json())
    check("namespace", http.get(ns_url, headers=ADMIN_H).json())
    check("namespaces", http.get(f"{url}/namespaces?limit=1", headers=ADMIN_H).json())
    check("objects", http.get(f"{ns_url}/objects", headers=ADMIN_H).json())
    check("properties", http.get(f"{ns_url}/properties", headers=ADMIN_H).json())
    check("tags", http.get(f"{ns_url}/tags", headers=ADMIN_H).json())
    check("resource_types", http.get(f"{ns_url}/resource_types", headers=ADMIN_H).json())


def test_long_names_and_nul_are_400(url, http, namespace):
    long = "x" * 81
    ns_url = f"{url}/namespaces/{namespace}"
    assert http.post(f"{url}/namespaces", json={"namespace": long}, headers=ADMIN_H).status_code == 400
    for body in (
        {"namespace": unique("n"), "tags": [{"name": long}]},
        {"namespace": unique("n"), "objects": [{"name": long}]},
        {"namespace": unique("n"), "resource_type_associations": [{"name": long}]},
        {"namespace": unique("n"), "properties": {long: {"title": "t", "type": "string"}}},
    ):
        resp = http.post(f"{url}/namespaces", json=body, headers=ADMIN_H)
        assert resp.status_code == 400, (body, resp.text)
        assert http.get(f"{url}/namespaces/{body['namespace']}", headers=ADMIN_H).status_code == 404
    assert http.post(f"{ns_url}/tags/{long}", headers=ADMIN_H).status_code == 400
    assert http.post(f"{ns_url}/objects", json={"name": long}, headers=ADMIN_H).status_code == 400
    assert http.post(f"{ns_url}/resource_types", json={"name": long}, headers=ADMIN_H).status_code == 400
    assert http.get(f"{url}/namespaces/bad%00name", headers=ADMIN_H).status_code == 400
    assert http.get(f"{ns_url}/tags/bad%00tag", headers=ADMIN_H).status_code == 400
    assert http.get(f"{url}/namespaces?marker=bad%00marker", headers=ADMIN_H).status_code == 400
    assert http.get(f"{ns_url}/tags/{long}", headers=ADMIN_H).status_code == 404


@pytest.fixture(scope="module")
def member_writes(request, tmp_path_factory):
    """A service whose operator lets project members write metadefs (policy file), as some clouds do."""
    from tests.support.inprocess import serve

    root = tmp_path_factory.mktemp("metadef-policy")
    rules = "\n".join(
        f'"{rule}": "role:member"'
        for rule in ("add_metadef_namespace", "modify_metadef_namespace", "delete_metadef_namespace", "add_metadef_tag")
    )
    (root / "policy.yaml").write_text(rules + "\n")
    yield from serve(
        request, tmp_path_factory, "metadef-members", {"oslo_policy": {"policy_file": str(root / "policy.yaml")}}
    )


def test_members_allowed_by_policy_change_only_their_own_namespaces(member_writes, http):
    url = f"{member_writes.url}/v2/metadefs/namespaces"
    mine = unique("mine")
    resp = http.post(url, json={"namespace": mine, "visibility": "public"}, headers=READER)
    assert resp.status_code == 201, resp.text
    assert resp.json()["owner"] == "project-r"
    # Not on behalf of another project.
    resp = http.post(url, json={"namespace": unique("theirs"), "owner": "project-o"}, headers=READER)
    assert resp.status_code == 403
    # Another project's member reads the public namespace but cannot change or delete it.
    assert http.get(f"{url}/{mine}", headers=OTHER).status_code == 200
    assert http.put(f"{url}/{mine}", json={"namespace": mine}, headers=OTHER).status_code == 403
    assert http.post(f"{url}/{mine}/tags/x", headers=OTHER).status_code == 403
    assert http.delete(f"{url}/{mine}", headers=OTHER).status_code == 403
    # The owner can; objects stay admin-only (their rules were not changed).
    assert http.post(f"{url}/{mine}/tags/x", headers=READER).status_code == 201
    assert http.post(f"{url}/{mine}/objects", json={"name": "o"}, headers=READER).status_code == 403
    resp = http.put(f"{url}/{mine}", json={"namespace": mine, "visibility": "private"}, headers=READER)
    assert resp.status_code == 200 and resp.json()["owner"] == "project-r"
    assert http.get(f"{url}/{mine}", headers=OTHER).status_code == 404
    assert http.delete(f"{url}/{mine}", headers=READER).status_code == 204
