"""The start-up report: nothing in the files goes unread without a line saying so.

Library groups are checked against the libraries' own options (keystonemiddleware, oslo.limit,
oslo.policy, keystoneauth's plugin options); a Glance group glancelite does not take gets one
line saying why; the README's table is the code's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from keystonemiddleware import auth_token

from glancelite import config, option_groups
from glancelite.option_groups import Status
from glancelite.store import registry
from tests.support.server import write_config

ROOT = Path(__file__).resolve().parents[2]

PASSWORD_PLUGIN = {
    "auth_type": "password",
    "auth_url": "http://keystone.example:5000",
    "username": "glance",
    "password": "secret",
    "project_name": "service",
    "user_domain_id": "default",
    "project_domain_id": "default",
}


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "glancelite.config"]


def load_twice(path) -> config.LoadedConfig:
    """The master loads the files, then each gunicorn worker again: every line must come once."""
    loaded = config.load([str(path)])
    config.load([str(path)])
    return loaded


def test_keystone_authtoken_unknown_option_reported_once_plugin_options_not(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {
            "keystone_authtoken": {
                "www_authenticate_uri": "http://keystone.example:5000",
                "service_token_roles_required": "true",
                "memcached_servers": "127.0.0.1:11211",
                "frobnication": "3",
                **PASSWORD_PLUGIN,
            }
        },
    )
    loaded = load_twice(path)
    assert warnings(caplog) == [
        "option [keystone_authtoken] frobnication is not supported by glancelite and is ignored"
    ]
    # wsgi.py then builds auth_token on the same object: its own registration must not clash.
    middleware = auth_token.AuthProtocol(lambda environ, start: [], {"oslo_config_config": loaded.conf})
    assert middleware._conf.oslo_conf_obj is loaded.conf


def test_plugin_options_come_from_the_plugin_auth_type_names(tmp_path, caplog):
    """An application credential has no password: that option is unread, the plugin's own are read."""
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {
            "oslo_limit": {
                "endpoint_id": "e1",
                "auth_type": "v3applicationcredential",
                "auth_url": "http://keystone.example:5000",
                "application_credential_id": "ac1",
                "application_credential_secret": "s",
                "password": "secret",
            }
        },
    )
    load_twice(path)
    assert warnings(caplog) == ["option [oslo_limit] password is not supported by glancelite and is ignored"]


def test_oslo_limit_without_auth_type_reads_no_plugin_option(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(tmp_path, {"oslo_limit": {"endpoint_id": "e1", "username": "glance", "bogus": "1"}})
    load_twice(path)
    assert sorted(warnings(caplog)) == [
        "option [oslo_limit] bogus is not supported by glancelite and is ignored",
        "option [oslo_limit] username is not supported by glancelite and is ignored",
    ]


def test_auth_section_moves_the_plugin_options_to_that_group(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {
            "keystone_authtoken": {
                "www_authenticate_uri": "http://keystone.example:5000",
                "auth_section": "glance_auth",
            },
            "glance_auth": {**PASSWORD_PLUGIN, "colour": "blue"},
        },
    )
    load_twice(path)
    assert warnings(caplog) == ["option [glance_auth] colour is not supported by glancelite and is ignored"]


def test_unknown_auth_type_is_said_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(tmp_path, {"keystone_authtoken": {"auth_type": "pasword", "username": "glance"}})
    load_twice(path)
    assert warnings(caplog)[0] == (
        "[keystone_authtoken] auth_type 'pasword' is not a keystoneauth plugin: its options cannot be checked"
    )
    assert warnings(caplog)[1:] == [
        "option [keystone_authtoken] username is not supported by glancelite and is ignored"
    ]


def test_oslo_policy_options_are_oslo_policys(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {
            "oslo_policy": {
                "policy_file": "policy.yaml",
                "enforce_new_defaults": "true",
                "enforce_scope": "true",
                "policy_dirs": "policy.d",
                "strictness": "high",
            }
        },
    )
    load_twice(path)
    assert warnings(caplog) == ["option [oslo_policy] strictness is not supported by glancelite and is ignored"]


def test_not_applicable_group_is_one_line(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(tmp_path, {"cinder": {"cinder_volume_type": "fast", "cinder_store_user_name": "glance"}})
    load_twice(path)
    assert warnings(caplog) == [
        "[cinder] is not applicable to glancelite: glancelite has no cinder store "
        "(Block Storage volumes as image storage)"
    ]


def test_oslo_concurrency_is_not_applicable(tmp_path, caplog):
    """Nothing glancelite runs takes an oslo.concurrency lock, so lock_path is reported, not passed through."""
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    load_twice(write_config(tmp_path, {"oslo_concurrency": {"lock_path": "/var/lib/glance/lock"}}))
    [line] = warnings(caplog)
    assert line.startswith("[oslo_concurrency] is not applicable to glancelite: glancelite takes no oslo.concurrency")


def test_not_yet_group_is_one_line(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    load_twice(write_config(tmp_path, {"key_manager": {"backend": "barbican"}, "barbican": {"auth_endpoint": "x"}}))
    assert [line.split(":")[0] for line in warnings(caplog)] == [
        "[key_manager] is not supported by glancelite yet and is ignored",
        "[barbican] is not supported by glancelite yet and is ignored",
    ]


def test_empty_not_applicable_group_says_nothing(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    load_twice(write_config(tmp_path, {"profiler": {}}))
    assert warnings(caplog) == []


def test_a_store_id_named_like_a_not_applicable_group_is_a_store(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {
            "DEFAULT": {"enabled_backends": "fast:file, slow:file, cinder:file"},
            "cinder": {"filesystem_store_datadir": str(tmp_path / "cinder"), "cinder_volume_type": "x"},
        },
    )
    settings = load_twice(path).settings
    assert settings.store("cinder").type == "file"
    assert warnings(caplog) == ["option [cinder] cinder_volume_type is not supported by glancelite and is ignored"]


TAKEN = [g for g in option_groups.GROUPS if g.status is Status.TAKEN]
STORE_ROWS = {g.name for g in TAKEN if "enabled_backends" in g.detail}


def test_store_rows_are_the_store_types_glancelite_has():
    assert set(registry.KNOWN_DRIVERS) == STORE_ROWS


def test_every_taken_group_is_read(tmp_path, caplog):
    """Each taken group is declared by glancelite or its library: an unknown option gets its own line."""
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    groups = [g.name for g in TAKEN if g.name not in STORE_ROWS]
    # One name per group: a [DEFAULT] option is every section's default, which configparser hides.
    path = write_config(tmp_path, {name: {f"no_such_{name}_option": "1"} for name in groups})
    loaded = config.load([str(path)])
    assert all(name == "DEFAULT" or name in loaded.conf for name in groups)
    assert sorted(warnings(caplog)) == sorted(
        f"option [{name}] no_such_{name}_option is not supported by glancelite and is ignored" for name in groups
    )


def test_readme_table_is_the_codes():
    readme = (ROOT / "README.rst").read_text()
    assert option_groups.rst_table() in readme, (
        "README.rst's option group table differs: print it with `.venv/bin/python -m glancelite.option_groups`"
    )
