"""[image_import_opts] max_parallel_stores: one import writes several stores at the same time."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ADMIN
from tests.support.imports import (
    MIB,
    create_image,
    digests,
    get_image,
    location_stores,
    payload,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.server import Server, write_config

STORES = ["fast", "slow", "spare"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, slow:file, spare:file"},
            "spare": {"filesystem_store_datadir": str(root / "spare"), "weight": "50"},
            "image_import_opts": {"max_parallel_stores": "2"},
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
    path = service.root / "spare"
    shutil.rmtree(path)
    path.write_text("not a directory")
    yield
    path.unlink()
    path.mkdir()


def staged(service, http, data) -> str:
    image_id = create_image(service, http, ADMIN)
    assert stage(service, http, image_id, data, ADMIN).status_code == 204
    return image_id


@pytest.mark.parametrize("must_succeed", [True, False])
def test_all_stores_in_parallel(service, http, must_succeed):
    data = payload(3 * MIB + 1, seed=7)
    image_id = staged(service, http, data)
    resp = start_import(
        service, http, image_id, {"name": "glance-direct"}, ADMIN, stores=STORES, all_stores_must_succeed=must_succeed
    )
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id, ADMIN)
    assert image["status"] == "active"
    assert location_stores(image) == sorted(STORES)
    assert (image["checksum"], image["os_hash_value"]) == digests(data)
    assert image.get("os_glance_importing_to_stores", "") == "" and image.get("os_glance_failed_import", "") == ""
    for store in STORES:
        assert (service.root / store / image_id).read_bytes() == data
    assert store_files(service.root, "staging", image_id) == []


def test_one_store_failing_reverts_all_when_all_must_succeed(service, http, broken_spare):
    image_id = staged(service, http, payload(MIB, seed=8))
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, ADMIN, stores=STORES)
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "failure"
    image = get_image(service, http, image_id, ADMIN)
    assert image["status"] == "queued" and image["checksum"] is None
    assert location_stores(image) == []
    assert sorted(image["os_glance_failed_import"].split(",")) == sorted(STORES)
    for store in ("fast", "slow", "staging"):
        assert store_files(service.root, store, image_id) == [], store


def test_partial_success_in_parallel(service, http, broken_spare):
    data = payload(MIB, seed=9)
    image_id = staged(service, http, data)
    resp = start_import(
        service, http, image_id, {"name": "glance-direct"}, ADMIN, stores=STORES, all_stores_must_succeed=False
    )
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id, ADMIN)
    assert image["status"] == "active" and location_stores(image) == ["fast", "slow"]
    assert image["os_glance_failed_import"] == "spare"
