"""Disk full on a file store and on the staging store, each on its own 8 MiB tmpfs.

A body bigger than the space answers 413 in Glance's error shape and leaves no partial file; a
store filled by something else loses WRITE_ACCESS from its live capabilities (a write is then
refused before any byte is read) and gets it back once space returns; the audit finds nothing.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.conftest import ADMIN
from tests.faults.conftest import assert_audit_clean, tmpfs
from tests.support.imports import wait_task
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

MIB = 1 << 20
OCTET = {"Content-Type": "application/octet-stream"}
STORES = 4  # fast, slow, staging, tasks


@pytest.fixture
def service(tmp_path):
    """fast and the staging store on tmpfs; capabilities probed on every request, so no test waits for a refresh."""
    fast = tmp_path / "fast-fs"
    staging = tmp_path / "staging-fs"
    with tmpfs(fast, "8m"), tmpfs(staging, "8m"):
        config = write_config(
            tmp_path / "svc",
            {
                "DEFAULT": {"store_capability_refresh_interval": "0"},
                "fast": {"filesystem_store_datadir": str(fast)},
                "os_glance_staging_store": {"filesystem_store_datadir": str(staging)},
            },
        )
        server = Server(config).start()
        server.fast, server.staging = fast, staging
        try:
            yield server
        finally:
            server.stop()


def fill(directory) -> object:
    """A file leaving half a MiB free: under the file driver's 1 MiB minimum, so the store counts as full."""
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    filler = directory / "filler"
    filler.write_bytes(b"\0" * (free - MIB // 2))
    return filler


def new_image(service, http) -> str:
    resp = http.post(f"{service.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def image(service, http, image_id) -> dict:
    resp = http.get(f"{service.url}/v2/images/{image_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def capabilities(service, http, store: str) -> dict:
    resp = http.get(f"{service.url}/v2/info/stores/detail", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return {s["id"]: s for s in resp.json()["stores"]}[store]


def assert_storage_full(resp, service) -> None:
    """413 in Glance's JSON error shape, saying the media is full and nothing about where."""
    assert resp.status_code == 413, resp.text
    body = resp.json()
    assert set(body) == {"message", "code", "title"}
    assert (body["code"], body["title"]) == ("413 Request Entity Too Large", "Request Entity Too Large")
    assert "Image storage media is full" in body["message"]
    assert str(service.config.parent.parent) not in resp.text  # no path of the server's


def test_file_store_full(service, http):
    kept_data = raw_bytes(MIB)
    kept = new_image(service, http)
    assert http.put(f"{service.url}/v2/images/{kept}/file", data=kept_data, headers=OCTET).status_code == 204

    # Bigger than the space: 413, the image still queued, no partial file.
    image_id = new_image(service, http)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=raw_bytes(10 * MIB), headers=OCTET)
    assert_storage_full(resp, service)
    assert image(service, http, image_id)["status"] == "queued"
    assert image(service, http, image_id)["size"] is None
    assert sorted(os.listdir(service.fast)) == [kept]
    assert "WRITE_ACCESS" in capabilities(service, http, "fast")["capabilities"]  # the failed write freed its space

    # Filled by something else: WRITE_ACCESS is gone, and even a few bytes are refused.
    filler = fill(service.fast)
    fast = capabilities(service, http, "fast")
    assert "WRITE_ACCESS" not in fast["capabilities"] and "READ_ACCESS" in fast["capabilities"], fast
    assert fast["capabilities_reason"] == "the data directories are full"
    assert "WRITE_ACCESS" in capabilities(service, http, "slow")["capabilities"]
    assert_storage_full(http.put(f"{service.url}/v2/images/{image_id}/file", data=b"tiny", headers=OCTET), service)
    assert image(service, http, image_id)["status"] == "queued"
    # What is stored can still be read, and deleted (which is how space comes back).
    assert http.get(f"{service.url}/v2/images/{kept}/file").content == kept_data

    # Space returns: so does WRITE_ACCESS, and the same image uploads.
    filler.unlink()
    assert "WRITE_ACCESS" in capabilities(service, http, "fast")["capabilities"]
    data = raw_bytes(3 * MIB)
    assert http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    done = image(service, http, image_id)
    assert (done["status"], done["size"], done["stores"]) == ("active", len(data), "fast")
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert sorted(os.listdir(service.fast)) == sorted([kept, image_id])
    assert_audit_clean(service.config, stores=STORES)


def test_staging_store_full(service, http):
    # Bigger than the staging space: 413, the image still queued, nothing staged.
    image_id = new_image(service, http)
    resp = http.put(f"{service.url}/v2/images/{image_id}/stage", data=raw_bytes(10 * MIB), headers=OCTET)
    assert_storage_full(resp, service)
    assert image(service, http, image_id)["status"] == "queued"
    assert os.listdir(service.staging) == []

    # Filled by something else: the staging store takes nothing (the reserved stores are not in
    # /v2/info/stores/detail, so a few bytes refused with 413 is how its lost WRITE_ACCESS shows).
    filler = fill(service.staging)
    resp = http.put(f"{service.url}/v2/images/{image_id}/stage", data=b"tiny", headers=OCTET)
    assert_storage_full(resp, service)
    assert image(service, http, image_id)["status"] == "queued"
    assert os.listdir(service.staging) == ["filler"]

    # Space returns: the image stages and imports.
    filler.unlink()
    data = raw_bytes(2 * MIB)
    assert http.put(f"{service.url}/v2/images/{image_id}/stage", data=data, headers=OCTET).status_code == 204
    assert image(service, http, image_id)["status"] == "uploading"
    resp = http.post(f"{service.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    done = image(service, http, image_id)
    assert (done["status"], done["size"]) == ("active", len(data))
    assert http.get(f"{service.url}/v2/images/{image_id}/file").content == data
    assert os.listdir(service.staging) == []
    assert_audit_clean(service.config, stores=STORES)
