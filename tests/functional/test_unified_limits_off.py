"""[DEFAULT] use_keystone_limits off (the default): nothing asks keystone, user_storage_quota still applies.

The [oslo_limit] section points at a port where nothing listens: any attempt to
read limits would turn the requests below into 500s.
"""

from __future__ import annotations

import pytest
import requests

from tests.support.server import Server, free_port, write_config

NOWHERE = f"http://127.0.0.1:{free_port()}"
CALLER = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "p-off",
    "X-Roles": "reader,member",
    "Accept": "application/json",
}
OCTETS = {**CALLER, "Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits-off")
    config = write_config(
        root,
        {
            "DEFAULT": {"use_keystone_limits": "false", "user_storage_quota": "1500"},
            "oslo_limit": {
                "auth_url": NOWHERE,
                "auth_type": "password",
                "username": "x",
                "password": "x",
                "endpoint_id": "e",
            },
        },
    )
    server = Server(config).start()
    yield server
    server.stop()


def new_image(url: str) -> str:
    body = {"name": "off", "disk_format": "raw", "container_format": "bare"}
    resp = requests.post(f"{url}/v2/images", json=body, headers=CALLER, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_off_changes_nothing(service):
    url = service.url
    assert requests.get(f"{url}/v2/info/usage", headers=CALLER, timeout=30).json() == {"usage": {}}
    uploaded = new_image(url)
    assert (
        requests.put(f"{url}/v2/images/{uploaded}/file", data=b"x" * 1000, headers=OCTETS, timeout=30).status_code
        == 204
    )
    staged = new_image(url)
    assert (
        requests.put(f"{url}/v2/images/{staged}/stage", data=b"y" * 1000, headers=OCTETS, timeout=30).status_code == 204
    )
    # user_storage_quota (1500 bytes) is still the storage limit: 1000 stored, 1000 more do not fit.
    refused = new_image(url)
    resp = requests.put(f"{url}/v2/images/{refused}/file", data=b"z" * 1000, headers=OCTETS, timeout=30)
    assert resp.status_code == 413, resp.text
    assert "storage quota" in resp.json()["message"]
