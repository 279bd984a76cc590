"""Configuration parsing and start-up validation: every bad configuration names its group and option."""

from __future__ import annotations

import logging
import os

import pytest
from oslo_config import cfg

from glancelite import config
from glancelite.errors import ConfigError
from tests.support.server import write_config


def load(path):
    return config.load([str(path)])


def config_error(path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path)
    return info.value


def test_multi_store_config_loads(tmp_path):
    settings = load(write_config(tmp_path)).settings
    assert settings.multi_store is True
    assert settings.default_store == "fast"
    assert [s.id for s in settings.public_stores] == ["fast", "slow"]
    assert {s.id for s in settings.stores if s.reserved} == {"os_glance_staging_store", "os_glance_tasks_store"}
    fast = settings.store("fast")
    assert (fast.type, fast.weight, fast.description) == ("file", 100, "Fast local disk")
    assert fast.options["filesystem_store_datadir"] == str(tmp_path / "fast")
    assert settings.database.connection == f"sqlite:///{tmp_path / 'glance.sqlite'}"


@pytest.mark.parametrize(
    "sections, group, option, fragment",
    [
        pytest.param(
            {"DEFAULT": {"enabled_backends": "fast:file, slow:floppy"}},
            "DEFAULT",
            "enabled_backends",
            "unknown type 'floppy'",
            id="unknown-store-type",
        ),
        pytest.param(
            {"glance_store": {"default_backend": None}},
            "glance_store",
            "default_backend",
            "must be set",
            id="default-backend-missing",
        ),
        pytest.param(
            {"glance_store": {"default_backend": "elsewhere"}},
            "glance_store",
            "default_backend",
            "'elsewhere' is not one of enabled_backends",
            id="default-backend-not-enabled",
        ),
        pytest.param(
            {"DEFAULT": {"enabled_backends": "fast:file, os_glance_mine:file"}},
            "DEFAULT",
            "enabled_backends",
            "'os_glance_mine' is reserved",
            id="reserved-store-id",
        ),
        pytest.param(
            {"slow": {"filesystem_store_datadir": "{root}/fast"}},
            "slow",
            "filesystem_store_datadir",
            "also the data directory of store 'fast'",
            id="file-stores-share-a-dir",
        ),
        pytest.param(
            {"os_glance_staging_store": {"filesystem_store_datadir": "{root}/fast"}},
            "os_glance_staging_store",
            "filesystem_store_datadir",
            "also the data directory of store 'fast'",
            id="reserved-store-shares-a-dir",
        ),
        pytest.param(
            {"DEFAULT": {"enabled_backends": "fast:file, slow:file, web1:http, web2:http"}},
            "DEFAULT",
            "enabled_backends",
            "only one http store",
            id="two-http-stores",
        ),
        pytest.param(
            {"database": {"connection": "no url at all"}},
            "database",
            "connection",
            "not a database URL",
            id="bad-database-url",
        ),
        pytest.param(
            {"DEFAULT": {"workers": "many"}},
            "DEFAULT",
            "workers",
            "invalid value 'many'",
            id="bad-integer",
        ),
        pytest.param(
            {"fast": {"weight": "heavy"}},
            "fast",
            "weight",
            "invalid value 'heavy'",
            id="bad-store-option",
        ),
    ],
)
def test_bad_configuration_names_group_and_option(tmp_path, sections, group, option, fragment):
    sections = {s: {k: v.format(root=tmp_path) if v else v for k, v in opts.items()} for s, opts in sections.items()}
    error = config_error(write_config(tmp_path, sections))
    assert (error.group, error.option) == (group, option)
    assert fragment in str(error)
    where = f"[{group}] {option}" if option else f"[{group}]"
    assert str(error).startswith(where)
    assert "\n" not in str(error)


def test_missing_config_file(tmp_path):
    error = config_error(tmp_path / "absent.conf")
    assert (error.group, error.option) == ("DEFAULT", "config_file")
    assert "absent.conf" in str(error)


def test_config_file_that_is_a_directory(tmp_path):
    error = config_error(tmp_path)
    assert (error.group, error.option) == ("DEFAULT", "config_file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file; covered by the missing-file test")
def test_unreadable_config_file(tmp_path):
    path = write_config(tmp_path)
    path.chmod(0)
    error = config_error(path)
    assert (error.group, error.option) == ("DEFAULT", "config_file")


def test_unparsable_config_file(tmp_path):
    path = tmp_path / "glance-api.conf"
    path.write_text("this is not [an ini file\n")
    error = config_error(path)
    assert (error.group, error.option) == ("DEFAULT", "config_file")


def unsupported_records(caplog, name):
    return [r for r in caplog.records if r.levelno == logging.WARNING and name in r.getMessage()]


def test_unsupported_option_is_logged_once(tmp_path, caplog):
    path = write_config(tmp_path, {"DEFAULT": {"enable_v1_api": "true"}, "fast": {"frobnication": "3"}})
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    load(path)
    load(path)  # a gunicorn worker re-reading the files after fork
    [default_record] = unsupported_records(caplog, "enable_v1_api")
    assert "[DEFAULT] enable_v1_api is not supported" in default_record.getMessage()
    [store_record] = unsupported_records(caplog, "frobnication")
    assert "[fast] frobnication" in store_record.getMessage()


def test_supported_and_library_options_are_not_reported(tmp_path, caplog):
    path = write_config(
        tmp_path,
        {"DEFAULT": {"image_size_cap": "1024"}, "keystone_authtoken": {"www_authenticate_uri": "http://x"}},
    )
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    assert load(path).settings.image_size_cap == 1024
    assert not [r for r in caplog.records if "not supported" in r.getMessage()]


def test_legacy_single_store_mode_works_with_a_deprecation_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    settings = load(write_config(tmp_path, multi_store=False)).settings
    assert settings.multi_store is False
    assert settings.default_store == "file"
    assert [s.id for s in settings.public_stores] == ["file", "http"]
    staging = settings.store("os_glance_staging_store")
    assert staging.reserved and staging.options["filesystem_store_datadir"] == str(tmp_path / "staging")
    assert settings.store("file").options["filesystem_store_datadir"] == str(tmp_path / "images")
    assert any("node_staging_uri is deprecated" in r.getMessage() for r in caplog.records)


GLANCE_LOGGING_OPTIONS = {
    "debug": "true",
    "log_file": "/var/log/glance/api.log",
    "log_dir": "/var/log/glance",
    "use_syslog": "false",
    "syslog_log_facility": "LOG_LOCAL0",
    "use_journal": "false",
    "use_json": "false",
    "use_stderr": "false",
    "log_date_format": "%Y-%m-%d %H:%M:%S",
    "log_rotation_type": "size",
    "max_logfile_count": "30",
    "max_logfile_size_mb": "200",
    "logging_context_format_string": "%(asctime)s %(request_id)s %(message)s",
    "logging_default_format_string": "%(asctime)s %(message)s",
    "logging_user_identity_format": "%(user)s %(project)s",
    "default_log_levels": "amqp=WARN, sqlalchemy=WARN",
    "instance_format": "[instance: %(uuid)s] ",
    "publish_errors": "false",
    "rate_limit_burst": "0",
}


def test_glances_logging_options_are_read_not_reported_as_ignored(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    loaded = load(write_config(tmp_path, {"DEFAULT": GLANCE_LOGGING_OPTIONS}))
    assert not [r.getMessage() for r in caplog.records if "not supported" in r.getMessage()]
    assert loaded.conf.max_logfile_size_mb == 200 and loaded.conf.default_log_levels == ["amqp=WARN", "sqlalchemy=WARN"]


def test_a_bad_logging_value_names_its_option(tmp_path):
    """oslo.log's options are command-line options, whose values oslo.config checks while parsing."""
    error = config_error(write_config(tmp_path, {"DEFAULT": {"use_json": "maybe"}}))
    assert (error.group, error.option) == ("DEFAULT", "use_json")
    assert str(error) == "[DEFAULT] use_json: invalid value 'maybe': not a Boolean"


def test_node_staging_uri_warns_only_when_the_operator_set_it(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(tmp_path, {"DEFAULT": {"node_staging_uri": None}}, multi_store=False)
    settings = load(path).settings
    assert settings.store("os_glance_staging_store").options["filesystem_store_datadir"] == "/tmp/staging/"
    assert not [r for r in caplog.records if "node_staging_uri" in r.getMessage()]


def test_legacy_mode_rejects_unknown_store_type(tmp_path):
    error = config_error(write_config(tmp_path, {"glance_store": {"stores": "file, tape"}}, multi_store=False))
    assert (error.group, error.option) == ("glance_store", "stores")


def test_legacy_default_store_must_be_enabled(tmp_path):
    path = write_config(tmp_path, {"glance_store": {"stores": "file", "default_store": "http"}}, multi_store=False)
    error = config_error(path)
    assert (error.group, error.option) == ("glance_store", "default_store")


def test_storage_quota_units(tmp_path):
    settings = load(write_config(tmp_path, {"DEFAULT": {"user_storage_quota": "2GB"}})).settings
    assert settings.user_storage_quota == 2 * 1024**3
    error = config_error(write_config(tmp_path, {"DEFAULT": {"user_storage_quota": "lots"}}))
    assert (error.group, error.option) == ("DEFAULT", "user_storage_quota")


def test_list_options_take_glances_bracketed_form_and_the_plain_one(tmp_path):
    """Glance declares these with bounds=True, so operators write '[a, b]' (gate.md gotcha 5)."""
    from glancelite import config

    path = tmp_path / "glance-api.conf"
    path.write_text(
        "[DEFAULT]\nenabled_import_methods = [glance-direct,web-download]\n"
        "[import_filtering_opts]\nallowed_hosts = [127.0.0.1]\nallowed_ports = [80, 443, 8000]\n"
        "disallowed_hosts = a.example, b.example\n"
    )
    settings = config.load([str(path)]).settings
    assert settings.enabled_import_methods == ("glance-direct", "web-download")
    assert settings.import_filter.allowed_hosts == ("127.0.0.1",)
    assert settings.import_filter.allowed_ports == (80, 443, 8000)
    assert settings.import_filter.disallowed_hosts == ("a.example", "b.example")


class _MemoDriver:
    """Stands in for a registered driver class: config reads nothing but its OPTIONS."""

    OPTIONS = [
        cfg.IntOpt("memo_slots", default=4, min=1, help="Slots."),
        cfg.BoolOpt("memo_sync", default=False, help="Sync."),
    ]


@pytest.fixture
def memo_type(monkeypatch):
    from glancelite.store import registry

    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    registry.register("memo", _MemoDriver)
    return registry


def test_store_groups_come_from_the_registered_drivers_declarations(tmp_path, memo_type):
    sections = {"DEFAULT": {"enabled_backends": "fast:file, notes:memo"}, "notes": {"memo_sync": "true"}}
    notes = load(write_config(tmp_path, sections)).settings.store("notes")
    assert notes.type == "memo"
    assert notes.options == {"memo_slots": 4, "memo_sync": True}  # typed by oslo, defaults from the declaration
    assert "memo_slots" in {o.dest for o in config.store_group_opts()}
    error = config_error(write_config(tmp_path, {**sections, "notes": {"memo_slots": "0"}}))
    assert (error.group, error.option) == ("notes", "memo_slots")
    assert "invalid value '0'" in str(error)


def test_legacy_mode_reads_a_registered_type_from_glance_store(tmp_path, memo_type):
    sections = {"glance_store": {"stores": "file, memo", "memo_slots": "9"}}
    settings = load(write_config(tmp_path, sections, multi_store=False)).settings
    assert settings.store("memo").options == {"memo_slots": 9, "memo_sync": False}
