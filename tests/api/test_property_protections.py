"""Property protections ([DEFAULT] property_protection_file) against the real application, in process.

A bad protection file stopping glancelite-api is tests/functional/test_property_protections.py.

The scenarios follow Glance's functional tests (glance/tests/functional/v2/test_images.py
test_property_protections_*), with the same kind of rule files, roles and policies formats.
"""

from __future__ import annotations

import textwrap

import pytest
import requests

from tests.conftest import identity
from tests.support.inprocess import InProcessService
from tests.support.server import write_config

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
JSON = {"Accept": "application/json"}

ROLES_FILE = """
[^x_owner_.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[spl_create_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin

[spl_read_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin

[spl_update_prop]
create = admin,spl_role
read = admin,spl_role
update = admin,spl_role
delete = admin

[spl_delete_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin,spl_role

[spl_delete_empty_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin,spl_role

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[^x_none_permitted.*]
create = !
read = !
update = !
delete = !

[x_none_read]
create = admin,member
read = !
update = !
delete = !

[x_none_update]
create = admin,member
read = admin,member
update = !
delete = admin,member

[x_none_delete]
create = admin,member
read = admin,member
update = admin,member
delete = !

[x_case_insensitive]
create = admin,Member
read = admin,Member
update = admin,Member
delete = admin,Member

[x_empty_update]
create = admin
read = admin
update =
delete = admin

[.*]
create = admin
read = admin
update = admin
delete = admin
"""

POLICIES_FILE = """
[spl_creator_policy]
create = glance_creator
read = glance_creator
update = context_is_admin
delete = context_is_admin

[spl_default_policy]
create = context_is_admin
read = default
update = context_is_admin
delete = context_is_admin

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[^x_none_permitted.*]
create = !
read = !
update = !
delete = !

[.*]
create = context_is_admin
read = context_is_admin
update = context_is_admin
delete = context_is_admin
"""

PROJECT = "project-a"
ADMIN = identity(PROJECT, "admin,reader,member", "admin-user")
MEMBER = identity(PROJECT, "reader,member")
SPL = identity(PROJECT, "reader,member,spl_role")
JOE = identity(PROJECT, "reader,member,joe_soap")
RANDOM = identity(PROJECT, "reader,random_role")
IMAGE = {"disk_format": "raw", "container_format": "bare"}


def start(tmp_path_factory, name: str, rules: str, extra: dict | None = None) -> InProcessService:
    root = tmp_path_factory.mktemp(name)
    (root / "property-protections.conf").write_text(textwrap.dedent(rules))
    sections = {"DEFAULT": {"property_protection_file": str(root / "property-protections.conf"), "workers": "1"}}
    for group, values in (extra or {}).items():
        sections.setdefault(group, {}).update(values)
    return InProcessService(write_config(root, sections)).start()


@pytest.fixture(scope="module")
def roles(tmp_path_factory):
    server = start(tmp_path_factory, "pp-roles", ROLES_FILE)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("pp-policy")
    (root / "policy.yaml").write_text('"glance_creator": "role:admin or role:spl_role"\n')
    server = start(
        tmp_path_factory,
        "pp-policies",
        POLICIES_FILE,
        {
            "DEFAULT": {"property_protection_rule_format": "policies"},
            "oslo_policy": {"policy_file": str(root / "policy.yaml")},
        },
    )
    yield server.url
    server.stop()


def create(url: str, who: dict, **props) -> requests.Response:
    return requests.post(f"{url}/v2/images", json={"name": "pp", **IMAGE, **props}, headers={**who, **JSON})


def created(url: str, who: dict, **props) -> dict:
    response = create(url, who, **props)
    assert response.status_code == 201, response.text
    return response.json()


def patch(url: str, image_id: str, who: dict, *ops: dict) -> requests.Response:
    return requests.patch(f"{url}/v2/images/{image_id}", json=list(ops), headers={**who, **PATCH, **JSON})


def show(url: str, image_id: str, who: dict) -> dict:
    response = requests.get(f"{url}/v2/images/{image_id}", headers=who)
    assert response.status_code == 200, response.text
    return response.json()


def reserved(response: requests.Response, name: str) -> bool:
    return response.status_code == 403 and f"Attribute '{name}' is reserved." in response.json()["message"]


# ---------------------------------------------------------------- roles


def test_member_may_create_only_what_its_roles_allow(roles):
    refused = create(roles, MEMBER, foo="bar", x_owner_foo="o_s_bar")
    assert reserved(refused, "foo"), refused.text
    image = created(roles, MEMBER, x_owner_foo="o_s_bar")
    assert image["x_owner_foo"] == "o_s_bar"
    assert show(roles, image["id"], MEMBER)["x_owner_foo"] == "o_s_bar"
    # Role names in the file are compared in lower case.
    assert created(roles, MEMBER, x_case_insensitive="1")["x_case_insensitive"] == "1"


def test_base_attributes_and_tags_are_not_protected(roles):
    """The catch-all [.*] is admin-only, yet a member still sets name, min_ram, tags..."""
    image = created(roles, MEMBER, tags=["t1"], min_ram=64)
    response = patch(
        roles,
        image["id"],
        MEMBER,
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/tags", "value": ["t2"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "renamed" and response.json()["tags"] == ["t2"]


def test_spl_role_create_update_delete(roles):
    image = created(
        roles,
        SPL,
        spl_create_prop="create_bar",
        spl_read_prop="read_bar",
        spl_update_prop="update_bar",
        spl_delete_prop="delete_bar",
        spl_delete_empty_prop="",
    )
    image_id = image["id"]
    assert image["spl_read_prop"] == "read_bar"

    # Replacing a property spl_role may read but not update: 403, and nothing of the patch applied.
    response = patch(
        roles,
        image_id,
        SPL,
        {"op": "replace", "path": "/spl_update_prop", "value": "u"},
        {"op": "replace", "path": "/spl_read_prop", "value": "r"},
    )
    assert reserved(response, "spl_read_prop"), response.text
    after = show(roles, image_id, ADMIN)
    assert (after["spl_read_prop"], after["spl_update_prop"]) == ("read_bar", "update_bar")

    # Creating a property only admin may create, removing ones spl_role may not delete.
    for op in (
        {"op": "add", "path": "/spl_new_prop", "value": "new"},
        {"op": "remove", "path": "/spl_create_prop"},
    ):
        response = patch(roles, image_id, SPL, op)
        assert reserved(response, op["path"][1:]), (op, response.text)

    # Updating an empty value first (Glance bug #1332103: '' is a value, not an absent property).
    response = patch(
        roles,
        image_id,
        SPL,
        {"op": "replace", "path": "/spl_update_prop", "value": ""},
        {"op": "replace", "path": "/spl_update_prop", "value": "u"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["spl_update_prop"] == "u"

    response = patch(
        roles,
        image_id,
        SPL,
        {"op": "remove", "path": "/spl_delete_prop"},
        {"op": "remove", "path": "/spl_delete_empty_prop"},
    )
    assert response.status_code == 200, response.text
    assert "spl_delete_prop" not in response.json() and "spl_delete_empty_prop" not in response.json()

    # 'add' of an existing property is an update: spl_role may update spl_update_prop, not spl_read_prop.
    assert patch(roles, image_id, SPL, {"op": "add", "path": "/spl_update_prop", "value": "v"}).status_code == 200
    response = patch(roles, image_id, SPL, {"op": "add", "path": "/spl_read_prop", "value": "v"})
    assert reserved(response, "spl_read_prop"), response.text

    assert requests.delete(f"{roles}/v2/images/{image_id}", headers=ADMIN).status_code == 204


def test_properties_the_caller_cannot_read_are_absent_and_do_not_exist_for_it(roles):
    image = created(roles, ADMIN, spl_read_prop="secret", x_owner_foo="shared")
    image_id = image["id"]
    assert image["spl_read_prop"] == "secret"

    seen = show(roles, image_id, MEMBER)
    assert "spl_read_prop" not in seen and seen["x_owner_foo"] == "shared"
    listed = requests.get(f"{roles}/v2/images", headers=MEMBER).json()["images"]
    mine = next(i for i in listed if i["id"] == image_id)
    assert "spl_read_prop" not in mine and mine["x_owner_foo"] == "shared"
    # COMPAT: as in Glance, the listing filter still matches a property the caller cannot read.
    filtered = requests.get(f"{roles}/v2/images?spl_read_prop=secret", headers=MEMBER).json()["images"]
    assert [i["id"] for i in filtered] == [image_id] and "spl_read_prop" not in filtered[0]

    # Replacing or removing it: it does not exist for the member (409), as in Glance.
    for op in (
        {"op": "replace", "path": "/spl_read_prop", "value": "x"},
        {"op": "remove", "path": "/spl_read_prop"},
    ):
        response = patch(roles, image_id, MEMBER, op)
        assert response.status_code == 409, response.text
        assert "Property spl_read_prop does not exist." in response.json()["message"]

    # A member's PATCH leaves the property it cannot see alone; its own response leaves it out.
    response = patch(roles, image_id, MEMBER, {"op": "replace", "path": "/x_owner_foo", "value": "changed"})
    assert response.status_code == 200, response.text
    assert response.json()["x_owner_foo"] == "changed" and "spl_read_prop" not in response.json()
    assert show(roles, image_id, ADMIN)["spl_read_prop"] == "secret"


def test_at_sign_allows_anyone(roles):
    image = created(roles, JOE, x_all_permitted_joe_soap="1")
    assert show(roles, image["id"], ADMIN)["x_all_permitted_joe_soap"] == "1"
    assert show(roles, image["id"], JOE)["x_all_permitted_joe_soap"] == "1"
    for who, value in ((ADMIN, "2"), (JOE, "3")):
        response = patch(
            roles, image["id"], who, {"op": "replace", "path": "/x_all_permitted_joe_soap", "value": value}
        )
        assert response.status_code == 200, response.text
        assert response.json()["x_all_permitted_joe_soap"] == value
    two = created(roles, ADMIN, x_all_permitted_a="1", x_all_permitted_b="2")
    for who, name in ((ADMIN, "x_all_permitted_a"), (JOE, "x_all_permitted_b")):
        response = patch(roles, two["id"], who, {"op": "remove", "path": f"/{name}"})
        assert response.status_code == 200, response.text
        assert name not in response.json()


def test_exclamation_mark_allows_no_one(roles):
    for who, name in ((ADMIN, "x_none_permitted_admin"), (JOE, "x_none_permitted_joe_soap")):
        assert reserved(create(roles, who, **{name: "1"}), name)

    # x_none_read: created by admin, read by no one, not even in the POST response.
    image = created(roles, ADMIN, x_none_read="1")
    assert "x_none_read" not in image
    for who in (ADMIN, JOE):
        assert "x_none_read" not in show(roles, image["id"], who)

    image = created(roles, ADMIN, x_none_update="1")
    assert image["x_none_update"] == "1"
    for who in (ADMIN, JOE):
        response = patch(roles, image["id"], who, {"op": "replace", "path": "/x_none_update", "value": "2"})
        assert reserved(response, "x_none_update"), response.text

    image = created(roles, ADMIN, x_none_delete="1")
    for who in (ADMIN, JOE):
        response = patch(roles, image["id"], who, {"op": "remove", "path": "/x_none_delete"})
        assert reserved(response, "x_none_delete"), response.text
    assert show(roles, image["id"], ADMIN)["x_none_delete"] == "1"


def test_an_empty_operation_allows_no_one(roles):
    image = created(roles, ADMIN, x_empty_update="1")
    response = patch(roles, image["id"], ADMIN, {"op": "replace", "path": "/x_empty_update", "value": "2"})
    assert reserved(response, "x_empty_update"), response.text
    assert patch(roles, image["id"], ADMIN, {"op": "remove", "path": "/x_empty_update"}).status_code == 200


# ---------------------------------------------------------------- policies


def test_policies_format(policies):
    assert reserved(create(policies, MEMBER, foo="bar"), "foo")
    assert created(policies, ADMIN, foo="bar")["foo"] == "bar"
    # glance_creator (role:admin or role:spl_role) comes from the operator's policy file.
    assert created(policies, SPL, spl_creator_policy="creator_value")["spl_creator_policy"] == "creator_value"

    image = created(policies, ADMIN, spl_creator_policy="creator_bar", spl_default_policy="default_bar")
    image_id = image["id"]
    response = patch(
        policies,
        image_id,
        ADMIN,
        {"op": "replace", "path": "/spl_creator_policy", "value": ""},
        {"op": "replace", "path": "/spl_creator_policy", "value": "r"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["spl_creator_policy"] == "r"
    response = patch(policies, image_id, SPL, {"op": "replace", "path": "/spl_creator_policy", "value": "z"})
    assert reserved(response, "spl_creator_policy"), response.text

    # 'default' is Glance's empty rule: anyone reads spl_default_policy; glance_creator is not random_role.
    seen = show(policies, image_id, RANDOM)
    assert seen["spl_default_policy"] == "default_bar" and "spl_creator_policy" not in seen

    response = patch(policies, image_id, ADMIN, {"op": "remove", "path": "/spl_creator_policy"})
    assert response.status_code == 200, response.text
    assert "spl_creator_policy" not in response.json()

    assert created(policies, JOE, x_all_permitted_p="1")["x_all_permitted_p"] == "1"
    assert reserved(create(policies, ADMIN, x_none_permitted_p="1"), "x_none_permitted_p")


# ---------------------------------------------------------------- no catch-all


def test_a_property_no_section_matches_is_refused_to_everyone(tmp_path_factory):
    server = start(tmp_path_factory, "pp-nomatch", "[^x_owner_.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n")
    try:
        assert reserved(create(server.url, ADMIN, unmatched="1"), "unmatched")
        image = created(server.url, MEMBER, x_owner_a="1")
        response = patch(server.url, image["id"], ADMIN, {"op": "add", "path": "/other", "value": "1"})
        assert reserved(response, "other"), response.text
    finally:
        server.stop()
