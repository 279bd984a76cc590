"""Drivers declare their options once; config, the sample and the drivers read those declarations.

The declarations of the SDK-backed types (s3, swift, rbd) must be readable on a machine
without the SDK: these tests run such a machine in a subprocess whose imports of boto3,
botocore, swiftclient, rados and rbd fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from glancelite import opts
from glancelite.settings import StoreSettings
from glancelite.store import registry

BLOCK_SDKS = """
import sys

class _NoSdk:
    BLOCKED = ("boto3", "botocore", "swiftclient", "rados", "rbd")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, _NoSdk())
"""


def run_python(code: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(BLOCK_SDKS + textwrap.dedent(code))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_declarations_load_without_any_sdk(tmp_path):
    run_python(
        """
        from glancelite import config, opts
        from glancelite.store import registry

        names = {o.dest for o in dict(opts.list_opts())["<store id>"]}
        assert {"s3_store_bucket", "swift_store_container", "swift_store_multi_tenant", "rbd_store_pool"} <= names
        for type_name in ("s3", "swift", "rbd"):
            assert registry.options_of(type_name)
        blocked = [m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "swiftclient", "rados", "rbd")]
        assert not blocked, blocked
        """,
        tmp_path,
    )


def test_a_store_of_a_type_without_its_sdk_stops_with_the_hint(tmp_path):
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        "[DEFAULT]\nenabled_backends = objects:s3\n"
        f"[glance_store]\ndefault_backend = objects\n[database]\nconnection = sqlite:///{tmp_path}/db.sqlite\n"
        f"[os_glance_staging_store]\nfilesystem_store_datadir = {tmp_path}/staging\n"
        f"[os_glance_tasks_store]\nfilesystem_store_datadir = {tmp_path}/tasks\n"
        "[objects]\ns3_store_host = http://127.0.0.1:1\ns3_store_bucket = b\ns3_store_large_object_size = 7\n"
    )
    run_python(
        f"""
        from glancelite import config, errors
        from glancelite.store.stores import StoreSet

        settings = config.load([{str(conf)!r}]).settings
        options = settings.store("objects").options
        assert options["s3_store_large_object_size"] == 7 and options["s3_store_thread_pools"] == 10, options
        try:
            StoreSet(settings)
        except errors.ConfigError as exc:
            assert exc.group == "objects", exc
            assert "the s3 store needs boto3" in str(exc), exc
        else:
            raise AssertionError("StoreSet started an s3 store without boto3")
        """,
        tmp_path,
    )


def test_importing_the_swift_driver_leaves_the_swiftclient_logger_alone(tmp_path):
    pytest.importorskip("swiftclient")
    code = """
        import logging
        from glancelite.settings import StoreSettings
        from glancelite.store.drivers.swift.single_tenant import SwiftDriver

        assert logging.getLogger("swiftclient").level == logging.NOTSET
        SwiftDriver(StoreSettings("s", "swift", None, 0, {
            "swift_store_auth_address": "http://127.0.0.1:1/auth/v1.0", "swift_store_user": "a:b",
            "swift_store_key": "k", "swift_store_auth_version": "1"}))
        assert logging.getLogger("swiftclient").level == logging.WARNING
        """
    script = tmp_path / "logger.py"
    script.write_text(textwrap.dedent(code))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("type_name", ["file", "http", "s3", "swift", "rbd"])
def test_the_driver_class_carries_the_declarations_config_reads(type_name):
    try:
        cls = registry.driver_class(type_name)
    except registry.DriverUnavailable as exc:
        pytest.skip(str(exc))
    assert tuple(cls.OPTIONS) == registry.options_of(type_name)
    assert cls.OPTIONS and all(o.dest not in {c.dest for c in opts.STORE_COMMON_OPTS} for o in cls.OPTIONS)


def test_a_driver_built_without_config_gets_the_declared_defaults(tmp_path):
    from glancelite.store.drivers.file import FileDriver

    driver = FileDriver(StoreSettings("f", "file", None, 0, {"filesystem_store_datadir": str(tmp_path)}))
    assert driver.chunk_size == 65536 and driver.thin is False and driver.fsync is False
    assert driver.option("filesystem_store_metadata_file") is None
