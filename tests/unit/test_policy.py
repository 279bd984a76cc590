"""Policy: Glance's default rules in code, an operator's policy file overriding them."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from glancelite import config, errors
from glancelite.context import RequestContext
from glancelite.services import policy as policy_module
from glancelite.services.policy import Policy, image_target

OWNER = RequestContext(project_id="A", user_id="u", roles=("reader", "member"))
STRANGER = RequestContext(project_id="B", user_id="v", roles=("reader", "member"))
READER = RequestContext(project_id="A", user_id="r", roles=("reader",))
ADMIN = RequestContext(project_id="Z", user_id="a", roles=("admin",), is_admin=True)
NOAUTH = RequestContext.admin()


def image(owner="A", visibility="private"):
    return SimpleNamespace(id="i", owner=owner, visibility=visibility)


def _policy_with(tmp_path, oslo_policy_section: str) -> Policy:
    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text(
        f"[DEFAULT]\n[database]\nconnection = sqlite:///{tmp_path / 'g.sqlite'}\n"
        f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n"
        f"[oslo_policy]\n{oslo_policy_section}\n"
    )
    return Policy(config.load([str(conf_file)]).conf)


@pytest.fixture(scope="module")
def policy():
    return Policy(config.policy_conf())


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
    policy = _policy_with(tmp_path, f"policy_file = {rules}")
    assert not policy.check(OWNER, "add_image", {"project_id": "A", "owner": "A"})
    assert policy.check(OWNER, "copy_image", {})
    # Rules the file does not name keep their defaults.
    assert not policy.check(OWNER, "publicize_image", {})
    # Glance's unauthenticated admin still passes everything.
    assert policy.check(NOAUTH, "add_image", {})


def test_broken_policy_file_is_a_config_error(tmp_path):
    rules = tmp_path / "policy.yaml"
    rules.write_text("add_image: [unclosed\n")
    with pytest.raises(errors.ConfigError):
        _policy_with(tmp_path, f"policy_file = {rules}")


def test_is_default_follows_overrides(tmp_path):
    assert Policy(config.policy_conf()).is_default("get_image")
    rules = tmp_path / "policy.yaml"
    rules.write_text('"get_image": "role:admin or project_id:%(project_id)s"\n')
    policy = _policy_with(tmp_path, f"policy_file = {rules}")
    assert not policy.is_default("get_image") and policy.is_default("get_images")
    targets = [image_target(image(owner=o, visibility="public")) for o in ("A", "B", "A")]
    assert policy.check_many(OWNER, "get_image", targets) == [True, False, True]


SYSTEM_ADMIN = RequestContext(user_id="s", roles=("admin", "member", "reader"), system_scope="all")
DOMAIN_ADMIN = RequestContext(user_id="d", roles=("admin", "member", "reader"), domain_id="default")


@pytest.mark.parametrize("caller", [SYSTEM_ADMIN, DOMAIN_ADMIN], ids=["system", "domain"])
@pytest.mark.parametrize("rule", ["get_images", "get_image", "add_image", "copy_image", "cache_list", "get_task"])
def test_project_rules_refuse_system_and_domain_tokens(policy, caller, rule):
    # Glance 33 marks these project-scoped; oslo.policy refuses other scopes whatever the roles.
    assert not policy.check(caller, rule, image_target(image()))


def test_project_token_passes_scope(policy):
    project_admin = RequestContext(project_id="Z", roles=("admin",))
    assert policy.check(project_admin, "get_images", {"project_id": "Z"})
    assert policy.check(project_admin, "copy_image", image_target(image()))


def test_enforce_scope_false_lets_other_scopes_through(tmp_path):
    policy = _policy_with(tmp_path, "enforce_scope = false")
    assert policy.check(SYSTEM_ADMIN, "copy_image", image_target(image()))
    assert not policy.legacy  # enforce_new_defaults is still on


def test_secure_rbac_is_the_default(policy):
    assert not policy.legacy
    # A reader of the owning project may look but not change.
    assert not policy.check(READER, "modify_image", image_target(image()))


@pytest.mark.parametrize("scope", ["true", "false"])
def test_legacy_rules_keep_changes_with_the_owner(tmp_path, scope):
    policy = _policy_with(tmp_path, f"enforce_new_defaults = false\nenforce_scope = {scope}")
    assert policy.legacy
    no_roles_owner = RequestContext(project_id="A", user_id="u")
    # The pre-RBAC default ("rule:default", i.e. anyone) is ORed in: no reader role needed ...
    assert policy.check(no_roles_owner, "get_images", {"project_id": "A"})
    assert policy.check(no_roles_owner, "modify_image", image_target(image()))
    # ... but changing an image stays the owner's or an admin's (Glance's check_is_image_mutable).
    assert not policy.check(STRANGER, "modify_image", image_target(image()))
    assert not policy.check(STRANGER, "delete_image", image_target(image(visibility="public")))
    assert policy.check(ADMIN, "delete_image", image_target(image()))
    assert not policy.check(no_roles_owner, "upload_image", image_target(image(owner=None)))
    # Reading is not owner-only: visibility is the DB layer's business.
    assert policy.check(STRANGER, "get_image", image_target(image(visibility="public")))


def test_policy_file_still_wins_in_legacy_mode(tmp_path):
    rules = tmp_path / "policy.yaml"
    rules.write_text('"get_images": "!"\n')
    policy = _policy_with(tmp_path, f"enforce_new_defaults = false\npolicy_file = {rules}")
    assert not policy.check(OWNER, "get_images", {"project_id": "A"})


def test_a_changed_policy_file_changes_the_remembered_answers(tmp_path):
    rules = tmp_path / "policy.yaml"
    rules.write_text('"copy_image": "role:member"\n')
    policy = _policy_with(tmp_path, f"policy_file = {rules}")
    assert policy.check(OWNER, "copy_image", {}) and policy.check(OWNER, "copy_image", {})
    rules.write_text('"copy_image": "!"\n')
    later = rules.stat().st_mtime + 5  # oslo.policy re-reads a file whose mtime changed
    os.utime(rules, (later, later))
    assert not policy.check(OWNER, "copy_image", {})


def test_a_policy_file_put_in_place_after_start_is_found(tmp_path, monkeypatch):
    rules = tmp_path / "policy.yaml"
    policy = _policy_with(tmp_path, f"policy_file = {rules}")  # not there yet: the defaults
    assert not policy.check(OWNER, "copy_image", {})
    rules.write_text('"copy_image": "role:member"\n')
    assert not policy.check(OWNER, "copy_image", {})  # the "not found" is trusted a few seconds
    monkeypatch.setattr(policy_module, "POLICY_PATH_TTL_SECONDS", 0.0)
    assert policy.check(OWNER, "copy_image", {})


def test_unhashable_targets_are_still_checked(policy):
    target = {"project_id": "A", "owner": "A", "extra": {"nested": ["x"]}}
    assert policy.check(OWNER, "modify_image", target)
    assert not policy.check(STRANGER, "modify_image", target)
