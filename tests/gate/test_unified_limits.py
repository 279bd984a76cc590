"""Keystone unified limits ([DEFAULT] use_keystone_limits) against the gate's real keystone.

The image service the gate provisions gets registered limits (made here if
missing, removed afterwards); each test makes a fresh project with its own
limits. A glancelite of our own runs with flavor keystone and [oslo_limit]
reading the limits as a user holding ``reader`` on the system, the setup
README.rst recommends.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.gate.conftest import service_authtoken
from tests.support.server import Server, write_config

pytestmark = pytest.mark.gate

MiB = 1024 * 1024
RESOURCES = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def image_service(keystone, admin):
    """The gate's image service, its public endpoint, and registered limits for the four resources."""
    token = admin["token"]
    service = keystone.call("GET", "/services?type=image", token)["services"][0]
    endpoint = keystone.call("GET", f"/endpoints?service_id={service['id']}&interface=public", token)["endpoints"][0]
    # oslo.limit looks limits up by the endpoint's service and region: both must match.
    region = endpoint["region_id"]
    made, defaults = [], {}
    for name in RESOURCES:
        found = keystone.call("GET", f"/registered_limits?service_id={service['id']}&resource_name={name}", token)[
            "registered_limits"
        ]
        if not found:
            body = {
                "registered_limits": [
                    {"service_id": service["id"], "region_id": region, "resource_name": name, "default_limit": 1000}
                ]
            }
            found = keystone.call("POST", "/registered_limits", token, json=body)["registered_limits"]
            made.append(found[0]["id"])
        defaults[name] = found[0]["default_limit"]
    yield {"service_id": service["id"], "region_id": region, "endpoint_id": endpoint["id"], "defaults": defaults}
    for limit_id in made:
        keystone.call("DELETE", f"/registered_limits/{limit_id}", token)


@pytest.fixture(scope="module")
def limits_reader(keystone, admin):
    """A user with reader on the system: what oslo.limit needs to read any project's limits and the endpoint."""
    name, password = f"gate-limits-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    user = keystone.call(
        "POST", "/users", admin["token"], json={"user": {"name": name, "password": password, "domain_id": "default"}}
    )["user"]
    keystone.call(
        "PUT", f"/system/users/{user['id']}/roles/{keystone.role_id(admin['token'], 'reader')}", admin["token"]
    )
    yield {"name": name, "password": password}
    keystone.call("DELETE", f"/users/{user['id']}", admin["token"])


@pytest.fixture(scope="module")
def limited(tmp_path_factory, gate, image_service, limits_reader):
    """Our own glancelite: flavor keystone, use_keystone_limits, [oslo_limit] as the system reader."""
    root = tmp_path_factory.mktemp("unified-limits")
    url = gate["GATE_KEYSTONE_URL"]
    config = write_config(
        root,
        {
            "DEFAULT": {"use_keystone_limits": "true", "enabled_import_methods": "glance-direct,web-download"},
            "paste_deploy": {"flavor": "keystone"},
            "keystone_authtoken": service_authtoken(gate),
            "oslo_limit": {
                "auth_url": url,
                "auth_type": "password",
                "username": limits_reader["name"],
                "password": limits_reader["password"],
                "user_domain_id": "default",
                "system_scope": "all",
                "endpoint_id": image_service["endpoint_id"],
            },
        },
    )
    server = Server(config).start()
    server.root = root
    yield server
    server.stop()


@pytest.fixture
def project(keystone, admin, image_service, limited):
    """make(**limits): a fresh project with those per-project limits and a member user; a client for it."""
    token = admin["token"]
    made: dict[str, list] = {"projects": [], "users": [], "limits": []}

    def make(**limits):
        suffix, password = uuid.uuid4().hex[:8], uuid.uuid4().hex
        proj = keystone.call(
            "POST", "/projects", token, json={"project": {"name": f"gate-ul-{suffix}", "domain_id": "default"}}
        )["project"]
        made["projects"].append(proj["id"])
        user = keystone.call(
            "POST",
            "/users",
            token,
            json={"user": {"name": f"gate-ul-{suffix}", "password": password, "domain_id": "default"}},
        )["user"]
        made["users"].append(user["id"])
        for role in ("reader", "member"):
            keystone.call(
                "PUT", f"/projects/{proj['id']}/users/{user['id']}/roles/{keystone.role_id(token, role)}", token
            )
        if limits:
            body = {
                "limits": [
                    {
                        "service_id": image_service["service_id"],
                        "region_id": image_service["region_id"],
                        "project_id": proj["id"],
                        "resource_name": name,
                        "resource_limit": value,
                    }
                    for name, value in limits.items()
                ]
            }
            made["limits"] += [lim["id"] for lim in keystone.call("POST", "/limits", token, json=body)["limits"]]
        user_token, _ = keystone.token(user["name"], password, proj["name"])
        return Client(limited.url, user_token, proj["id"])

    yield make
    for limit_id in made["limits"]:
        keystone.call("DELETE", f"/limits/{limit_id}", token)
    for user_id in made["users"]:
        keystone.call("DELETE", f"/users/{user_id}", token)
    for project_id in made["projects"]:
        keystone.call("DELETE", f"/projects/{project_id}", token)


class Client:
    def __init__(self, url: str, token: str, project_id: str):
        self.url, self.project_id = url, project_id
        self.session = requests.Session()
        self.session.headers.update({"X-Auth-Token": token, **JSON})

    def create(self):
        body = {"name": "gate-limits", "disk_format": "raw", "container_format": "bare"}
        return self.session.post(f"{self.url}/v2/images", json=body, timeout=30)

    def new_image(self) -> str:
        resp = self.create()
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def put(self, image_id: str, what: str, data: bytes):
        headers = {"Content-Type": "application/octet-stream"}
        return self.session.put(f"{self.url}/v2/images/{image_id}/{what}", data=data, headers=headers, timeout=60)

    def show(self, image_id: str) -> dict:
        return self.session.get(f"{self.url}/v2/images/{image_id}", timeout=30).json()

    def usage(self) -> dict:
        resp = self.session.get(f"{self.url}/v2/info/usage", timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()["usage"]


def over_limit(resp, project_id: str, text: str) -> None:
    assert resp.status_code == 413, resp.text
    message = resp.json()["message"]
    assert message.startswith("The request returned a 413 Request Entity Too Large."), message
    assert f"Project {project_id} is over a limit for" in message and text in message, message


def test_image_count_total_refuses_create(project):
    client = project(image_count_total=2)
    client.new_image()
    client.new_image()
    over_limit(
        client.create(), client.project_id, "image_count_total is over limit of 2 due to current usage 2 and delta 1"
    )


def test_image_size_total_refuses_the_next_upload(project):
    """Soft limit, as in Glance: usage is compared before the data arrives, so the first upload may go over."""
    client = project(image_size_total=1)
    first = client.new_image()
    assert client.put(first, "file", b"x" * (2 * MiB)).status_code == 204
    second = client.new_image()
    over_limit(
        client.put(second, "file", b"y" * MiB),
        client.project_id,
        "image_size_total is over limit of 1 due to current usage 2 and delta 0",
    )
    image = client.show(second)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert client.session.get(f"{client.url}/v2/images/{second}/file", timeout=30).status_code == 204


def test_image_stage_total_refuses_the_next_stage(project, limited):
    client = project(image_stage_total=1)
    first = client.new_image()
    assert client.put(first, "stage", b"x" * (2 * MiB)).status_code == 204
    second = client.new_image()
    over_limit(
        client.put(second, "stage", b"y" * MiB),
        client.project_id,
        "image_stage_total is over limit of 1 due to current usage 2 and delta 0",
    )
    assert client.show(second)["status"] == "queued"
    assert not (limited.root / "staging" / second).exists()


def test_image_count_uploading_counts_the_image_being_staged(project):
    client = project(image_count_uploading=1)
    first = client.new_image()
    assert client.put(first, "stage", b"x" * 1024).status_code == 204  # now uploading
    second = client.new_image()
    over_limit(
        client.put(second, "stage", b"y" * 1024),
        client.project_id,
        "image_count_uploading is over limit of 1 due to current usage 2 and delta 0",
    )
    over_limit(client.put(second, "file", b"y" * 1024), client.project_id, "image_count_uploading")
    assert client.show(second)["status"] == "queued"


def test_glance_direct_import_adds_the_staged_size(project):
    client = project(image_size_total=1)
    image_id = client.new_image()
    assert client.put(image_id, "stage", b"x" * (2 * MiB)).status_code == 204
    resp = client.session.post(
        f"{client.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, timeout=30
    )
    over_limit(resp, client.project_id, "image_size_total is over limit of 1 due to current usage 0 and delta 2")
    assert client.show(image_id)["status"] == "uploading"  # still staged: importable once space is freed


def test_usage_reports_limits_and_usage(project, image_service):
    client = project(image_size_total=10, image_count_total=5)
    defaults = image_service["defaults"]
    assert client.usage() == {
        "image_size_total": {"limit": 10, "usage": 0},
        "image_stage_total": {"limit": defaults["image_stage_total"], "usage": 0},
        "image_count_total": {"limit": 5, "usage": 0},
        "image_count_uploading": {"limit": defaults["image_count_uploading"], "usage": 0},
    }
    uploaded = client.new_image()
    assert client.put(uploaded, "file", b"x" * (3 * MiB)).status_code == 204
    staged = client.new_image()
    assert client.put(staged, "stage", b"y" * (2 * MiB)).status_code == 204
    assert client.usage() == {
        "image_size_total": {"limit": 10, "usage": 3},
        "image_stage_total": {"limit": defaults["image_stage_total"], "usage": 2},
        "image_count_total": {"limit": 5, "usage": 2},
        "image_count_uploading": {"limit": defaults["image_count_uploading"], "usage": 1},
    }
