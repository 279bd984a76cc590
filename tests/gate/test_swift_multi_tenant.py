"""Multi-tenant swift (swift_store_multi_tenant) against the gate's keystone and a keystone-mode Swift.

glancelite runs in the keystone flavor (keystonemiddleware validates the callers' tokens and
passes their service catalogs); its only store is multi-tenant swift pointing at the Swift of
the ``swift_keystone`` fixture (tests/gate/conftest.py), registered as ``object-store`` in a
test region. Two projects, each with a user: images land in the uploader's own Swift account,
in ``<container>_<image id>``, written and read with the caller's token. As in glance_store,
another project reads an image only through the container read ACL Glance sets: members of a
shared image, everyone (``*:*``) for a public one.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import requests

from tests.gate.conftest import object_store_url, service_authtoken
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

pytestmark = pytest.mark.gate

KiB, MiB = 1024, 1024 * 1024


@pytest.fixture(scope="module")
def tenants(swift_keystone, keystone):
    """Two projects with a user each; ``alice`` may publicize (role admin in her own project)."""
    users = {}
    for name, roles in (("alice", ("member", "admin")), ("bob", ("member",))):
        project, user, password = swift_keystone["user_in_project"](f"mt-{name}", *roles)
        users[name] = {"project": project, "user": user, "password": password}

    def login(name: str) -> dict:
        who = users[name]
        token, body = keystone.token(who["user"]["name"], who["password"], who["project"]["name"])
        account = object_store_url(body, swift_keystone["region"])
        return {"token": token, "account": account, "project_id": who["project"]["id"]}

    return login


@pytest.fixture(scope="module")
def glance(gate, swift_keystone, tmp_path_factory):
    root = tmp_path_factory.mktemp("glance-swift-multi-tenant")
    container = f"mt-{swift_keystone['suffix']}"
    config = write_config(
        root,
        {
            "paste_deploy": {"flavor": "keystone"},
            "keystone_authtoken": service_authtoken(gate),
            "DEFAULT": {"enabled_backends": "tenant:swift", "show_image_direct_url": "True"},
            "glance_store": {"default_backend": "tenant"},
            "tenant": {
                "swift_store_multi_tenant": "True",
                "swift_store_region": swift_keystone["region"],
                "swift_store_container": container,
                "swift_store_create_container_on_put": "True",
                # Segmented (DLO) from 1 MiB, in 1 MiB segments.
                "swift_store_large_object_size": "1",
                "swift_store_large_object_chunk_size": "1",
            },
        },
    )
    server = Server(config).start(deadline=60)
    server.container = container
    yield server
    server.stop()
    assert '" 500 ' not in server.log.read_text(), f"glancelite answered 500; see {server.log}"


def _h(who: dict, **extra) -> dict:
    return {"X-Auth-Token": who["token"], "Accept": "application/json", **extra}


def _create(glance, who: dict, **fields) -> str:
    body = {"name": "mt", "disk_format": "raw", "container_format": "bare", **fields}
    resp = requests.post(f"{glance.url}/v2/images", json=body, headers=_h(who), timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _upload(glance, who: dict, image_id: str, data: bytes) -> requests.Response:
    headers = _h(who, **{"Content-Type": "application/octet-stream"})
    return requests.put(f"{glance.url}/v2/images/{image_id}/file", data=data, headers=headers, timeout=120)


def _download(glance, who: dict, image_id: str) -> requests.Response:
    return requests.get(f"{glance.url}/v2/images/{image_id}/file", headers=_h(who), timeout=120)


def _swift(who: dict, path: str, method: str = "GET", token: dict | None = None) -> requests.Response:
    """A request to ``who``'s Swift account, with ``token``'s token (default: ``who``'s own)."""
    headers = {"X-Auth-Token": (token or who)["token"], "Accept": "application/json"}
    return requests.request(method, f"{who['account']}/{path}", headers=headers, timeout=30)


def _uploaded(glance, tenants, owner: str, size: int = 200 * KiB, **fields) -> tuple[dict, str, bytes]:
    who = tenants(owner)
    data = raw_bytes(size)
    image_id = _create(glance, who, **fields)
    resp = _upload(glance, who, image_id, data)
    assert resp.status_code == 204, resp.text
    return who, image_id, data


def _leftovers(glance, who: dict) -> list[str]:
    resp = _swift(who, f"?prefix={glance.container}_")
    assert resp.status_code in (200, 204), resp.text
    return [c["name"] for c in resp.json()] if resp.status_code == 200 else []


@pytest.mark.parametrize(
    "size, segments", [(300 * KiB + 7, 0), (2 * MiB + 512 * KiB + 3, 3)], ids=["single-object", "segmented-dlo"]
)
def test_each_image_lands_in_its_uploaders_account(glance, tenants, size, segments):
    alice, image_id, data = _uploaded(glance, tenants, "alice", size)
    bob = tenants("bob")
    container = f"{glance.container}_{image_id}"

    image = requests.get(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=30).json()
    assert image["status"] == "active" and image["size"] == size, image
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()

    # Swift itself, with Alice's token: her account, the image's own container.
    listing = _swift(alice, container)
    assert listing.status_code == 200, listing.text
    names = sorted(o["name"] for o in listing.json())
    assert names == sorted([image_id, *(f"{image_id}-{n:05d}" for n in range(1, segments + 1))])
    head = _swift(alice, f"{container}/{image_id}", "HEAD")
    assert int(head.headers["Content-Length"]) == size
    assert _swift(bob, container, "HEAD", token=bob).status_code == 404  # not in Bob's account
    # A private image: the container lets no other project in.
    assert _swift(alice, f"{container}/{image_id}", token=bob).status_code == 403
    assert _download(glance, bob, image_id).status_code == 404  # and Glance hides it

    got = _download(glance, alice, image_id)
    assert got.status_code == 200, got.text
    assert got.content == data

    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=60).status_code == 204
    assert _swift(alice, container, "HEAD").status_code == 404  # objects and container gone
    assert container not in _leftovers(glance, alice)


def test_location_uri_is_the_storage_url_without_credentials(glance, tenants):
    alice, image_id, _ = _uploaded(glance, tenants, "alice", 10 * KiB)
    image = requests.get(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=30).json()
    account = alice["account"].split("://", 1)[1]  # http://127.0.0.1:<port>/v1/AUTH_<project id>
    assert image["direct_url"] == f"swift+http://{account}/{glance.container}_{image_id}/{image_id}"
    assert alice["token"] not in image["direct_url"]
    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=60).status_code == 204


def test_shared_image_is_readable_by_members_only(glance, tenants):
    alice, image_id, data = _uploaded(glance, tenants, "alice", 64 * KiB, visibility="shared")
    bob = tenants("bob")
    container = f"{glance.container}_{image_id}"
    assert _download(glance, bob, image_id).status_code == 404
    assert _swift(alice, f"{container}/{image_id}", token=bob).status_code == 403

    member = requests.post(
        f"{glance.url}/v2/images/{image_id}/members", json={"member": bob["project_id"]}, headers=_h(alice), timeout=30
    )
    assert member.status_code == 200, member.text
    acl = _swift(alice, container, "HEAD").headers.get("X-Container-Read")
    assert acl == f"{bob['project_id']}:*"
    accept = requests.put(
        f"{glance.url}/v2/images/{image_id}/members/{bob['project_id']}",
        json={"status": "accepted"},
        headers=_h(bob),
        timeout=30,
    )
    assert accept.status_code == 200, accept.text
    got = _download(glance, bob, image_id)  # Bob's token, Alice's account
    assert got.status_code == 200, got.text
    assert got.content == data

    gone = requests.delete(
        f"{glance.url}/v2/images/{image_id}/members/{bob['project_id']}", headers=_h(alice), timeout=30
    )
    assert gone.status_code == 204, gone.text
    assert not _swift(alice, container, "HEAD").headers.get("X-Container-Read")
    assert _swift(alice, f"{container}/{image_id}", token=bob).status_code == 403
    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=60).status_code == 204
    assert container not in _leftovers(glance, alice)


def test_public_image_is_readable_by_everyone_community_is_not(glance, tenants):
    """glance_store's ACL: ``*:*`` for public only; a community image stays in its owner's account."""
    alice, image_id, data = _uploaded(glance, tenants, "alice", 2 * MiB + 5)  # segmented: listing via ACL too
    bob = tenants("bob")
    container = f"{glance.container}_{image_id}"

    def visibility(value: str) -> None:
        patch = [{"op": "replace", "path": "/visibility", "value": value}]
        headers = _h(alice, **{"Content-Type": "application/openstack-images-v2.1-json-patch"})
        resp = requests.patch(f"{glance.url}/v2/images/{image_id}", json=patch, headers=headers, timeout=30)
        assert resp.status_code == 200, resp.text

    visibility("public")
    assert _swift(alice, container, "HEAD").headers.get("X-Container-Read") == "*:*"
    got = _download(glance, bob, image_id)
    assert got.status_code == 200, got.text
    assert got.content == data

    visibility("community")
    assert not _swift(alice, container, "HEAD").headers.get("X-Container-Read")
    refused = _download(glance, bob, image_id)  # Glance lets Bob see it; Swift does not let him in
    assert refused.status_code == 403, (refused.status_code, refused.text)

    # Bob may not delete it: Glance's policy answers, and the data stays.
    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(bob), timeout=60).status_code == 403
    assert _swift(alice, f"{container}/{image_id}", "HEAD").status_code == 200
    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=60).status_code == 204
    assert container not in _leftovers(glance, alice)


def test_glance_direct_import_writes_with_the_importers_token(glance, tenants):
    """The import flow runs with the importing caller, as Glance's does; its ACL follows the image."""
    alice = tenants("alice")
    data = raw_bytes(1 * MiB + 11)
    image_id = _create(glance, alice, visibility="public")
    staged = requests.put(
        f"{glance.url}/v2/images/{image_id}/stage",
        data=data,
        headers=_h(alice, **{"Content-Type": "application/octet-stream"}),
        timeout=60,
    )
    assert staged.status_code == 204, staged.text
    started = requests.post(
        f"{glance.url}/v2/images/{image_id}/import",
        json={"method": {"name": "glance-direct"}},
        headers=_h(alice),
        timeout=30,
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while True:
        image = requests.get(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=30).json()
        if image["status"] == "active" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert image["status"] == "active", image
    container = f"{glance.container}_{image_id}"
    head = _swift(alice, f"{container}/{image_id}", "HEAD")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    assert _swift(alice, container, "HEAD").headers.get("X-Container-Read") == "*:*"
    got = _download(glance, tenants("bob"), image_id)
    assert got.status_code == 200 and got.content == data
    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=60).status_code == 204
    assert container not in _leftovers(glance, alice)


def test_bad_token_is_glances_401(glance, tenants):
    alice = tenants("alice")
    image_id = _create(glance, alice)
    bogus = {"token": uuid.uuid4().hex}
    resp = _upload(glance, bogus, image_id, raw_bytes(KiB))
    assert resp.status_code == 401, resp.text
    image = requests.get(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=30).json()
    assert image["status"] == "queued", image
    assert f"{glance.container}_{image_id}" not in _leftovers(glance, alice)
    assert requests.delete(f"{glance.url}/v2/images/{image_id}", headers=_h(alice), timeout=30).status_code == 204


def test_nothing_is_left_behind(glance, tenants):
    for name in ("alice", "bob"):
        assert _leftovers(glance, tenants(name)) == []
