"""The keystone flavor's behaviour that needs no keystone, so it runs in every CI run.

A request without a token never reaches keystone (auth_token only validates
tokens it is given), so a service configured against an unreachable keystone
still shows: 401 with auth_token's WWW-Authenticate, client-sent identity
headers stripped, and the version documents served without a token. The
token paths are in test_keystone.py, against the gate's real keystone.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.server import Server, free_port, write_config

# Nothing listens here: any attempt to reach keystone would fail the request.
KEYSTONE = f"http://127.0.0.1:{free_port()}"


def _keystone_flavor(root, **sections) -> Server:
    config = write_config(
        root,
        {
            "paste_deploy": {"flavor": "keystone"},
            "keystone_authtoken": {
                "www_authenticate_uri": KEYSTONE,
                "auth_url": KEYSTONE,
                "auth_type": "password",
                "username": "glance",
                "password": "unused",
                "project_name": "service",
                "user_domain_id": "default",
                "project_domain_id": "default",
            },
            **sections,
        },
    )
    return Server(config).start()


@pytest.fixture(scope="module")
def keystone_service(tmp_path_factory):
    server = _keystone_flavor(tmp_path_factory.mktemp("keystone-flavor"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def anonymous_service(tmp_path_factory):
    """allow_anonymous_access, with a policy file that lets anyone list (the defaults need a reader)."""
    root = tmp_path_factory.mktemp("keystone-anonymous")
    policy = root / "policy.json"
    policy.write_text(json.dumps({"get_images": "", "get_image": ""}))
    server = _keystone_flavor(
        root, DEFAULT={"allow_anonymous_access": "true"}, oslo_policy={"policy_file": str(policy)}
    )
    yield server
    server.stop()


def test_versions_and_healthcheck_need_no_token(keystone_service):
    assert requests.get(f"{keystone_service.url}/versions", timeout=10).status_code == 200
    assert requests.get(f"{keystone_service.url}/", timeout=10).status_code == 300
    assert requests.get(f"{keystone_service.url}/v3/anything", timeout=10).status_code == 300
    assert requests.get(f"{keystone_service.url}/healthcheck", timeout=10).status_code == 200


def test_no_token_is_401_with_one_www_authenticate(keystone_service):
    resp = requests.get(f"{keystone_service.url}/v2/images", headers={"Accept": "application/json"}, timeout=10)
    assert resp.status_code == 401
    assert resp.raw.headers.getlist("WWW-Authenticate") == [f'Keystone uri="{KEYSTONE}"']
    body = resp.json()
    assert (body["code"], body["title"]) == ("401 Unauthorized", "Unauthorized")


def test_token_that_cannot_be_validated_is_401(keystone_service):
    """COMPAT: with delay_auth_decision, an unreachable keystone makes the token invalid: 401, not 5xx."""
    resp = requests.get(f"{keystone_service.url}/v2/images", headers={"X-Auth-Token": "gAAAA-token"}, timeout=60)
    assert resp.status_code == 401
    assert resp.raw.headers.getlist("WWW-Authenticate") == [f'Keystone uri="{KEYSTONE}"']


@pytest.mark.parametrize("path", ["/v2/images", "/v2.1/images", "/v2/schemas/image"])
def test_client_sent_identity_headers_are_stripped(keystone_service, path):
    spoofed = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "p1", "X-User-Id": "u1"}
    resp = requests.get(f"{keystone_service.url}{path}", headers=spoofed, timeout=10)
    assert resp.status_code == 401


def test_anonymous_access_reads_but_changes_nothing(anonymous_service):
    url = anonymous_service.url
    listing = requests.get(f"{url}/v2/images", timeout=10)
    assert listing.status_code == 200, listing.text
    assert listing.json()["images"] == []
    body = {"name": "anon", "disk_format": "raw", "container_format": "bare"}
    create = requests.post(f"{url}/v2/images", json=body, headers={"Accept": "application/json"}, timeout=10)
    assert create.status_code == 403, create.text
    assert "Read-only access" in create.json()["message"]
    # Spoofed identity is still stripped: the caller stays anonymous, not admin.
    spoofed = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "p1", "Accept": "application/json"}
    assert requests.post(f"{url}/v2/images", json=body, headers=spoofed, timeout=10).status_code == 403


def test_anonymous_caller_is_held_to_the_default_rules(tmp_path):
    """Without a policy file granting it, an anonymous caller (no roles) may not even list."""
    server = _keystone_flavor(tmp_path, DEFAULT={"allow_anonymous_access": "true"})
    try:
        resp = requests.get(f"{server.url}/v2/images", timeout=10)
        assert resp.status_code == 403, resp.text
    finally:
        server.stop()
