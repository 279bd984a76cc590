"""The swift store authenticating with keystone (v3) against a real keystone and a real Swift.

The keystone is the gate's, the Swift the ``swift_keystone`` fixture's (tests/gate/conftest.py),
which provisions in keystone, under names of its own: a region, an ``object-store`` service with endpoints in that region
pointing at a keystone-mode Swift proxy (``.../v1/AUTH_$(project_id)s``), a service user
that proxy's authtoken validates tokens with, and a project + user (role ``member``) the
store logs in as. The Swift all-in-one (tools/backends/swift-start.sh with
SWIFT_KEYSTONE_URL) runs in a directory and on ports of its own, never the tempauth one
tools/test.sh uses. glancelite itself runs without keystone (it trusts the caller): what is
under test is the store's own keystone login and its use of the catalog's object-store URL.

Keystone auth v2 is not tested: keystone removed its v2.0 API (Queens), so no current
keystone can serve it.
"""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.gate.conftest import object_store_url
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

pytestmark = pytest.mark.gate

KiB, MiB = 1024, 1024 * 1024


@pytest.fixture(scope="module")
def swift_account(swift_keystone, keystone):
    """What a keystone client of the store's user sees: (storage URL from the catalog, token)."""

    def login() -> tuple[str, str]:
        token, body = keystone.token(
            swift_keystone["user"]["name"], swift_keystone["password"], swift_keystone["project"]["name"]
        )
        return object_store_url(body, swift_keystone["region"]), token

    return login


@pytest.fixture(scope="module")
def glance(swift_keystone, tmp_path_factory):
    root = tmp_path_factory.mktemp("glance-swift-keystone")
    store = {
        "swift_store_auth_version": "3",
        "swift_store_auth_address": f"{swift_keystone['keystone_url']}/v3",
        "swift_store_user": f"{swift_keystone['project']['name']}:{swift_keystone['user']['name']}",
        "swift_store_key": swift_keystone["password"],
        "swift_store_region": swift_keystone["region"],
        "swift_store_container": f"glance-{swift_keystone['suffix']}",
        "swift_store_create_container_on_put": "True",
        # Segmented (DLO) from 1 MiB, in 1 MiB segments: both write paths go through keystone auth.
        "swift_store_large_object_size": "1",
        "swift_store_large_object_chunk_size": "1",
    }
    bad = {**store, "swift_store_key": "not-the-password", "swift_store_container": f"bad-{swift_keystone['suffix']}"}
    config = write_config(
        root,
        {
            "DEFAULT": {"enabled_backends": "fast:file, keystone:swift, badkey:swift"},
            "glance_store": {"default_backend": "fast", "store_capability_refresh_interval": "0"},
            "keystone": store,
            "badkey": bad,
        },
    )
    server = Server(config).start(deadline=60)
    server.stores = {"keystone": store, "badkey": bad}
    yield server
    server.stop()
    assert '" 500 ' not in server.log.read_text(), f"glancelite answered 500; see {server.log}"


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


def _create(glance, http) -> str:
    body = {"name": "swift-keystone", "disk_format": "raw", "container_format": "bare"}
    resp = http.post(f"{glance.url}/v2/images", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _upload(glance, http, image_id: str, store: str, data: bytes) -> requests.Response:
    return http.put(
        f"{glance.url}/v2/images/{image_id}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
        timeout=120,
    )


def _listing(swift_account, container: str) -> list[str] | None:
    """Object names in ``container`` of the store user's account, None when it does not exist."""
    url, token = swift_account()
    resp = requests.get(f"{url}/{container}", headers={"X-Auth-Token": token, "Accept": "application/json"}, timeout=30)
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return sorted(o["name"] for o in resp.json())


def test_catalog_points_the_user_at_its_own_account(swift_keystone, swift_account):
    url, token = swift_account()
    assert url == f"{swift_keystone['proxy_url']}/v1/AUTH_{swift_keystone['project']['id']}"
    assert requests.head(url, headers={"X-Auth-Token": token}, timeout=30).status_code in (200, 204)
    # authtoken and keystoneauth really guard the account.
    assert requests.head(url, timeout=30).status_code == 401
    assert requests.head(url, headers={"X-Auth-Token": "bogus"}, timeout=30).status_code == 401


def test_stores_detail_shows_the_keystone_store_writable_and_the_bad_key_not(glance, http):
    resp = http.get(f"{glance.url}/v2/info/stores/detail", timeout=60)
    assert resp.status_code == 200, resp.text
    stores = {s["id"]: s for s in resp.json()["stores"]}
    assert {"READ_ACCESS", "WRITE_ACCESS"} <= set(stores["keystone"]["capabilities"]), stores["keystone"]
    assert "WRITE_ACCESS" not in stores["badkey"]["capabilities"], stores["badkey"]
    assert glance.stores["keystone"]["swift_store_key"] not in resp.text


@pytest.mark.parametrize(
    "size, segments",
    [(300 * KiB + 7, 0), (2 * MiB + 512 * KiB + 3, 3)],
    ids=["single-object", "segmented-dlo"],
)
def test_upload_download_delete_through_keystone_auth(glance, http, swift_account, size, segments):
    container = glance.stores["keystone"]["swift_store_container"]
    data = raw_bytes(size)
    image_id = _create(glance, http)
    resp = _upload(glance, http, image_id, "keystone", data)
    assert resp.status_code == 204, resp.text

    image = http.get(f"{glance.url}/v2/images/{image_id}", timeout=30).json()
    assert image["status"] == "active", image
    assert image["size"] == size
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["stores"] == "keystone"

    got = http.get(f"{glance.url}/v2/images/{image_id}/file", timeout=120)
    assert got.status_code == 200, got.text
    assert got.content == data
    assert got.headers["Content-MD5"] == image["checksum"]

    # In Swift, seen with the store user's own keystone token at the catalog's URL.
    names = [image_id, *(f"{image_id}-{n:05d}" for n in range(1, segments + 1))]
    assert set(names) <= set(_listing(swift_account, container) or [])
    url, token = swift_account()
    head = requests.head(f"{url}/{container}/{image_id}", headers={"X-Auth-Token": token}, timeout=30)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == size
    assert ("X-Object-Manifest" in head.headers) == bool(segments)

    assert http.delete(f"{glance.url}/v2/images/{image_id}", timeout=60).status_code == 204
    assert not set(names) & set(_listing(swift_account, container) or [])
    gone = requests.head(f"{url}/{container}/{image_id}", headers={"X-Auth-Token": token}, timeout=30)
    assert gone.status_code == 404


def test_wrong_key_is_unavailable_not_an_error_and_leaves_nothing(glance, http, swift_account):
    image_id = _create(glance, http)
    resp = _upload(glance, http, image_id, "badkey", raw_bytes(64 * KiB))
    assert resp.status_code == 503, (resp.status_code, resp.text)
    # Glance's plain words: keystone's and swiftclient's text (the endpoint, the 401) is only logged.
    assert resp.json()["message"].startswith("The image store is unavailable."), resp.text
    assert not any(
        word in resp.text for word in ("401", "Unauthorized", "http", glance.stores["badkey"]["swift_store_key"])
    )
    image = http.get(f"{glance.url}/v2/images/{image_id}", timeout=30).json()
    assert image["status"] == "queued", image
    assert not image.get("stores")
    # Keystone never let the store in: its container was not even created.
    assert _listing(swift_account, glance.stores["badkey"]["swift_store_container"]) is None
    assert http.delete(f"{glance.url}/v2/images/{image_id}", timeout=30).status_code == 204
