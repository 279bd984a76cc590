"""Notification settings, Glance's payloads and disabled_notifications; the broker tier is tests/notifications."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from glancelite import config, model
from glancelite.services import notifier
from glancelite.settings import NotificationSettings
from tests.support.server import write_config

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _image(**changes) -> model.Image:
    image = model.Image(
        id="img",
        name="n",
        status="active",
        visibility="public",
        protected=False,
        os_hidden=False,
        owner="p",
        size=3,
        virtual_size=None,
        checksum="c",
        os_hash_algo="sha512",
        os_hash_value="h",
        disk_format="raw",
        container_format="bare",
        min_disk=0,
        min_ram=0,
        created_at=WHEN,
        updated_at=None,
        properties={"foo": "bar", "os_glance_upload_owner": "{}", "os_glance_importing_to_stores": "a,b"},
        tags=frozenset({"z", "a"}),
        locations=(model.Location(url="file:///secret", metadata={}),),
    )
    return image.replace(**changes)


@pytest.mark.parametrize(
    "event_type, disabled, expected",
    [
        ("image.create", ["image.create"], True),
        ("image.create", ["image"], True),
        ("image.create", ["image.*"], True),
        ("image.member.create", ["image.member"], True),
        ("image.member.create", ["image"], True),
        ("image.create", ["image.member"], False),
        ("image.create", ["image.cr"], False),
        ("imagex.create", ["image"], False),
        ("task.success", ["task"], True),
        ("task.success", [], False),
    ],
)
def test_disabled_notifications(event_type, disabled, expected):
    assert notifier.is_disabled(event_type, disabled) is expected


def test_image_payload_is_glances():
    payload = notifier.image_payload(_image())
    assert payload["created_at"] == payload["updated_at"] == "2026-01-02T03:04:05Z"
    assert payload["is_public"] is True and payload["visibility"] == "public"
    assert payload["tags"] == ["a", "z"]
    # glancelite's hidden bookkeeping stays out; Glance's own os_glance_* properties stay in.
    assert payload["properties"] == {"foo": "bar", "os_glance_importing_to_stores": "a,b"}
    assert "locations" not in payload and "os_hash_value" not in payload
    assert notifier.import_properties(_image()) == {
        "os_glance_importing_to_stores": ["a", "b"],
        "os_glance_failed_import": [],
    }


def test_no_driver_is_a_noop_notifier():
    off = notifier.build(NotificationSettings(drivers=("noop",)), conf=None)
    assert off.enabled is False and off.wants("image.create") is False
    off.image("image.create", _image())  # nothing to send to, nothing raised
    off.close()


def test_options_registered_only_when_configured(tmp_path, caplog):
    plain = config.load([str(write_config(tmp_path / "plain"))])
    assert plain.settings.notifications == NotificationSettings()
    assert "oslo_messaging_notifications" not in plain.conf

    path = write_config(
        tmp_path / "on",
        {
            "DEFAULT": {
                "transport_url": "rabbit://u:p@127.0.0.1:5672/",
                "default_publisher_id": "image.node1",
                "disabled_notifications": "image.update, task",
            },
            "oslo_messaging_notifications": {"driver": "messagingv2", "topyc": "x"},
        },
    )
    with caplog.at_level(logging.WARNING, logger="glancelite.config"):
        loaded = config.load([str(path)])
    assert loaded.settings.notifications == NotificationSettings(
        drivers=("messagingv2",), publisher_id="image.node1", disabled=("image.update", "task")
    )
    assert loaded.conf.control_exchange == "glance"
    # The group is checked, not passed through: a misspelt option is reported.
    assert "option [oslo_messaging_notifications] topyc is not supported" in caplog.text
    assert "transport_url is not supported" not in caplog.text
