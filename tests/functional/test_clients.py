"""Real, unchanged clients against the real service: python-glanceclient (library and CLI) and openstacksdk."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

GLANCE_CLI = Path(sys.executable).parent / "glance"


def glance_client(service):
    from glanceclient import Client

    return Client("2", endpoint=service.url, token="x")


def cli(service, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GLANCE_CLI), "--os-image-url", service.url, "--os-auth-token", "x", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_glanceclient_library_round_trip(service):
    client = glance_client(service)
    image = client.images.create(name="gc", disk_format="raw", container_format="bare", foo="bar")
    assert image.status == "queued" and image.foo == "bar"
    client.images.upload(image.id, io.BytesIO(b"glanceclient data"))
    assert b"".join(client.images.data(image.id)) == b"glanceclient data"
    client.images.update(image.id, name="gc2", remove_props=["foo"], extra="1")
    got = client.images.get(image.id)
    assert got.name == "gc2" and got.extra == "1" and "foo" not in got and got.status == "active"
    assert image.id in [i.id for i in client.images.list()]
    client.image_tags.update(image.id, "t1")
    assert client.images.get(image.id).tags == ["t1"]
    client.image_tags.delete(image.id, "t1")
    client.image_members.create(image.id, "proj")
    assert [m.member_id for m in client.image_members.list(image.id)] == ["proj"]
    client.image_members.delete(image.id, "proj")
    client.images.deactivate(image.id)
    assert client.images.get(image.id).status == "deactivated"
    client.images.reactivate(image.id)
    client.images.delete(image.id)
    from glanceclient import exc

    with pytest.raises(exc.HTTPNotFound):
        client.images.get(image.id)


def test_glance_cli(service, tmp_path):
    data = tmp_path / "disk.raw"
    data.write_bytes(b"cli bytes")
    made = cli(
        service,
        "image-create",
        "--name",
        "from-cli",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--property",
        "color=blue",
        "--file",
        str(data),
    )
    assert made.returncode == 0, made.stderr
    assert "from-cli" in made.stdout and "active" in made.stdout and "blue" in made.stdout
    image_id = next(line.split("|")[2].strip() for line in made.stdout.splitlines() if line.startswith("| id "))
    listed = cli(service, "image-list")
    assert listed.returncode == 0 and image_id in listed.stdout
    shown = cli(service, "image-show", image_id)
    assert shown.returncode == 0 and "from-cli" in shown.stdout
    assert cli(service, "image-update", "--name", "renamed", image_id).returncode == 0
    assert "renamed" in cli(service, "image-show", image_id).stdout
    assert cli(service, "image-tag-update", image_id, "cli-tag").returncode == 0
    assert cli(service, "image-delete", image_id).returncode == 0
    assert cli(service, "image-show", image_id).returncode != 0


def test_openstacksdk_image_proxy(service):
    import openstack
    from keystoneauth1 import noauth, session

    conn = openstack.connection.Connection(
        session=session.Session(auth=noauth.NoAuth()), image_endpoint_override=service.url
    )
    image = conn.image.create_image(
        name="sdk", disk_format="raw", container_format="bare", data=b"sdk bytes", allow_duplicates=True
    )
    got = conn.image.get_image(image.id)
    assert got.status == "active" and got.size == len(b"sdk bytes")
    assert image.id in [i.id for i in conn.image.images()]
    conn.image.update_image(image, name="sdk2")
    assert conn.image.get_image(image.id).name == "sdk2"
    conn.image.add_tag(image, "sdk-tag")
    assert "sdk-tag" in conn.image.get_image(image.id).tags
    conn.image.deactivate_image(image)
    assert conn.image.get_image(image.id).status == "deactivated"
    conn.image.reactivate_image(image)
    conn.image.delete_image(image)
    assert conn.image.find_image(image.id) is None
