"""The keystone flavor against a real keystone: the one tools/gate/run.sh starts.

tools/gate/run.sh runs these with GLANCELITE_GATE_ENV pointing at the gate it
started. Alone, ``GLANCELITE_GATE=1 .venv/bin/pytest -m gate tests/gate`` starts
its own (``run.sh up``, about 30 s; needs ``bash tools/gate/install.sh``).
Otherwise (tools/test.sh) they are skipped, saying why; CI runs them through
run.sh, after the unit and functional tests (tools/gate/README.md).
"""

from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = pytest.mark.gate


@pytest.fixture(scope="module")
def project_user(keystone, admin):
    """A fresh project and a user with only reader+member on it; deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    project = keystone.call(
        "POST", "/projects", admin["token"], json={"project": {"name": f"gate-{suffix}", "domain_id": "default"}}
    )["project"]
    user = keystone.call(
        "POST",
        "/users",
        admin["token"],
        json={"user": {"name": f"gate-user-{suffix}", "password": password, "domain_id": "default"}},
    )["user"]
    for role in ("reader", "member"):
        role_id = keystone.role_id(admin["token"], role)
        keystone.call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role_id}", admin["token"])
    token, _ = keystone.token(user["name"], password, project["name"])
    yield {"token": token, "project_id": project["id"], "user_id": user["id"]}
    keystone.call("DELETE", f"/users/{user['id']}", admin["token"])
    keystone.call("DELETE", f"/projects/{project['id']}", admin["token"])


@pytest.fixture
def images(gate):
    url = gate["GATE_IMAGE_URL"]
    created: list[tuple[str, str]] = []
    with requests.Session() as session:

        def create(token: str, **fields):
            body = {"name": "gate-keystone", "disk_format": "raw", "container_format": "bare", **fields}
            resp = session.post(f"{url}/v2/images", json=body, headers={"X-Auth-Token": token}, timeout=30)
            if resp.status_code == 201:
                created.append((resp.json()["id"], token))
            return resp

        session.create = create
        session.base = url
        yield session
        for image_id, token in created:
            session.delete(f"{url}/v2/images/{image_id}", headers={"X-Auth-Token": token}, timeout=30)


def _www_authenticate(resp) -> list[str]:
    return resp.raw.headers.getlist("WWW-Authenticate")


def test_version_documents_need_no_token(gate):
    url = gate["GATE_IMAGE_URL"]
    versions = requests.get(f"{url}/versions", timeout=30)
    assert versions.status_code == 200
    assert versions.json()["versions"]
    assert requests.get(f"{url}/", timeout=30).status_code == 300


def test_missing_token_is_401_pointing_at_keystone(gate):
    resp = requests.get(f"{gate['GATE_IMAGE_URL']}/v2/images", timeout=30)
    assert resp.status_code == 401
    assert _www_authenticate(resp) == [f'Keystone uri="{gate["GATE_KEYSTONE_URL"]}"']


def test_bad_token_is_401(gate):
    resp = requests.get(f"{gate['GATE_IMAGE_URL']}/v2/images", headers={"X-Auth-Token": "not-a-token"}, timeout=30)
    assert resp.status_code == 401
    assert _www_authenticate(resp) == [f'Keystone uri="{gate["GATE_KEYSTONE_URL"]}"']


def test_client_sent_identity_headers_are_not_trusted(gate):
    spoofed = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "p", "X-User-Id": "u"}
    resp = requests.get(f"{gate['GATE_IMAGE_URL']}/v2/images", headers=spoofed, timeout=30)
    assert resp.status_code == 401


def test_valid_token_is_accepted(gate, admin):
    resp = requests.get(f"{gate['GATE_IMAGE_URL']}/v2/images", headers={"X-Auth-Token": admin["token"]}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json()["images"], list)


def test_service_user_token_and_service_token(gate, keystone, admin):
    """The glance service user (roles service+admin) authenticates; X-Service-Token is validated too."""
    service_token, _ = keystone.token(
        gate["GATE_SERVICE_USER"], gate["GATE_SERVICE_PASSWORD"], gate["GATE_SERVICE_PROJECT"]
    )
    url = f"{gate['GATE_IMAGE_URL']}/v2/images"
    assert requests.get(url, headers={"X-Auth-Token": service_token}, timeout=30).status_code == 200
    both = {"X-Auth-Token": admin["token"], "X-Service-Token": service_token}
    assert requests.get(url, headers=both, timeout=30).status_code == 200


def test_owner_comes_from_the_token(images, admin, project_user):
    for caller in (admin, project_user):
        resp = images.create(caller["token"])
        assert resp.status_code == 201, resp.text
        assert resp.json()["owner"] == caller["project_id"]


def test_roles_come_from_the_token(images, project_user):
    """A reader+member user may not publicize (admin only) but may see its own image."""
    resp = images.create(project_user["token"], visibility="public")
    assert resp.status_code == 403, resp.text
    own = images.create(project_user["token"])
    assert own.status_code == 201, own.text
    got = images.get(
        f"{images.base}/v2/images/{own.json()['id']}", headers={"X-Auth-Token": project_user["token"]}, timeout=30
    )
    assert got.status_code == 200


def test_another_projects_private_image_is_invisible(images, admin, project_user):
    private = images.create(admin["token"], visibility="private")
    assert private.status_code == 201, private.text
    resp = images.get(
        f"{images.base}/v2/images/{private.json()['id']}",
        headers={"X-Auth-Token": project_user["token"]},
        timeout=30,
    )
    assert resp.status_code == 404


def test_system_scoped_token_is_refused_by_project_scoped_rules(gate, keystone):
    """Glance 33's image rules are project-scoped: a system admin's token is authenticated, then refused."""
    token, body = keystone.token(
        gate["GATE_ADMIN_USER"], gate["GATE_ADMIN_PASSWORD"], None, scope={"system": {"all": True}}
    )
    assert body.get("system") == {"all": True}, body
    url = gate["GATE_IMAGE_URL"]
    headers = {"X-Auth-Token": token}
    listing = requests.get(f"{url}/v2/images", headers=headers, timeout=30)
    assert listing.status_code == 403, listing.text
    assert "get_images" in listing.text
    create = requests.post(
        f"{url}/v2/images",
        json={"name": "system-scoped", "disk_format": "raw", "container_format": "bare"},
        headers=headers,
        timeout=30,
    )
    assert create.status_code == 403, create.text
    # Not a 401: the token itself is fine, and unscoped discovery still answers.
    assert requests.get(f"{url}/v2/info/import", headers=headers, timeout=30).status_code == 200
