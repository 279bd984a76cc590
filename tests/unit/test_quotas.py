"""Keystone unified limits: the usage Glance counts (real SQLite/PostgreSQL), its units, the option's effects.

The enforcement itself (oslo.limit against keystone) is in tests/gate/test_unified_limits.py.
"""

from __future__ import annotations

import logging
import uuid

from glancelite import config
from glancelite.context import RequestContext
from glancelite.db import images as repo
from glancelite.db import locations as locations_db
from glancelite.db import usage as usage_db
from glancelite.services import quotas
from tests.support.server import write_config

MiB = 1024 * 1024


def image(engine, owner="p1", status="queued", size=None, properties=None, stored=False):
    """An image in ``status`` (written as is); ``stored``: with one live location holding ``size`` bytes."""
    image_id = str(uuid.uuid4())
    values = {"id": image_id, "owner": owner, "status": "saving" if stored else status, "size": size}
    repo.create_image(engine, values, properties or {}, [])
    if stored:
        locations_db.finish_upload(
            engine,
            image_id,
            url=f"file:///data/{image_id}",
            metadata={},
            size=size,
            checksum="c",
            os_hash_algo="sha512",
            os_hash_value="v",
            target_status=status,
        )
    return repo.get_image(engine, image_id)


def test_usage_counts_as_glance(engine):
    image(engine, status="active", size=3 * MiB, stored=True)  # stored 3 MiB
    image(engine, status="uploading", size=2 * MiB)  # staged, uploading
    image(engine, status="importing", size=MiB + 5)  # staged, uploading
    image(engine, status="saving")  # uploading, nothing staged yet
    image(engine, status="queued")
    # copy-image in progress: an active image still being copied to a store occupies staging.
    image(
        engine,
        status="active",
        size=4 * MiB,
        stored=True,
        properties={usage_db.IMPORTING_TO_STORES: "slow"},
    )
    image(engine, status="active", size=8 * MiB, stored=True, properties={usage_db.IMPORTING_TO_STORES: ""})
    image(engine, status="killed", size=16 * MiB)
    gone = image(engine, status="uploading", size=32 * MiB)
    repo.delete_image(engine, gone.id)
    image(engine, owner="other", status="uploading", size=64 * MiB)

    found = usage_db.owner_usage(engine, "p1")
    assert found.stored_bytes == (3 + 4 + 8) * MiB
    assert found.staged_bytes == 2 * MiB + MiB + 5 + 4 * MiB
    assert found.images == 7  # not the killed one, not the deleted one
    assert found.uploading == 4  # uploading, importing, saving, and the one being copied
    assert usage_db.owner_usage(engine, None) == usage_db.OwnerUsage(0, 0, 0, 0)


def test_limit_units_round_down_after_the_pending_image_is_added():
    counted = usage_db.OwnerUsage(stored_bytes=3 * MiB - 1, staged_bytes=MiB, images=2, uploading=1)
    assert quotas.usage_in_limit_units(counted) == {
        "image_size_total": 2,
        "image_stage_total": 1,
        "image_count_total": 2,
        "image_count_uploading": 1,
    }
    pending = {"image_size_total": 1, "image_stage_total": MiB - 1, "image_count_uploading": 1}
    assert quotas.usage_in_limit_units(counted, pending) == {
        "image_size_total": 3,
        "image_stage_total": 1,
        "image_count_total": 2,
        "image_count_uploading": 2,
    }


def test_limit_exceeded_message_is_glances():
    exc = quotas.LimitExceeded("Project p is over a limit for [Resource image_count_total is over limit of 1]")
    assert exc.message.startswith("The request returned a 413 Request Entity Too Large. This generally means")
    assert exc.message.endswith(
        "The response body:\nProject p is over a limit for [Resource image_count_total is over limit of 1]"
    )


def test_off_checks_nothing_and_reports_nothing():
    off = quotas.NO_LIMITS
    ctx = RequestContext(project_id="p1")
    # No engine and no keystone behind it: any real check would fail.
    for check in (off.check_create, off.check_size_total, off.check_stage_total, off.check_uploading):
        check(ctx)
    assert off.usage(ctx) == {}


def test_option_defaults_off_and_replaces_user_storage_quota(tmp_path):
    settings = config.load([str(write_config(tmp_path, {"DEFAULT": {"user_storage_quota": "1GB"}}))]).settings
    assert settings.use_keystone_limits is False
    assert settings.user_storage_quota == 1024**3
    on = write_config(
        tmp_path / "on",
        {"DEFAULT": {"user_storage_quota": "1GB", "use_keystone_limits": "true"}},
    )
    settings = config.load([str(on)]).settings
    assert settings.use_keystone_limits is True
    assert settings.user_storage_quota == 0  # Glance ignores it under keystone limits


def test_oslo_limit_options_are_not_reported(tmp_path, caplog):
    """oslo.limit's own options and those of the keystoneauth plugin auth_type names are read."""
    caplog.set_level(logging.WARNING, logger="glancelite.config")
    path = write_config(
        tmp_path,
        {
            "oslo_limit": {
                "endpoint_id": "e1",
                "auth_type": "password",
                "auth_url": "http://keystone.example:5000",
                "username": "glance",
                "system_scope": "all",
                "valid_interfaces": "internal",
            }
        },
    )
    config.load([str(path)])
    assert not [r for r in caplog.records if "oslo_limit" in r.getMessage()]
