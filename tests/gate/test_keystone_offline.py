"""The keystone flavor's behaviour that needs no keystone, so it runs in every CI run.

A request without a token never reaches keystone (auth_token only validates
tokens it is given), so a service configured against an unreachable keystone
still shows: 401 with auth_token's WWW-Authenticate, client-sent identity
headers stripped, and the version documents served without a token. The
token paths are in test_keystone.py, against the gate's real keystone.
"""

from __future__ import annotations

import pytest
import requests

from tests.support.server import Server, free_port, write_config

# Nothing listens here: any attempt to reach keystone would fail the request.
KEYSTONE = f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def keystone_service(tmp_path_factory):
    config = write_config(
        tmp_path_factory.mktemp("keystone-flavor"),
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
        },
    )
    server = Server(config).start()
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
