"""Reserved stores (os_glance_staging_store, os_glance_tasks_store): hidden and refused (in process).

Their validation when glancelite-api starts is tests/functional/test_reserved_stores.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN
from tests.functional._images import image_row, new_image

RESERVED = ["os_glance_staging_store", "os_glance_tasks_store"]
OCTET = {"Content-Type": "application/octet-stream"}


def test_reserved_dirs_exist_after_start(service):
    assert (service.config.parent / "staging").is_dir()
    assert (service.config.parent / "tasks").is_dir()


def test_not_listed(service, http):
    ids = [s["id"] for s in http.get(f"{service.url}/v2/info/stores").json()["stores"]]
    assert ids == ["fast", "slow"]
    ids = [s["id"] for s in http.get(f"{service.url}/v2/info/stores/detail", headers=ADMIN).json()["stores"]]
    assert ids == ["fast", "slow"]


def test_not_in_store_ids_header(service, http):
    resp = http.post(f"{service.url}/v2/images", json={"name": "h"})
    if resp.status_code != 201:
        pytest.skip("image create not available")
    header = resp.headers.get("OpenStack-image-store-ids", "")
    assert not any(r in header for r in RESERVED), header


@pytest.mark.parametrize("store", RESERVED)
def test_refused_as_upload_target(service, http, store):
    image_id = new_image(service, http)
    resp = http.put(
        f"{service.url}/v2/images/{image_id}/file", data=b"abc", headers={**OCTET, "X-Image-Meta-Store": store}
    )
    assert resp.status_code == 400
    assert f"Store for identifier {store} not found" in resp.text
    assert image_row(service, image_id).status == "queued"
    assert not (service.config.parent / "staging" / image_id).exists()
    assert not (service.config.parent / "tasks" / image_id).exists()


@pytest.mark.parametrize("store", RESERVED)
def test_refused_for_delete_from_store(service, http, store):
    image_id = new_image(service, http)
    resp = http.delete(f"{service.url}/v2/stores/{store}/{image_id}")
    assert resp.status_code == 409
    assert f"The selected store {store} is not available on this node." in resp.text


@pytest.mark.parametrize("store", RESERVED)
def test_refused_in_prefer(service, http, store):
    image_id = new_image(service, http)
    resp = http.get(f"{service.url}/v2/images/{image_id}/file?prefer={store}")
    assert resp.status_code == 400
