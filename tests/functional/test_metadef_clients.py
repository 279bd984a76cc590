"""Real, unchanged clients on /v2/metadefs: python-glanceclient (its models validate our answers
against the schemas we serve) and openstacksdk."""

from __future__ import annotations

import uuid

import pytest


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_glanceclient_metadefs(service):
    from glanceclient import Client, exc

    client = Client("2", endpoint=service.url, token="x")
    types = [t.name for t in client.metadefs_resource_type.list()]
    assert "OS::Glance::Image" in types
    name = unique("gc-ns")
    ns = client.metadefs_namespace.create(namespace=name, visibility="public", description="d", protected=False)
    assert ns.namespace == name and ns.visibility == "public"
    assert name in [n.namespace for n in client.metadefs_namespace.list(page_size=2)]

    client.metadefs_resource_type.associate(name, name="OS::Glance::Image", prefix="hw_")
    assert [a.name for a in client.metadefs_resource_type.get(name)] == ["OS::Glance::Image"]
    prop = client.metadefs_property.create(name, name="cpu", title="CPU", type="integer", minimum=1)
    assert prop.title == "CPU"
    assert client.metadefs_property.update(name, "cpu", title="vCPU").title == "vCPU"
    assert [(p.name, p.title) for p in client.metadefs_property.list(name)] == [("cpu", "vCPU")]
    obj = client.metadefs_object.create(name, name="obj", properties={"a": {"title": "A", "type": "string"}})
    assert obj.name == "obj"
    assert client.metadefs_object.update(name, "obj", description="new").description == "new"
    tags = [t.name for t in client.metadefs_tag.create_multiple(name, tags=["t1", "t2"])]
    assert tags == ["t1", "t2"]
    client.metadefs_tag.create(name, "t3")
    assert client.metadefs_tag.update(name, "t3", name="t4").name == "t4"
    assert sorted(t.name for t in client.metadefs_tag.list(name)) == ["t1", "t2", "t4"]

    # A full namespace (with its properties, objects, tags) goes back through PUT unchanged.
    updated = client.metadefs_namespace.update(name, description="changed", protected=True)
    assert updated.description == "changed" and updated.protected is True
    shown = client.metadefs_namespace.get(name, resource_type="OS::Glance::Image")
    assert "hw_cpu" in shown.properties and [o["name"] for o in shown.objects] == ["obj"]
    with pytest.raises(exc.HTTPForbidden):
        client.metadefs_namespace.delete(name)
    client.metadefs_namespace.update(name, protected=False)
    client.metadefs_tag.delete_all(name)
    client.metadefs_object.delete(name, "obj")
    client.metadefs_property.delete(name, "cpu")
    client.metadefs_resource_type.deassociate(name, "OS::Glance::Image")
    client.metadefs_namespace.delete(name)
    with pytest.raises(exc.HTTPNotFound):
        client.metadefs_namespace.get(name)


def test_openstacksdk_metadefs(service):
    import openstack
    from keystoneauth1 import noauth, session

    conn = openstack.connection.Connection(
        session=session.Session(auth=noauth.NoAuth()), image_endpoint_override=service.url
    )
    name = unique("sdk-ns")
    ns = conn.image.create_metadef_namespace(namespace=name, visibility="public", display_name="SDK")
    assert ns.namespace == name
    assert name in [n.namespace for n in conn.image.metadef_namespaces()]
    assert conn.image.get_metadef_namespace(name).display_name == "SDK"
    conn.image.update_metadef_namespace(name, display_name="SDK2")
    assert conn.image.get_metadef_namespace(name).display_name == "SDK2"
    assert "OS::Nova::Flavor" in [t.name for t in conn.image.metadef_resource_types()]
    conn.image.create_metadef_object(name, name="sdk-obj", properties={"x": {"title": "X", "type": "string"}})
    assert [o.name for o in conn.image.metadef_objects(name)] == ["sdk-obj"]
    conn.image.delete_metadef_object("sdk-obj", name)
    conn.image.delete_metadef_namespace(name)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_metadef_namespace(name)
