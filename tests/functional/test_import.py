"""Interoperable import against a real glancelite-api: three methods, several stores, failures, lock, stop file.

Stores: fast (weight 100), slow (90), spare (50) file stores plus the reserved
staging and tasks stores. ``spare`` is made unwritable by putting a plain file
where its directory was. Web downloads come from a local server on
127.0.0.1, explicitly allowed by [import_filtering_opts].
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import time

import pytest

from tests.conftest import ADMIN, identity
from tests.support.imports import (
    MIB,
    create_image,
    digests,
    get_image,
    image_tasks,
    location_stores,
    payload,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, write_config

SIZE_CAP = 12 * MIB
ALICE = identity("project-alice", "reader,member", "alice")


@pytest.fixture(scope="module")
def service(tmp_path_factory, web):
    root = tmp_path_factory.mktemp("import")
    config = write_config(
        root,
        {
            "DEFAULT": {
                "enabled_backends": "fast:file, slow:file, spare:file",
                "image_size_cap": str(SIZE_CAP),
                "user_storage_quota": "20MB",
            },
            "spare": {"filesystem_store_datadir": str(root / "spare"), "weight": "50"},
            "import_filtering_opts": web.filtering_opts,
            "glance_store": {"store_capability_refresh_interval": "0"},
        },
    )
    server = Server(config).start()
    server.root = root
    yield server
    server.stop()


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


@pytest.fixture
def broken_spare(service):
    """Make the spare store unwritable (root ignores permissions, so replace its directory by a file)."""
    path = service.root / "spare"
    shutil.rmtree(path)
    path.write_text("not a directory")
    yield
    path.unlink()
    path.mkdir()


def no_leftovers(service, image_id):
    """Nothing of the image in any store, staging or the tasks store (partial files included)."""
    for store in ("fast", "slow", "spare", "staging"):
        assert store_files(service.root, store, image_id) == [], store
    leftovers = [n for n in os.listdir(service.root / "tasks") if not n.endswith(".owner")]
    assert leftovers == []


def staged_image(service, http, data, headers=None) -> str:
    image_id = create_image(service, http, headers)
    resp = stage(service, http, image_id, data, headers)
    assert resp.status_code == 204, resp.text
    return image_id


# ------------------------------------------------------------------ discovery


def test_info_import_lists_enabled_methods(service, http):
    resp = http.get(service.url + "/v2/info/import")
    assert resp.status_code == 200
    assert resp.json() == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download", "copy-image"],
        }
    }


# ------------------------------------------------------------------ the three methods


def test_glance_direct_into_one_store(service, http):
    data = payload(3 * MIB + 7, seed=1)
    image_id = staged_image(service, http, data, ALICE)
    image = get_image(service, http, image_id, ALICE)
    assert image["status"] == "uploading" and image["size"] == len(data)
    assert store_files(service.root, "staging", image_id) == [image_id]

    resp = start_import(service, http, image_id, {"name": "glance-direct"}, ALICE, stores=["slow"])
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    task = wait_task(service, http, image_id)
    assert task["request_id"] == resp.headers["x-openstack-request-id"]  # tempest checks this
    assert task["status"] == "success", task
    assert task["result"] == {"image_id": image_id}
    assert task["type"] == "api_image_import" and task["input"]["backend"] == ["slow"]
    assert task["expires_at"] is not None

    image = get_image(service, http, image_id, ALICE)
    md5, sha = digests(data)
    assert image["status"] == "active"
    assert (image["size"], image["checksum"], image["os_hash_value"]) == (len(data), md5, sha)
    assert location_stores(image) == ["slow"]
    assert "os_glance_import_task" not in image
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert store_files(service.root, "staging", image_id) == []
    assert http.get(f"{service.url}/v2/images/{image_id}/file", headers=ALICE).content == data


def test_web_download_into_header_store(service, http, web):
    data = payload(2 * MIB + 3, seed=2)
    image_id = create_image(service, http)
    resp = start_import(
        service,
        http,
        image_id,
        {"name": "web-download", "uri": web.url(f"/data/{len(data)}?seed=2")},
        {"X-Image-Meta-Store": "slow"},
    )
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id)
    assert image["status"] == "active" and location_stores(image) == ["slow"]
    assert image["checksum"] == digests(data)[0]
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    no_leftovers_except(service, image_id, "slow")


def no_leftovers_except(service, image_id, *stores):
    for store in {"fast", "slow", "spare", "staging"} - set(stores):
        assert store_files(service.root, store, image_id) == [], store


def test_web_download_follows_allowed_redirect_without_content_length(service, http, web):
    data = payload(MIB + 1, seed=3)
    image_id = create_image(service, http)
    uri = web.url("/redirect?to=" + web.url(f"/stream/{len(data)}?seed=3"))
    assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data


def test_copy_image_to_another_store(service, http):
    data = payload(MIB + 5, seed=4)
    image_id = staged_image(service, http, data)
    assert start_import(service, http, image_id, {"name": "glance-direct"}).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    assert location_stores(get_image(service, http, image_id)) == ["fast"]

    resp = start_import(service, http, image_id, {"name": "copy-image"}, stores=["slow"])
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, image_id, count=2)
    assert task["status"] == "success", task
    image = get_image(service, http, image_id)
    assert image["status"] == "active" and location_stores(image) == ["fast", "slow"]
    assert image["checksum"] == digests(data)[0]
    assert store_files(service.root, "slow", image_id) == [image_id]
    assert store_files(service.root, "staging", image_id) == []
    # Present already: 400 without all_stores; with all_stores only the missing store is copied.
    again = start_import(service, http, image_id, {"name": "copy-image"}, stores=["slow"])
    assert again.status_code == 400 and "already present at store 'slow'" in again.text
    resp = start_import(service, http, image_id, {"name": "copy-image"}, all_stores=True)
    assert resp.status_code == 202
    assert wait_task(service, http, image_id, count=3)["status"] == "success"
    assert location_stores(get_image(service, http, image_id)) == ["fast", "slow", "spare"]
    # Nothing left to copy: 202 and no new task.
    resp = start_import(service, http, image_id, {"name": "copy-image"}, all_stores=True)
    assert resp.status_code == 202
    assert len(image_tasks(service, http, image_id)) == 3


def test_copy_image_needs_admin_and_active(service, http):
    data = payload(1000, seed=5)
    image_id = staged_image(service, http, data, ALICE)
    refused = start_import(service, http, image_id, {"name": "copy-image"}, ALICE, stores=["slow"])
    assert refused.status_code == 409  # not active yet
    assert "Only images with status active" in refused.text
    assert start_import(service, http, image_id, {"name": "glance-direct"}, ALICE).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    forbidden = start_import(service, http, image_id, {"name": "copy-image"}, ALICE, stores=["slow"])
    assert forbidden.status_code == 403
    assert start_import(service, http, image_id, {"name": "copy-image"}, ADMIN, stores=["slow"]).status_code == 202
    assert wait_task(service, http, image_id, count=2)["status"] == "success"


# ------------------------------------------------------------------ several stores


def test_glance_direct_into_several_stores(service, http):
    data = payload(2 * MIB, seed=6)
    image_id = staged_image(service, http, data)
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, stores=["slow", "fast", "spare"])
    assert resp.status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id)
    assert location_stores(image) == ["fast", "slow", "spare"]
    for store in ("fast", "slow", "spare"):
        assert store_files(service.root, store, image_id) == [image_id]


def test_all_stores_succeeds_everywhere(service, http, web):
    data = payload(MIB, seed=7)
    image_id = create_image(service, http)
    uri = web.url(f"/data/{len(data)}?seed=7")
    resp = start_import(service, http, image_id, {"name": "web-download", "uri": uri}, all_stores=True)
    assert resp.status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    assert location_stores(get_image(service, http, image_id)) == ["fast", "slow", "spare"]


def test_all_stores_must_succeed_reverts_everything(service, http, broken_spare):
    data = payload(2 * MIB, seed=8)
    image_id = staged_image(service, http, data)
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, all_stores=True)
    assert resp.status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure"
    assert task["message"]
    image = get_image(service, http, image_id)
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert "stores" not in image
    assert "spare" in image["os_glance_failed_import"].split(",")
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert "os_glance_import_task" not in image
    no_leftovers(service, image_id)


def test_partial_success_allowed(service, http, web, broken_spare):
    data = payload(MIB + 9, seed=9)
    image_id = create_image(service, http)
    uri = web.url(f"/data/{len(data)}?seed=9")
    resp = start_import(
        service,
        http,
        image_id,
        {"name": "web-download", "uri": uri},
        all_stores=True,
        all_stores_must_succeed=False,
    )
    assert resp.status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id)
    assert image["status"] == "active"
    assert location_stores(image) == ["fast", "slow"]
    assert image["os_glance_failed_import"] == "spare"
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert store_files(service.root, "staging", image_id) == []


def test_copy_image_failure_keeps_image_active(service, http, broken_spare):
    data = payload(MIB, seed=10)
    image_id = staged_image(service, http, data)
    assert start_import(service, http, image_id, {"name": "glance-direct"}).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    resp = start_import(service, http, image_id, {"name": "copy-image"}, stores=["slow", "spare"])
    assert resp.status_code == 202
    task = wait_task(service, http, image_id, count=2)
    assert task["status"] == "failure"
    image = get_image(service, http, image_id)
    assert image["status"] == "active"
    assert location_stores(image) == ["fast"]  # all must succeed: the slow copy was removed again
    assert "spare" in image["os_glance_failed_import"].split(",")
    assert store_files(service.root, "slow", image_id) == []
    assert store_files(service.root, "staging", image_id) == []


# ------------------------------------------------------------------ web-download safety


def test_uri_refused_at_request_time(service, http, web):
    image_id = create_image(service, http)
    for uri in (
        "http://127.0.0.1:1/x",  # port not allowed
        "ftp://127.0.0.1/x",
        web.url("/data/10", host="127.0.0.2"),  # host not allowed
        "http://169.254.169.254/latest/meta-data",
    ):
        resp = start_import(service, http, image_id, {"name": "web-download", "uri": uri})
        assert resp.status_code == 400, (uri, resp.text)
        assert "does not pass filtering" in resp.text
    assert image_tasks(service, http, image_id) == []


def test_redirect_to_refused_host_fails_the_task(service, http, web):
    image_id = create_image(service, http)
    uri = web.url("/redirect?to=" + web.url("/data/100", host="127.0.0.2"))
    assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure"
    assert "Redirect to disallowed URL" in task["message"]
    image = get_image(service, http, image_id)
    assert image["status"] == "queued"
    assert image["os_glance_failed_import"] == "fast"
    no_leftovers(service, image_id)


@pytest.mark.parametrize("kind", ["data", "stream"])
def test_oversize_download_stopped_at_cap(service, http, web, kind):
    image_id = create_image(service, http)
    uri = web.url(f"/{kind}/{SIZE_CAP + MIB}")
    assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure"
    assert "size cap" in task["message"]
    assert get_image(service, http, image_id)["status"] == "queued"
    no_leftovers(service, image_id)


# ------------------------------------------------------------------ refusals


def test_refusals_with_glance_codes(service, http):
    queued = create_image(service, http)
    url = f"{service.url}/v2/images/{queued}/import"
    cases = [
        ({"method": {"name": "nope"}}, 400, "Unknown import method name 'nope'."),
        ({}, 400, "requires a 'method' field"),
        ({"method": {}}, 400, "requires a 'name' field"),
        ({"method": {"name": "glance-direct"}, "all_stores": "yes"}, 400, "all_stores"),
        ({"method": {"name": "glance-direct"}}, 409, "needs to be staged"),
        ({"method": {"name": "copy-image"}, "stores": ["slow"]}, 409, "Only images with status active"),
        ({"method": {"name": "web-download", "uri": "http://x/"}, "stores": ["nowhere"]}, 409, "nowhere not found"),
        (
            {"method": {"name": "web-download", "uri": "http://x/"}, "stores": ["os_glance_staging_store"]},
            409,
            "not found",
        ),
        ({"method": {"name": "web-download", "uri": "http://x/"}, "all_stores": True, "stores": ["fast"]}, 400, ""),
    ]
    for body, status, text in cases:
        resp = http.post(url, json=body)
        assert resp.status_code == status, (body, resp.text)
        assert text in resp.json()["message"] if text else True
    both = http.post(
        url,
        json={"method": {"name": "web-download", "uri": "http://x/"}, "stores": ["fast"]},
        headers={"X-Image-Meta-Store": "slow"},
    )
    assert both.status_code == 400 and "can't be both specified" in both.text
    assert http.post(url, data=b"").status_code == 400
    missing = http.post(
        f"{service.url}/v2/images/{'0' * 8}-0000-0000-0000-{'0' * 12}/import",
        json={"method": {"name": "glance-direct"}},
    )
    assert missing.status_code == 404
    no_format = create_image(service, http, disk_format=None, container_format=None)
    resp = start_import(service, http, no_format, {"name": "web-download", "uri": "http://x/"})
    assert resp.status_code == 409 and "needs to be set before import" in resp.text


def test_stage_refusals(service, http):
    image_id = staged_image(service, http, b"abc")
    again = stage(service, http, image_id, b"abc")
    assert again.status_code == 409
    wrong_type = http.put(
        f"{service.url}/v2/images/{image_id}/stage", data=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    # web-download needs queued; the image is uploading.
    resp = start_import(service, http, image_id, {"name": "web-download", "uri": "http://x/"})
    assert resp.status_code == 409 and "'queued'" in resp.text
    too_big = create_image(service, http)
    resp = stage(service, http, too_big, b"x" * 10, {"x-openstack-image-size": str(SIZE_CAP + 1)})
    assert resp.status_code in (400, 413)
    assert get_image(service, http, too_big)["status"] == "queued"
    assert store_files(service.root, "staging", too_big) == []
    other = create_image(service, http, ALICE)
    assert stage(service, http, other, b"abc", identity("project-bob", "reader,member", "bob")).status_code == 404


# ------------------------------------------------------------------ the lock


def test_two_concurrent_imports_one_wins(service, http, web):
    image_id = create_image(service, http)
    gate = f"lock-{image_id}"
    uri = web.url(f"/gated/{3 * MIB}?gate={gate}")

    def go(_):
        import requests

        return requests.post(
            f"{service.url}/v2/images/{image_id}/import", json={"method": {"name": "web-download", "uri": uri}}
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(go, range(4)))
    assert codes == [202, 409, 409, 409]
    assert web.wait_started(gate)
    image = get_image(service, http, image_id)
    assert image["status"] == "importing" and image["os_glance_import_task"]
    assert image["os_glance_importing_to_stores"] == "fast"
    late = start_import(service, http, image_id, {"name": "web-download", "uri": uri})
    assert late.status_code == 409
    web.open_gate(gate)
    task = wait_task(service, http, image_id)
    assert task["status"] == "success", (task["message"], image_tasks(service, http, image_id))
    assert len(image_tasks(service, http, image_id)) == 1
    assert get_image(service, http, image_id)["status"] == "active"


# ------------------------------------------------------------------ the stop file


def test_stop_file_drains_the_node(service, http, web):
    stop_file = service.root / "healthcheck_disable"
    running = create_image(service, http)
    gate = f"drain-{running}"
    uri = web.url(f"/gated/{2 * MIB}?gate={gate}")
    assert start_import(service, http, running, {"name": "web-download", "uri": uri}).status_code == 202
    assert web.wait_started(gate)
    stop_file.touch()
    try:
        assert http.get(service.url + "/healthcheck").status_code == 503
        waiting = create_image(service, http)
        refused = start_import(service, http, waiting, {"name": "web-download", "uri": web.url("/data/100")})
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) > 0
        assert "drained" in refused.text
        assert get_image(service, http, waiting)["status"] == "queued"
        assert image_tasks(service, http, waiting) == []
        # The import already running finishes while the node drains.
        web.open_gate(gate)
        assert wait_task(service, http, running)["status"] == "success"
        assert get_image(service, http, running)["status"] == "active"
    finally:
        stop_file.unlink()
    time.sleep(0.1)
    assert http.get(service.url + "/healthcheck").status_code == 200
    resp = start_import(service, http, waiting, {"name": "web-download", "uri": web.url("/data/100")})
    assert resp.status_code == 202
    assert wait_task(service, http, waiting)["status"] == "success"


# ------------------------------------------------------------------ real clients


def _glance_cli(service, *args, input_bytes=None):
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run(
        [
            str(Path(sys.executable).parent / "glance"),
            "--os-image-url",
            service.url,
            "--os-auth-token",
            "noauth",
            *args,
        ],
        capture_output=True,
        timeout=120,
        input=input_bytes,
        # No data: stdin closed, as in a cron job (glanceclient then reads none).
        preexec_fn=(lambda: os.close(0)) if input_bytes is None else None,
        env={**os.environ, "OS_IMAGE_API_VERSION": "2"},
    )


def test_glanceclient_image_create_via_import(service, http, web, tmp_path):
    data = payload(MIB + 17, seed=12)
    out = _glance_cli(
        service,
        "image-create-via-import",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--name",
        "via-import",
        "--stores",
        "slow",
        input_bytes=data,  # glance-direct from standard input
    )
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    image_id = next(line.split("|")[2].strip() for line in out.stdout.decode().splitlines() if line.startswith("| id "))
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id)
    assert image["status"] == "active" and location_stores(image) == ["slow"]
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data

    out = _glance_cli(
        service,
        "image-create-via-import",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--import-method",
        "web-download",
        "--uri",
        web.url("/data/4096?seed=13"),
    )
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    image_id = next(line.split("|")[2].strip() for line in out.stdout.decode().splitlines() if line.startswith("| id "))
    assert wait_task(service, http, image_id)["status"] == "success"
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == payload(4096, seed=13)


def test_openstacksdk_import_image(service, http, tmp_path):
    import openstack.connection

    conn = openstack.connection.Connection(
        auth_type="none",
        auth={"endpoint": service.url},
        image_endpoint_override=service.url,
        image_api_version="2",
    )
    data = payload(MIB + 33, seed=14)
    image = conn.image.create_image(name="sdk-import", disk_format="raw", container_format="bare")
    conn.image.stage_image(image, data=data)
    conn.image.import_image(image, method="glance-direct", stores=["fast", "slow"])
    assert wait_task(service, http, image.id)["status"] == "success"
    got = get_image(service, http, image.id)
    assert got["status"] == "active" and location_stores(got) == ["fast", "slow"]
    assert conn.image.download_image(image.id).content == data


# ------------------------------------------------------------------ single-store (legacy) configuration


@pytest.fixture(scope="module")
def legacy_service(tmp_path_factory, web):
    root = tmp_path_factory.mktemp("legacy-import")
    config = write_config(
        root,
        {"import_filtering_opts": web.filtering_opts},
        multi_store=False,
    )
    server = Server(config).start()
    server.root = root
    yield server
    server.stop()


def test_single_store_uses_node_staging_uri_and_work_dir(legacy_service, http, web):
    service = legacy_service
    data = payload(MIB + 3, seed=15)
    image_id = staged_image(service, http, data)
    assert store_files(service.root, "staging", image_id) == [image_id]
    # COMPAT: all_stores is ignored without multi-store; partial success needs several stores.
    refused = start_import(service, http, image_id, {"name": "glance-direct"}, all_stores_must_succeed=False)
    assert refused.status_code == 400
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, all_stores=True)
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id)
    assert image["status"] == "active" and "stores" not in image
    assert store_files(service.root, "images", image_id) == [image_id]
    assert store_files(service.root, "staging", image_id) == []

    other = create_image(service, http)
    resp = start_import(service, http, other, {"name": "web-download", "uri": web.url("/gated/2097152?gate=legacy")})
    assert resp.status_code == 202
    assert web.wait_started("legacy")
    (task,) = image_tasks(service, http, other)
    for _ in range(100):
        if (service.root / "work" / f"{task['id']}.download").exists():
            break
        time.sleep(0.05)
    assert (service.root / "work" / f"{task['id']}.download").exists()
    web.open_gate("legacy")
    assert wait_task(service, http, other)["status"] == "success"
    assert os.listdir(service.root / "work") == []


def test_deleting_a_staged_image_removes_its_staged_data(service, http):
    image_id = staged_image(service, http, b"staged bytes")
    assert store_files(service.root, "staging", image_id) == [image_id]
    assert http.delete(f"{service.url}/v2/images/{image_id}").status_code == 204
    assert store_files(service.root, "staging", image_id) == []


def test_image_deleted_during_import_leaves_nothing(service, http, web):
    image_id = create_image(service, http)
    gate = f"delete-{image_id}"
    uri = web.url(f"/gated/{3 * MIB}?gate={gate}")
    assert start_import(service, http, image_id, {"name": "web-download", "uri": uri}).status_code == 202
    assert web.wait_started(gate)
    (task,) = image_tasks(service, http, image_id)
    assert http.delete(f"{service.url}/v2/images/{image_id}").status_code == 204
    web.open_gate(gate)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        resp = http.get(f"{service.url}/v2/tasks/{task['id']}")
        if resp.json()["status"] in ("success", "failure"):
            break
        time.sleep(0.2)
    assert resp.json()["status"] == "failure"
    assert "No image found" in resp.json()["message"]
    time.sleep(0.5)
    no_leftovers(service, image_id)


def test_storage_quota_counts_every_copy(service, http):
    owner = identity("project-quota", "reader,member", "quota-user")
    data = payload(8 * MIB, seed=16)
    image_id = staged_image(service, http, data, owner)
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, owner, stores=["fast", "slow", "spare"])
    assert resp.status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure"
    assert "quota" in task["message"]
    image = get_image(service, http, image_id, owner)
    assert image["status"] == "queued" and "stores" not in image
    no_leftovers(service, image_id)
    # Two copies fit in 20 MB.
    image_id = staged_image(service, http, data, owner)
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, owner, stores=["fast", "slow"])
    assert wait_task(service, http, image_id)["status"] == "success"
