"""Property protection rules: parsed by config.py at start, decided by services.property_protections."""

from __future__ import annotations

import logging
import textwrap

import pytest

from glancelite import config, errors
from glancelite.context import RequestContext
from glancelite.services.policy import Policy
from glancelite.services.property_protections import PropertyProtections
from glancelite.settings import PropertyRule
from tests.support.server import write_config

ALL = "create = @\nread = @\nupdate = @\ndelete = @\n"


def load(tmp_path, rules: str | None, **default):
    if rules is not None:
        (tmp_path / "pp.conf").write_text(textwrap.dedent(rules))
        default.setdefault("property_protection_file", str(tmp_path / "pp.conf"))
    return config.load([str(write_config(tmp_path, {"DEFAULT": default}))])


def ctx(*roles: str, service_roles: tuple[str, ...] = ()) -> RequestContext:
    return RequestContext(project_id="p", user_id="u", roles=roles, service_roles=service_roles)


def protections(tmp_path, rules: str, **default) -> PropertyProtections:
    loaded = load(tmp_path, rules, **default)
    return PropertyProtections.build(loaded.settings, Policy(loaded.conf))


def test_unset_means_no_protections(tmp_path):
    settings = load(tmp_path, None).settings
    assert settings.property_rules is None
    assert PropertyProtections.build(settings, None) is None


def test_a_file_without_sections_protects_nothing(tmp_path):
    settings = load(tmp_path, "# nothing here\n").settings
    assert settings.property_rules == ()
    assert PropertyProtections.build(settings, None) is None


def test_rules_are_parsed_in_file_order_roles_lowercased(tmp_path):
    rules = load(
        tmp_path,
        """
        [^x_owner_.*]
        create = admin, Member
        read = @
        update = admin
        delete = !

        [.*]
        create = admin
        read = admin
        update = admin
        delete = admin
        """,
    ).settings.property_rules
    assert rules == (
        PropertyRule("^x_owner_.*", ("admin", "member"), ("@",), ("admin",), ("!",)),
        PropertyRule(".*", ("admin",), ("admin",), ("admin",), ("admin",)),
    )


def test_a_default_section_supplies_missing_operations(tmp_path):
    rules = load(tmp_path, "[DEFAULT]\ndelete = !\n[x]\ncreate = @\nread = @\nupdate = @\n").settings.property_rules
    assert rules == (PropertyRule("x", ("@",), ("@",), ("@",), ("!",)),)


def test_an_empty_operation_is_refused_to_all_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="glancelite.config"):
        p = protections(tmp_path, "[x]\ncreate = @\nread = @\nupdate =\ndelete = @\n")
    assert "property protection [x] update is empty" in caplog.text
    assert not p.allowed(ctx("admin"), "x", "update")
    assert p.allowed(ctx("admin"), "x", "delete")


@pytest.mark.parametrize(
    "rules, fmt, fragment",
    [
        ("create = @\n", "roles", "no section headers"),
        ("[x_(]\n" + ALL, "roles", "section [x_(] is not a regular expression"),
        ("[x]\ncreate = @\nread = @\nupdate = @\n", "roles", "section [x] has no 'delete' option"),
        ("[x]\ncreate = @, !\nread = @\nupdate = @\ndelete = @\n", "roles", "'@' and '!' are mutually exclusive"),
        ("[x]\ncreate = a,b\nread = @\nupdate = @\ndelete = @\n", "policies", "one policy rule per operation"),
        ("[x]\n" + ALL + "[x]\n" + ALL, "roles", "section 'x' already exists"),
        ("[x]\ncreate = 100%\nread = @\nupdate = @\ndelete = @\n", "roles", "cannot parse"),
    ],
    ids=["no-header", "bad-regex", "missing-op", "at-and-bang", "policy-list", "duplicate", "interpolation"],
)
def test_bad_files_are_config_errors(tmp_path, rules, fmt, fragment):
    with pytest.raises(errors.ConfigError) as info:
        load(tmp_path, rules, property_protection_rule_format=fmt)
    assert (info.value.group, info.value.option) == ("DEFAULT", "property_protection_file")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_relative_path(tmp_path):
    with pytest.raises(errors.ConfigError, match="cannot find property protection file 'nowhere.conf'"):
        load(tmp_path, None, property_protection_file="nowhere.conf")
    (tmp_path / "beside.conf").write_text("[x]\n" + ALL)
    rules = load(tmp_path, None, property_protection_file="beside.conf").settings.property_rules
    assert [r.pattern for r in rules] == ["x"]


def test_unknown_rule_format(tmp_path):
    with pytest.raises(errors.ConfigError) as info:
        load(tmp_path, "[x]\n" + ALL, property_protection_rule_format="acl")
    assert info.value.option == "property_protection_rule_format"


# ---------------------------------------------------------------- decisions


ROLES = """
[x_foo_matcher]
create = admin
read = admin
update = admin
delete = admin

[x_foo_*]
create = @
read = @
update = @
delete = @

[^x_owner_]
create = member
read = member
update = !
delete = !
"""


def test_first_matching_section_wins_and_search_is_unanchored(tmp_path):
    p = protections(tmp_path, ROLES)
    # 'x_foo_matcher' is matched by its own section first, though [x_foo_*] matches it too.
    assert not p.allowed(ctx("member"), "x_foo_matcher", "read")
    assert p.allowed(ctx("admin"), "x_foo_matcher", "read")
    # re.search: [x_foo_*] matches anywhere in the name.
    assert p.allowed(ctx(), "prefix_x_foo_bar", "delete")
    # No section matches: refused to everyone.
    assert not p.allowed(ctx("admin"), "unrelated", "read")
    assert not p.allowed(ctx("admin"), "x_owner_a", "bogus-operation")


def test_roles_service_roles_at_and_bang(tmp_path):
    p = protections(tmp_path, ROLES)
    assert p.allowed(ctx("reader", "member"), "x_owner_a", "create")
    assert not p.allowed(ctx("reader"), "x_owner_a", "create")
    assert p.allowed(ctx("reader", service_roles=("member",)), "x_owner_a", "create")
    assert not p.allowed(ctx("member", "admin"), "x_owner_a", "update")
    with pytest.raises(errors.Forbidden, match="Attribute 'x_owner_a' is reserved."):
        p.enforce(ctx("admin"), "x_owner_a", "delete")
    with pytest.raises(errors.Forbidden, match="Attribute 'nope' is reserved."):
        p.check_create(ctx("member"), ["x_owner_a", "nope"])
    assert p.readable(ctx("member"), {"x_owner_a": "1", "x_foo_1": "2", "nope": "3"}) == {
        "x_owner_a": "1",
        "x_foo_1": "2",
    }


def test_policies_format_checks_the_named_rule(tmp_path):
    (tmp_path / "policy.yaml").write_text('"glance_creator": "role:admin or role:spl_role"\n')
    (tmp_path / "pp.conf").write_text(
        "[spl_creator_policy]\ncreate = glance_creator\nread = default\nupdate = context_is_admin\ndelete = !\n"
    )
    conf = write_config(
        tmp_path,
        {
            "DEFAULT": {
                "property_protection_file": str(tmp_path / "pp.conf"),
                "property_protection_rule_format": "policies",
            },
            "oslo_policy": {"policy_file": str(tmp_path / "policy.yaml")},
        },
    )
    loaded = config.load([str(conf)])
    p = PropertyProtections.build(loaded.settings, Policy(loaded.conf))
    name = "spl_creator_policy"
    assert p.allowed(ctx("spl_role"), name, "create")
    assert not p.allowed(ctx("member"), name, "create")
    assert p.allowed(ctx("anything"), name, "read")  # Glance's 'default' rule is empty: anyone
    assert p.allowed(ctx("admin"), name, "update") and not p.allowed(ctx("spl_role"), name, "update")
    assert not p.allowed(ctx("admin"), name, "delete")
