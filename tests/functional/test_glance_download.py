"""glance-download against real glancelite-api servers (trusted-headers flavor).

``service`` (RegionOne) imports from itself, as tempest does (same region),
and from ``region_two``, a second real server. The caller's catalog is a
keystone v3 token catalog turned into the X-Service-Catalog header exactly
as keystonemiddleware does it (its own conversion to the v2 shape); the
remote calls carry the caller's X-Auth-Token. Both servers' ports are
allowed by [import_filtering_opts], as the download goes through it.

region_two does not enforce image formats, so it can hold a "qcow2" image
whose data is not qcow2: importing that one fails after the remote metadata
was copied, which shows the copy is undone.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from keystonemiddleware.auth_token import _request as ksm_request

from tests.conftest import identity
from tests.support.imports import (
    MIB,
    OCTET,
    create_image,
    digests,
    get_image,
    image_tasks,
    payload,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, free_port, write_config

TOKEN = "gAAAA-test-token-" + uuid.uuid4().hex
ALICE = identity("project-alice", "reader,member", "alice")
SIZE_CAP = 8 * MIB


@pytest.fixture(scope="module")
def region_two(tmp_path_factory):
    root = tmp_path_factory.mktemp("region-two")
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_import_methods": "glance-direct"},
            "image_format": {"require_image_format_match": "false"},
        },
    )
    server = Server(config).start()
    server.root = root
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory, region_two):
    root = tmp_path_factory.mktemp("glance-download")
    port = free_port()
    config = write_config(
        root,
        {
            "DEFAULT": {
                "bind_port": str(port),
                "enabled_import_methods": "glance-direct, web-download, glance-download",
                "image_size_cap": str(SIZE_CAP),
            },
            "import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": f"{port},{region_two.port}"},
        },
    )
    server = Server(config).start()
    server.root = root
    yield server
    server.stop()


def v3_catalog(service, region_two, dead_port) -> list[dict]:
    """A keystone v3 token's catalog: this region's image service, region two's, and an identity service."""

    def endpoint(interface, region, url):
        return {"id": uuid.uuid4().hex, "interface": interface, "region": region, "region_id": region, "url": url}

    return [
        {
            "id": uuid.uuid4().hex,
            "type": "image",
            "name": "glance",
            "endpoints": [
                endpoint("public", "RegionOne", service.url),
                endpoint("internal", "RegionOne", service.url),
                # Region two: only the internal interface reaches the server.
                endpoint("public", "RegionTwo", f"http://127.0.0.1:{dead_port}"),
                endpoint("internal", "RegionTwo", region_two.url + "/"),
            ],
        },
        {
            "id": uuid.uuid4().hex,
            "type": "identity",
            "name": "keystone",
            "endpoints": [endpoint("public", "RegionOne", "http://127.0.0.1:5000/v3")],
        },
    ]


@pytest.fixture(scope="module")
def caller(service, region_two) -> dict:
    """ALICE's headers with her token and the X-Service-Catalog keystonemiddleware would set."""
    catalog = ksm_request._normalize_catalog(v3_catalog(service, region_two, free_port()))
    return {**ALICE, "X-Auth-Token": TOKEN, "X-Service-Catalog": json.dumps(catalog)}


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


def patch(server, http, image_id, ops, headers):
    resp = http.patch(
        f"{server.url}/v2/images/{image_id}",
        data=json.dumps(ops),
        headers={**headers, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def active_image(server, http, data, headers, **fields) -> str:
    image_id = create_image(server, http, headers, **fields)
    resp = http.put(f"{server.url}/v2/images/{image_id}/file", data=data, headers={**OCTET, **headers})
    assert resp.status_code == 204, resp.text
    assert get_image(server, http, image_id, headers)["status"] == "active"
    return image_id


SOURCE_PROPS = [
    {"op": "add", "path": "/hw_cpu_cores", "value": "5"},
    {"op": "add", "path": "/trait:STORAGE_DISK_SSD", "value": "required"},
    {"op": "add", "path": "/os_distro", "value": "rhel"},
    {"op": "add", "path": "/speed", "value": "88mph"},
]
TARGET_PROPS = [
    {"op": "add", "path": "/hw_cpu_cores", "value": "1"},
    {"op": "add", "path": "/os_distro", "value": "windows"},
    {"op": "add", "path": "/colour", "value": "blue"},
]


def target_image(service, http, headers) -> str:
    """A queued iso/ovf image with properties of its own, as tempest makes it."""
    image_id = create_image(service, http, headers, disk_format="iso", container_format="ovf")
    patch(service, http, image_id, TARGET_PROPS, headers)
    return image_id


def glance_download(remote_id, region="RegionOne", interface=None) -> dict:
    method = {"name": "glance-download", "glance_image_id": remote_id, "glance_region": region}
    if interface is not None:
        method["glance_service_interface"] = interface
    return method


def nothing_left(service, image_id):
    """No data of the image in a store or staging, no download left in the tasks store."""
    for store in ("fast", "slow", "staging"):
        assert store_files(service.root, store, image_id) == [], store
    assert [n for n in os.listdir(service.root / "tasks") if not n.endswith(".owner")] == []


def assert_untouched(image: dict):
    """The target as target_image left it: queued, its formats and properties."""
    assert image["status"] == "queued"
    assert (image["disk_format"], image["container_format"]) == ("iso", "ovf")
    assert (image["hw_cpu_cores"], image["os_distro"], image["colour"]) == ("1", "windows", "blue")
    for copied in ("trait:STORAGE_DISK_SSD", "speed"):
        assert copied not in image
    assert image["size"] is None and image["checksum"] is None
    assert "os_glance_import_task" not in image


# ------------------------------------------------------------------ success


def test_info_import_lists_glance_download(service, region_two, http):
    assert http.get(service.url + "/v2/info/import").json()["import-methods"]["value"] == [
        "glance-direct",
        "web-download",
        "glance-download",
    ]
    assert "glance-download" not in http.get(region_two.url + "/v2/info/import").json()["import-methods"]["value"]


def test_import_from_itself(service, http, caller):
    data = payload(3 * MIB + 11, seed=21)
    src = active_image(service, http, data, ALICE)
    patch(service, http, src, SOURCE_PROPS, ALICE)
    dst = target_image(service, http, ALICE)

    resp = start_import(service, http, dst, glance_download(src), caller)
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, dst)
    assert task["status"] == "success", task
    # Glance writes the defaulted interface into the request; the token is nowhere in the task.
    assert task["input"]["import_req"]["method"] == {**glance_download(src), "glance_service_interface": "public"}
    assert TOKEN not in json.dumps(image_tasks(service, http, dst))

    image = get_image(service, http, dst, ALICE)
    md5, sha = digests(data)
    assert image["status"] == "active"
    assert (image["size"], image["checksum"], image["os_hash_value"]) == (len(data), md5, sha)
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert (image["hw_cpu_cores"], image["trait:STORAGE_DISK_SSD"], image["os_distro"]) == ("5", "required", "rhel")
    assert "speed" not in image
    assert image["colour"] == "blue"  # its own property, not the remote's, stays
    assert http.get(f"{service.url}/v2/images/{dst}/file", headers=ALICE).content == data
    assert store_files(service.root, "staging") == []
    assert [n for n in os.listdir(service.root / "tasks") if not n.endswith(".owner")] == []


def test_import_from_another_region_by_internal_interface(service, region_two, http, caller):
    data = payload(2 * MIB + 5, seed=22)
    src = active_image(region_two, http, data, ALICE)
    patch(region_two, http, src, [{"op": "add", "path": "/os_type", "value": "linux"}], ALICE)
    dst = target_image(service, http, ALICE)

    # Regions compare without case; RegionTwo's public endpoint leads nowhere, its internal one works.
    resp = start_import(service, http, dst, glance_download(src, "regiontwo", "internal"), caller, stores=["slow"])
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, dst)
    assert task["status"] == "success", task
    image = get_image(service, http, dst, ALICE)
    assert image["status"] == "active" and image["stores"] == "slow"
    assert image["checksum"] == digests(data)[0]
    assert image["os_type"] == "linux" and (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert http.get(f"{service.url}/v2/images/{dst}/file", headers=ALICE).content == data
    assert store_files(service.root, "staging") == []


# ------------------------------------------------------------------ refused up front


def test_request_refusals(service, region_two, http, caller):
    dst = target_image(service, http, ALICE)
    cases = [
        (glance_download("foo"), 400, "image id does not look like a UUID"),
        ({"name": "glance-download", "glance_region": "RegionOne"}, 400, "'glance_image_id' needs to be set"),
        ({"name": "glance-download", "glance_image_id": str(uuid.uuid4())}, 400, "'glance_region' needs to be set"),
    ]
    for method, status, message in cases:
        resp = start_import(service, http, dst, method, caller)
        assert resp.status_code == status, (method, resp.text)
        assert message in resp.json()["message"], resp.text
    assert image_tasks(service, http, dst) == []
    assert_untouched(get_image(service, http, dst, ALICE))

    # Not queued: 409 like web-download.
    active = active_image(service, http, b"x" * 100, ALICE)
    resp = start_import(service, http, active, glance_download(str(uuid.uuid4())), caller)
    assert resp.status_code == 409 and "status active cannot be target for import" in resp.text
    staged = create_image(service, http, ALICE)
    assert stage(service, http, staged, b"y" * 100, ALICE).status_code == 204
    resp = start_import(service, http, staged, glance_download(str(uuid.uuid4())), caller)
    assert resp.status_code == 409 and "needs to be in 'queued' state to use 'glance-download'" in resp.text
    assert store_files(service.root, "staging") == [staged]
    assert http.delete(f"{service.url}/v2/images/{staged}", headers=ALICE).status_code == 204

    # Not enabled on region two.
    other = create_image(region_two, http, ALICE)
    resp = start_import(region_two, http, other, glance_download(str(uuid.uuid4())), caller)
    assert resp.status_code == 400 and "Unknown import method name 'glance-download'" in resp.text


# ------------------------------------------------------------------ task failures


def failed_import(service, http, caller, method) -> tuple[dict, dict]:
    dst = target_image(service, http, ALICE)
    resp = start_import(service, http, dst, method, caller)
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, dst)
    assert task["status"] == "failure", task
    image = get_image(service, http, dst, ALICE)
    nothing_left(service, dst)
    return task, image


@pytest.mark.parametrize(
    "region, interface",
    [("not a region", "not an interface"), ("not a region", "public"), ("RegionOne", "admin")],
)
def test_unknown_region_or_interface_fails_the_task(service, http, caller, region, interface):
    task, image = failed_import(service, http, caller, glance_download(str(uuid.uuid4()), region, interface))
    assert f"{interface} glance endpoint not found for region {region}" in task["message"]
    assert_untouched(image)


def test_without_catalog_the_task_fails(service, http, caller):
    headers = {k: v for k, v in caller.items() if k != "X-Service-Catalog"}
    task, image = failed_import(service, http, headers, glance_download(str(uuid.uuid4())))
    assert "endpoint not found" in task["message"]
    assert_untouched(image)


def test_missing_remote_image_fails_the_task(service, http, caller):
    task, image = failed_import(service, http, caller, glance_download(str(uuid.uuid4())))
    assert "404" in task["message"]
    assert_untouched(image)


def test_the_remote_reads_as_the_caller(service, http, caller):
    """Trusted-headers flavor: the caller's identity goes along with the token, so another project
    cannot pull a private image through this server (which would otherwise read it as admin)."""
    private = active_image(service, http, b"private bytes", ALICE)
    bob = {**caller, **identity("project-bob", "reader,member", "bob")}
    dst = target_image(service, http, bob)
    resp = start_import(service, http, dst, glance_download(private), bob)
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, dst)
    assert task["status"] == "failure" and "404" in task["message"], task
    image = get_image(service, http, dst, bob)
    assert_untouched(image)
    nothing_left(service, dst)


def test_remote_image_not_active_fails_the_task(service, region_two, http, caller):
    queued = create_image(region_two, http, ALICE)
    task, image = failed_import(service, http, caller, glance_download(queued, "RegionTwo", "internal"))
    assert "Source image status should be active instead of queued" in task["message"]
    assert_untouched(image)


def test_remote_larger_than_the_cap_fails_the_task(service, region_two, http, caller):
    big = active_image(region_two, http, payload(SIZE_CAP + 1, seed=23), ALICE)
    task, image = failed_import(service, http, caller, glance_download(big, "RegionTwo", "internal"))
    assert "image size cap" in task["message"]
    assert_untouched(image)


def test_failure_after_the_metadata_copy_restores_it(service, region_two, http, caller):
    # region_two holds random bytes as "qcow2" with properties; this server's format check
    # refuses them after the formats and properties were copied: the copy is undone.
    src = active_image(region_two, http, payload(MIB, seed=24), ALICE, disk_format="qcow2")
    patch(region_two, http, src, SOURCE_PROPS, ALICE)
    task, image = failed_import(service, http, caller, glance_download(src, "RegionTwo", "internal"))
    assert "qcow2" in task["message"], task
    assert_untouched(image)
