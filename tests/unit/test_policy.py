"""Policy: Glance's default rules in code, an operator's policy file overriding them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from glancelite import config, errors
from glancelite.context import RequestContext
from glancelite.services.policy import Policy, image_target

OWNER = RequestContext(project_id="A", user_id="u", roles=("reader", "member"))
STRANGER = RequestContext(project_id="B", user_id="v", roles=("reader", "member"))
READER = RequestContext(project_id="A", user_id="r", roles=("reader",))
ADMIN = RequestContext(project_id="Z", user_id="a", roles=("admin",), is_admin=True)
NOAUTH = RequestContext.admin()


def image(owner="A", visibility="private"):
    return SimpleNamespace(id="i", owner=owner, visibility=visibility)


@pytest.fixture(scope="module")
def policy():
    return Policy()


def test_default_image_rules(policy):
    private, public = image_target(image()), image_target(image(visibility="public"))
    assert policy.check(OWNER, "get_image", private) and not policy.check(STRANGER, "get_image", private)
    assert policy.check(STRANGER, "get_image", public)
    assert policy.check(OWNER, "modify_image", private) and not policy.check(STRANGER, "modify_image", public)
    assert not policy.check(READER, "modify_image", private)
    shared_member = image_target(image(visibility="shared"), member_project="B")
    assert policy.check(STRANGER, "get_image", shared_member)
    assert policy.check(OWNER, "add_image", {"project_id": "A", "owner": "A"})
    assert not policy.check(OWNER, "add_image", {"project_id": "A", "owner": "B"})


@pytest.mark.parametrize(
    "rule", ["publicize_image", "copy_image", "tasks_api_access", "stores_info_detail", "delete_image_location"]
)
def test_admin_only_rules(policy, rule):
    assert not policy.check(OWNER, rule, image_target(image()))
    assert policy.check(ADMIN, rule, image_target(image()))
    assert policy.check(NOAUTH, rule, {})


def test_service_role_sees_store_detail(policy):
    service = RequestContext(project_id="S", roles=("service",))
    assert policy.check(service, "stores_info_detail", {})


def test_enforce_raises_forbidden(policy):
    with pytest.raises(errors.Forbidden, match="copy_image"):
        policy.enforce(OWNER, "copy_image", {})


def test_policy_file_overrides_defaults(tmp_path):
    rules = tmp_path / "policy.yaml"
    rules.write_text('"add_image": "!"\n"copy_image": "role:member"\n')
    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text(
        f"[DEFAULT]\n[database]\nconnection = sqlite:///{tmp_path / 'g.sqlite'}\n"
        f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n"
        f"[oslo_policy]\npolicy_file = {rules}\n"
    )
    policy = Policy(config.load([str(conf_file)]).conf)
    assert not policy.check(OWNER, "add_image", {"project_id": "A", "owner": "A"})
    assert policy.check(OWNER, "copy_image", {})
    # Rules the file does not name keep their defaults.
    assert not policy.check(OWNER, "publicize_image", {})
    # Glance's unauthenticated admin still passes everything.
    assert policy.check(NOAUTH, "add_image", {})


def test_broken_policy_file_is_a_config_error(tmp_path):
    rules = tmp_path / "policy.yaml"
    rules.write_text("add_image: [unclosed\n")
    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text(
        f"[DEFAULT]\n[database]\nconnection = sqlite:///{tmp_path / 'g.sqlite'}\n"
        f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n"
        f"[oslo_policy]\npolicy_file = {rules}\n"
    )
    with pytest.raises(errors.ConfigError):
        Policy(config.load([str(conf_file)]).conf)


def test_is_default_follows_overrides(tmp_path):
    assert Policy().is_default("get_image")
    rules = tmp_path / "policy.yaml"
    rules.write_text('"get_image": "role:admin or project_id:%(project_id)s"\n')
    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text(
        f"[DEFAULT]\n[database]\nconnection = sqlite:///{tmp_path / 'g.sqlite'}\n"
        f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n"
        f"[oslo_policy]\npolicy_file = {rules}\n"
    )
    policy = Policy(config.load([str(conf_file)]).conf)
    assert not policy.is_default("get_image") and policy.is_default("get_images")
    targets = [image_target(image(owner=o, visibility="public")) for o in ("A", "B", "A")]
    assert policy.check_many(OWNER, "get_image", targets) == [True, False, True]
