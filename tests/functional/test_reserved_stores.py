"""Reserved stores (os_glance_staging_store, os_glance_tasks_store): validated when glancelite-api starts.

How the running service hides and refuses them is tests/api/test_reserved_stores.py.
"""

from __future__ import annotations

import subprocess

from tests.support.server import BIN, write_config


def start_fails(tmp_path, sections) -> str:
    """Run glancelite-api on a bad configuration: it must exit non-zero and say why."""
    config = write_config(tmp_path, sections)
    done = subprocess.run(
        [str(BIN / "glancelite-api"), "--config-file", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    return done.stdout + done.stderr


def test_start_refuses_operator_store_with_reserved_prefix(tmp_path):
    out = start_fails(
        tmp_path,
        {
            "DEFAULT": {"enabled_backends": "fast:file, os_glance_mine:file"},
            "os_glance_mine": {"filesystem_store_datadir": str(tmp_path / "mine")},
        },
    )
    assert "enabled_backends" in out
    assert "os_glance_" in out


def test_start_refuses_reserved_dir_shared_with_a_file_store(tmp_path):
    out = start_fails(tmp_path, {"slow": {"filesystem_store_datadir": str(tmp_path / "staging")}})
    assert "filesystem_store_datadir" in out
    assert "staging" in out


def test_start_refuses_reserved_store_as_default(tmp_path):
    out = start_fails(tmp_path, {"glance_store": {"default_backend": "os_glance_staging_store"}})
    assert "default_backend" in out
