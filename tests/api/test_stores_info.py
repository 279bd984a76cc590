"""/v2/info/stores and /detail, read-only stores, and single-store mode, on real servers."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, identity
from tests.functional._images import image_row, new_image
from tests.support.inprocess import InProcessService
from tests.support.server import write_config

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """fast/slow file stores, a read-only file store and an http store."""
    root = tmp_path_factory.mktemp("mixed")
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, slow:file, ro:file, web:http"},
            "ro": {"filesystem_store_datadir": str(root / "ro"), "read_only": "true", "weight": "10"},
            "web": {"store_description": "Web images", "weight": "5"},
        },
    )
    server = InProcessService(config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    server = InProcessService(write_config(tmp_path_factory.mktemp("single"), multi_store=False)).start()
    yield server
    server.stop()


def test_info_stores(mixed, http):
    resp = http.get(f"{mixed.url}/v2/info/stores")
    assert resp.status_code == 200
    assert resp.json() == {
        "stores": [
            {"id": "fast", "description": "Fast local disk", "default": "true"},
            {"id": "slow", "description": "Slow local disk"},
            {"id": "ro", "read-only": "true"},
            {"id": "web", "description": "Web images", "read-only": "true"},
        ]
    }


def test_info_stores_rejects_a_body(mixed, http):
    assert http.get(f"{mixed.url}/v2/info/stores", data=b"x").status_code == 400


def test_detail_for_admin(mixed, http):
    resp = http.get(f"{mixed.url}/v2/info/stores/detail", headers=ADMIN)
    assert resp.status_code == 200
    stores = {s["id"]: s for s in resp.json()["stores"]}
    assert list(stores) == ["fast", "slow", "ro", "web"]
    fast = stores["fast"]
    assert fast["type"] == "file"
    assert fast["weight"] == 100
    assert fast["properties"] == {
        "data_dir": str(mixed.config.parent / "fast"),
        "chunk_size": 65536,
        "thin_provisioning": False,
    }
    assert {"READ_ACCESS", "READ_RANDOM", "WRITE_ACCESS", "DRIVER_REUSABLE"} <= set(fast["capabilities"])
    assert "WRITE_ACCESS" not in stores["ro"]["capabilities"]
    assert stores["web"]["type"] == "http"
    assert stores["web"]["properties"] == {}
    assert "WRITE_ACCESS" not in stores["web"]["capabilities"]
    assert "READ_ACCESS" in stores["web"]["capabilities"]


def test_detail_forbidden_for_members(mixed, http):
    resp = http.get(f"{mixed.url}/v2/info/stores/detail", headers=identity())
    assert resp.status_code == 403


@pytest.mark.parametrize("store", ["ro", "web"])
def test_upload_to_read_only_store_is_410(mixed, http, store):
    image_id = new_image(mixed, http)
    resp = http.put(
        f"{mixed.url}/v2/images/{image_id}/file", data=b"abc", headers={**OCTET, "X-Image-Meta-Store": store}
    )
    assert resp.status_code == 410
    assert "Adding images to store is disabled" in resp.text
    assert image_row(mixed, image_id).status == "queued"


def test_single_store_mode(single, http):
    assert http.get(f"{single.url}/v2/info/stores").status_code == 404
    assert "Multi backend is not supported at this site." in http.get(f"{single.url}/v2/info/stores").text
    assert http.get(f"{single.url}/v2/info/stores/detail").status_code == 404
    image_id = new_image(single, http)
    # The store header means nothing without enabled_backends.
    resp = http.put(
        f"{single.url}/v2/images/{image_id}/file", data=b"legacy", headers={**OCTET, "X-Image-Meta-Store": "x"}
    )
    assert resp.status_code == 204, resp.text
    image = image_row(single, image_id)
    assert image.status == "active"
    assert [loc.metadata for loc in image.locations] == [{}]
    assert image.locations[0].url == f"file://{single.config.parent / 'images' / image_id}"
    assert http.get(f"{single.url}/v2/images/{image_id}/file").content == b"legacy"
    assert http.delete(f"{single.url}/v2/stores/file/{image_id}").status_code == 404
    resp = http.get(f"{single.url}/v2/images/{image_id}/file?prefer=file")
    assert resp.status_code == 400


def test_download_from_http_store(mixed, http, tmp_path):
    """An image whose only copy is on a web server: streamed, ranged, and 503 when the server goes."""
    import configparser
    import hashlib

    from glancelite.db import engine as db_engine
    from glancelite.db import images as images_db
    from glancelite.db import locations as locations_db
    from glancelite.settings import DatabaseSettings
    from tests.store.cases_local import WebRoot

    data = bytes(range(256)) * 4000
    (tmp_path / "remote.img").write_bytes(data)
    web = WebRoot(tmp_path)
    image_id = new_image(mixed, http)
    cp = configparser.RawConfigParser()
    cp.read(mixed.config)
    engine = db_engine.create_engine(DatabaseSettings(connection=cp["database"]["connection"]))
    try:
        locations_db.add_location(engine, image_id, f"{web.url}/remote.img", {"store": "web"})
        values = {"status": "active", "size": len(data), "checksum": hashlib.md5(data).hexdigest()}
        images_db.update_image(engine, image_id, expected_status="queued", values=values)
    finally:
        engine.dispose()
    url = f"{mixed.url}/v2/images/{image_id}/file"
    try:
        resp = http.get(url)
        assert resp.status_code == 200
        assert resp.content == data
        assert resp.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
        resp = http.get(url, headers={"Range": "bytes=1000-1009"})
        assert resp.status_code == 206
        assert resp.content == data[1000:1010]
    finally:
        web.close()
    resp = http.get(url)
    assert resp.status_code == 503
