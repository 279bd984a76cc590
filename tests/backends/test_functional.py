"""A real glancelite-api with `fast:file, cheap:s3, archive:swift, ceph:rbd`: upload, copy-image between
every driver type, glance-direct into object stores, delete everywhere, live capabilities of a store
whose server goes away."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
import uuid

import pytest

from tests.backends import servers
from tests.backends.factories import rbd_options, s3_options, swift_options
from tests.support.imports import (
    OCTET,
    create_image,
    get_image,
    location_stores,
    stage,
    start_import,
    wait_task,
)
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

pytestmark = pytest.mark.backend
MiB = 1024 * 1024
pytest.importorskip("rbd", reason="Debian's python3-rbd is not importable (tools/backends/install-backends.sh)")


def _section(options: dict, **extra) -> dict[str, str]:
    return {k: str(v) for k, v in {**options, **extra}.items()}


@pytest.fixture(scope="module")
def backends():
    return {"s3": servers.require("s3"), "swift": servers.require("swift"), "ceph": servers.require("ceph")}


@pytest.fixture(scope="module")
def service(tmp_path_factory, backends):
    root = tmp_path_factory.mktemp("backends")
    tag = uuid.uuid4().hex[:8]
    s3 = _section(s3_options("moto"), s3_store_bucket=f"glct-cheap-{tag}", weight=50, store_description="S3 bucket")
    swift = _section(swift_options("aio"), swift_store_container=f"glct-archive-{tag}", weight=20)
    ceph = _section(rbd_options(1), weight=80, store_description="Ceph pool")
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, cheap:s3, archive:swift, ceph:rbd"},
            "cheap": s3,
            "archive": swift,
            "ceph": ceph,
            "glance_store": {"default_backend": "fast", "store_capability_refresh_interval": "0"},
        },
    )
    server = Server(config).start(deadline=60)
    server.sections = {"cheap": s3, "archive": swift, "ceph": ceph}
    yield server
    server.stop()


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


def detail(service, http) -> dict[str, dict]:
    resp = http.get(f"{service.url}/v2/info/stores/detail")
    assert resp.status_code == 200, resp.text
    return {s["id"]: s for s in resp.json()["stores"]}


def in_backends(service, image_id: str) -> dict[str, bool]:
    """Whether each object store holds the image, asked of the servers directly."""
    import boto3
    import rados
    import rbd
    import swiftclient.client as sc

    s3, swift, ceph = (service.sections[k] for k in ("cheap", "archive", "ceph"))
    client = boto3.client(
        "s3",
        endpoint_url=s3["s3_store_host"],
        aws_access_key_id=s3["s3_store_access_key"],
        aws_secret_access_key=s3["s3_store_secret_key"],
        region_name="us-east-1",
    )
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3["s3_store_bucket"]).get("Contents", [])]
    url, token = sc.get_auth(swift["swift_store_auth_address"], swift["swift_store_user"], swift["swift_store_key"])
    names = [o["name"] for o in sc.get_container(url, token, swift["swift_store_container"])[1]]
    cluster = rados.Rados(conffile=ceph["rbd_store_ceph_conf"], rados_id=ceph["rbd_store_user"])
    cluster.connect(timeout=30)
    try:
        with cluster.open_ioctx(ceph["rbd_store_pool"]) as ioctx:
            images = rbd.RBD().list(ioctx)
    finally:
        cluster.shutdown()
    return {"cheap": image_id in keys, "archive": image_id in names, "ceph": image_id in images}


def test_stores_detail_lists_the_object_stores_without_secrets(service, http):
    stores = detail(service, http)
    assert {s: stores[s]["type"] for s in ("cheap", "archive", "ceph")} == {
        "cheap": "s3",
        "archive": "swift",
        "ceph": "rbd",
    }
    for store in ("cheap", "archive", "ceph"):
        assert {"READ_ACCESS", "WRITE_ACCESS"} <= set(stores[store]["capabilities"]), stores[store]
    text = json.dumps(stores)
    for secret in (service.sections["cheap"]["s3_store_secret_key"], service.sections["archive"]["swift_store_key"]):
        assert f'"{secret}"' not in text


def test_upload_to_s3_then_copy_image_to_swift_and_rbd(service, http):
    data = raw_bytes(12 * MiB + 5)  # multipart on S3, segmented on Swift
    image_id = create_image(service, http, name="tiered")
    resp = http.put(
        f"{service.url}/v2/images/{image_id}/file",
        data=io.BytesIO(data),
        headers={**OCTET, "X-Image-Meta-Store": "cheap"},
    )
    assert resp.status_code == 204, resp.text
    image = get_image(service, http, image_id)
    assert image["status"] == "active" and location_stores(image) == ["cheap"]
    assert image["checksum"] == hashlib.md5(data).hexdigest()

    resp = start_import(service, http, image_id, {"name": "copy-image"}, stores=["archive", "ceph"])
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, image_id, timeout=120)
    assert task["status"] == "success", task
    image = get_image(service, http, image_id)
    assert location_stores(image) == ["archive", "ceph", "cheap"]
    assert in_backends(service, image_id) == {"cheap": True, "archive": True, "ceph": True}

    resp = http.get(f"{service.url}/v2/images/{image_id}/file")
    assert resp.status_code == 200 and resp.content == data
    resp = http.get(f"{service.url}/v2/images/{image_id}/file", headers={"Range": "bytes=1048570-1048580"})
    assert resp.status_code == 206 and resp.content == data[1048570:1048581]

    resp = http.delete(f"{service.url}/v2/images/{image_id}")
    assert resp.status_code == 204, resp.text
    assert in_backends(service, image_id) == {"cheap": False, "archive": False, "ceph": False}


def test_glance_direct_into_swift_and_rbd(service, http):
    data = raw_bytes(3 * MiB)
    image_id = create_image(service, http, name="direct")
    assert stage(service, http, image_id, data).status_code == 204
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, stores=["ceph", "archive"])
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id, timeout=120)["status"] == "success"
    image = get_image(service, http, image_id)
    assert image["status"] == "active" and location_stores(image) == ["archive", "ceph"]
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    # Copy back out of rbd into S3: every direction works.
    resp = start_import(service, http, image_id, {"name": "copy-image"}, stores=["cheap"])
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id, timeout=120, count=2)["status"] == "success"
    assert in_backends(service, image_id) == {"cheap": True, "archive": True, "ceph": True}


def test_s3_server_going_away_drops_and_restores_access(service, http, backends):
    pid = int(servers.ensure("s3")["S3_PID"])
    os.kill(pid, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 30
        while "READ_ACCESS" in detail(service, http)["cheap"]["capabilities"]:
            assert time.monotonic() < deadline, "cheap kept READ_ACCESS with its server gone"
            time.sleep(0.5)
        cheap = detail(service, http)["cheap"]
        assert "WRITE_ACCESS" not in cheap["capabilities"] and cheap.get("capabilities_reason")
        image_id = create_image(service, http, name="nowhere")
        resp = http.put(
            f"{service.url}/v2/images/{image_id}/file", data=b"x" * 10, headers={**OCTET, "X-Image-Meta-Store": "cheap"}
        )
        assert resp.status_code == 503, resp.text
        assert get_image(service, http, image_id)["status"] == "queued"
    finally:
        servers.restart("s3")
    # Probes are cached for the StoreSet's refresh interval: access returns within it.
    deadline = time.monotonic() + 30
    while not {"READ_ACCESS", "WRITE_ACCESS"} <= set((stores := detail(service, http))["cheap"]["capabilities"]):
        assert time.monotonic() < deadline, stores["cheap"]
        time.sleep(0.5)
    # The other stores were never affected.
    assert {"READ_ACCESS", "WRITE_ACCESS"} <= set(stores["ceph"]["capabilities"])
