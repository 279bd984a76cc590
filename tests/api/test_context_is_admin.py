"""Who counts as admin follows the policy's context_is_admin rule, as in Glance, not the role name alone."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import identity
from tests.support.inprocess import InProcessService
from tests.support.server import write_config


@pytest.fixture(scope="module")
def superuser_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctx-admin")
    policy = root / "policy.json"
    policy.write_text(json.dumps({"context_is_admin": "role:superuser"}))
    server = InProcessService(write_config(root, {"oslo_policy": {"policy_file": str(policy)}})).start()
    yield server
    server.stop()


def test_an_operator_defined_admin_role_sees_other_projects_private_images(superuser_service):
    url = superuser_service.url
    owner = identity("project-b", "reader,member", "user-b")
    image = requests.post(url + "/v2/images", json={"name": "b-private", "visibility": "private"}, headers=owner)
    assert image.status_code == 201, image.text
    image_id = image.json()["id"]

    superuser = identity("project-a", "reader,member,superuser", "user-s")
    assert requests.get(url + f"/v2/images/{image_id}", headers=superuser).status_code == 200
    listed = requests.get(url + "/v2/images", headers=superuser).json()["images"]
    assert image_id in [i["id"] for i in listed]

    plain_admin_role = identity("project-a", "reader,member,admin", "user-a")
    assert requests.get(url + f"/v2/images/{image_id}", headers=plain_admin_role).status_code == 404
