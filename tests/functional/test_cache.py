"""The image cache and its API (/v2/cache...) against a real glancelite-api with image_cache_dir."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.conftest import ADMIN, identity
from tests.functional._images import new_image
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

OCTET = {"Content-Type": "application/octet-stream"}
MEMBER = identity("project-a", "reader,member", "user-a")


def start_cached(tmp_path_factory, name: str, flavor: str | None = None) -> Server:
    root = tmp_path_factory.mktemp(name)
    sections = {"DEFAULT": {"image_cache_dir": str(root / "cache"), "cache_prefetcher_interval": "1"}}
    if flavor:
        sections["paste_deploy"] = {"flavor": flavor}
    return Server(write_config(root, sections)).start()


@pytest.fixture(scope="module")
def cached_service(tmp_path_factory):
    """image_cache_dir alone (the gate's set-up): the cache API and the prefetcher."""
    server = start_cached(tmp_path_factory, "cache")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def caching_flavor_service(tmp_path_factory):
    """Glance's ``caching`` paste flavor: downloads are also served from and fill the cache."""
    server = start_cached(tmp_path_factory, "caching", flavor="caching")
    yield server
    server.stop()


def cache_dir(service):
    return service.config.parent / "cache"


def active_image(service, http, data: bytes) -> str:
    image_id = new_image(service, http, headers=ADMIN)
    resp = http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers={**OCTET, **ADMIN})
    assert resp.status_code == 204, resp.text
    return image_id


def state(service, http) -> dict:
    resp = http.get(f"{service.url}/v2/cache", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return resp.json()


def cached_ids(service, http) -> list[str]:
    return [entry["image_id"] for entry in state(service, http)["cached_images"]]


def wait_cached(service, http, image_id: str, deadline: float = 20.0) -> dict:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        current = state(service, http)
        if image_id in [e["image_id"] for e in current["cached_images"]]:
            return current
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} was not cached within {deadline}s: {current}")


def test_versions_list_cache_versions(cached_service, http):
    ids = [(v["id"], v["status"]) for v in http.get(f"{cached_service.url}/versions").json()["versions"]]
    assert ids[:5] == [
        ("v2.18", "CURRENT"),
        ("v2.17", "SUPPORTED"),
        ("v2.16", "SUPPORTED"),
        ("v2.15", "SUPPORTED"),
        ("v2.14", "SUPPORTED"),
    ]
    assert http.get(f"{cached_service.url}/v2.14/cache", headers=ADMIN).status_code == 200


def test_cache_cycle_as_tempest_runs_it(cached_service, http):
    url = cached_service.url
    assert http.get(f"{url}/v2/cache", headers=MEMBER).status_code == 403
    assert http.put(f"{url}/v2/cache/non-existing-image-id", headers=ADMIN).status_code == 404
    queued_image = new_image(cached_service, http, headers=ADMIN)
    resp = http.put(f"{url}/v2/cache/{queued_image}", headers=ADMIN)
    assert resp.status_code == 400
    assert "Only images with status active" in resp.text

    data = raw_bytes(300_000)
    image_id = active_image(cached_service, http, data)
    resp = http.put(f"{url}/v2/cache/{image_id}", headers=ADMIN)
    assert resp.status_code == 202
    assert resp.content == b""
    listing = state(cached_service, http)
    assert image_id in listing["queued_images"]
    assert image_id not in [e["image_id"] for e in listing["cached_images"]]

    listing = wait_cached(cached_service, http, image_id)
    assert image_id not in listing["queued_images"]
    entry = next(e for e in listing["cached_images"] if e["image_id"] == image_id)
    assert entry["size"] == len(data)
    assert set(entry) == {"image_id", "size", "hits", "last_accessed", "last_modified"}
    assert (cache_dir(cached_service) / image_id).read_bytes() == data

    assert http.delete(f"{url}/v2/cache", headers=ADMIN).status_code == 204
    assert state(cached_service, http) == {"cached_images": [], "queued_images": []}
    resp = http.delete(f"{url}/v2/cache", headers={**ADMIN, "x-image-cache-clear-target": "invalid"})
    assert resp.status_code == 400
    assert http.get(f"{url}/v2/cache", headers=MEMBER).status_code == 403


def test_without_the_caching_flavor_downloads_leave_the_cache_alone(cached_service, http):
    data = raw_bytes(100_000)
    image_id = active_image(cached_service, http, data)
    assert http.get(f"{cached_service.url}/v2/images/{image_id}/file", headers=ADMIN).content == data
    assert image_id not in cached_ids(cached_service, http)


def test_download_is_served_from_and_fills_the_cache(caching_flavor_service, http):
    cached_service = caching_flavor_service
    data = raw_bytes(2 * 1024 * 1024 + 5)
    image_id = active_image(cached_service, http, data)
    # A ranged download does not fill the cache; a whole one does, only once complete.
    resp = http.get(f"{cached_service.url}/v2/images/{image_id}/file", headers={**ADMIN, "Range": "bytes=0-9"})
    assert resp.status_code == 206
    assert image_id not in cached_ids(cached_service, http)
    resp = http.get(f"{cached_service.url}/v2/images/{image_id}/file", headers=ADMIN)
    assert resp.status_code == 200
    assert hashlib.md5(resp.content).hexdigest() == hashlib.md5(data).hexdigest()
    assert image_id in cached_ids(cached_service, http)
    assert os.listdir(cache_dir(cached_service) / "incomplete") == []

    # Prove the next download comes from the cache: remove the store's copy.
    for store in ("fast", "slow"):
        path = cached_service.config.parent / store / image_id
        if path.exists():
            path.unlink()
    resp = http.get(f"{cached_service.url}/v2/images/{image_id}/file", headers=ADMIN)
    assert resp.status_code == 200
    assert resp.content == data
    resp = http.get(f"{cached_service.url}/v2/images/{image_id}/file", headers={**ADMIN, "Range": "bytes=-4"})
    assert resp.status_code == 206
    assert resp.content == data[-4:]
    entry = next(e for e in state(cached_service, http)["cached_images"] if e["image_id"] == image_id)
    assert entry["hits"] >= 2 or entry["hits"] == 0  # 0 where the filesystem has no user xattrs

    # Deleting the image drops its cache entry.
    assert http.delete(f"{cached_service.url}/v2/images/{image_id}", headers=ADMIN).status_code == 204
    assert image_id not in cached_ids(cached_service, http)
    assert not (cache_dir(cached_service) / image_id).exists()


def test_delete_one_entry_and_clear_targets(caching_flavor_service, http):
    cached_service = caching_flavor_service
    url = cached_service.url
    first = active_image(cached_service, http, b"first image")
    second = active_image(cached_service, http, b"second image")
    assert http.get(f"{url}/v2/images/{first}/file", headers=ADMIN).content == b"first image"
    assert http.put(f"{url}/v2/cache/{second}", headers=ADMIN).status_code == 202
    assert first in cached_ids(cached_service, http)
    # Clearing only the queue leaves the cache alone.
    assert http.delete(f"{url}/v2/cache", headers={**ADMIN, "x-image-cache-clear-target": "queue"}).status_code == 204
    listing = state(cached_service, http)
    assert listing["queued_images"] == []
    assert first in [e["image_id"] for e in listing["cached_images"]]
    assert http.delete(f"{url}/v2/cache/{first}", headers=ADMIN).status_code == 204
    assert first not in cached_ids(cached_service, http)
    missing = "6e1f1c63-5a8c-4b5e-9d0e-0a6bb0e0c0d1"
    assert http.delete(f"{url}/v2/cache/{missing}", headers=ADMIN).status_code == 404
    assert http.delete(f"{url}/v2/cache/{second}", headers=MEMBER).status_code == 403


def test_clean_and_prune(cached_service, http):
    url = cached_service.url
    invalid = cache_dir(cached_service) / "invalid" / "6e1f1c63-5a8c-4b5e-9d0e-0a6bb0e0c0d2"
    invalid.write_bytes(b"x")
    resp = http.post(f"{url}/v2/cache/clean", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert not invalid.exists()
    resp = http.post(f"{url}/v2/cache/prune", headers=ADMIN)
    assert resp.status_code == 200
    assert resp.json() == {"total_files_pruned": 0, "total_bytes_pruned": 0}
    assert http.post(f"{url}/v2/cache/prune", headers=MEMBER).status_code == 403


def test_no_cache_dir_means_no_cache_api(service, http):
    resp = http.get(f"{service.url}/v2/cache", headers={**ADMIN, "Accept": "application/json"})
    assert resp.status_code == 404
    assert "Caching via API is not supported at this site." in resp.text
    assert http.get(f"{service.url}/v2/cache", headers=MEMBER).status_code == 403
    versions = [v["id"] for v in http.get(f"{service.url}/versions").json()["versions"]]
    assert "v2.18" not in versions and "v2.14" not in versions
