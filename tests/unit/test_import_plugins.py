"""The import plugin registry and its options ([image_import_opts], [inject_metadata_properties],
[image_conversion]); the plugins' data handling on real files."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from glancelite import config, errors
from glancelite.errors import ConfigError
from glancelite.tasks import plugins
from glancelite.tasks.plugins import image_decompression
from glancelite.tasks.plugins.base import ImportPlugin, PluginError
from tests.support.server import write_config


def load(path):
    return config.load([str(path)]).settings


def test_defaults(tmp_path):
    settings = load(write_config(tmp_path))
    assert settings.image_import_plugins == ()
    assert settings.max_parallel_stores == 1
    assert settings.inject_ignore_user_roles == ("admin",)
    assert dict(settings.inject_properties) == {}
    assert settings.image_conversion_output_format == "raw"


def test_options_read_in_glance_spelling(tmp_path):
    settings = load(
        write_config(
            tmp_path,
            {
                "image_import_opts": {
                    "image_import_plugins": "['image_decompression', 'image_conversion']",
                    "max_parallel_stores": "3",
                },
                "inject_metadata_properties": {"ignore_user_roles": "admin,service", "inject": "a:1,b:two"},
                "image_conversion": {"output_format": "qcow2"},
            },
        )
    )
    assert settings.image_import_plugins == ("image_decompression", "image_conversion")
    assert settings.max_parallel_stores == 3
    assert settings.inject_ignore_user_roles == ("admin", "service")
    assert dict(settings.inject_properties) == {"a": "1", "b": "two"}
    assert settings.image_conversion_output_format == "qcow2"


@pytest.mark.parametrize(
    "sections, option",
    [
        ({"image_import_opts": {"image_import_plugins": "no_op,bogus"}}, "[image_import_opts] image_import_plugins"),
        ({"image_conversion": {"output_format": "vhd"}}, "[image_conversion] output_format"),
        ({"image_import_opts": {"max_parallel_stores": "0"}}, "[image_import_opts] max_parallel_stores"),
    ],
)
def test_bad_values_stop_the_service(tmp_path, sections, option):
    with pytest.raises(ConfigError) as info:
        load(write_config(tmp_path, sections))
    assert str(info.value).startswith(option), str(info.value)


def test_registry_names_glance_plugins_and_every_one_loads():
    assert plugins.NAMES == ("image_conversion", "image_decompression", "inject_image_metadata", "no_op")
    for name in plugins.NAMES:
        cls = plugins.plugin_class(name)
        assert issubclass(cls, ImportPlugin) and cls.NAME == name
    assert plugins.plugin_class("image_conversion").CHANGES_DATA
    assert not plugins.plugin_class("inject_image_metadata").CHANGES_DATA


def test_magic_numbers():
    assert image_decompression.kind(b"PK\x03\x04rest") == "zip"
    assert image_decompression.kind(b"\x1f\x8b\x08\x00\x00") == "gzip"
    assert image_decompression.kind(b"xx-lh5-") == "lha"
    assert image_decompression.kind(b"QFI\xfb\x00") is None


def test_unzip_one_member_under_the_cap(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("disk", b"\0" * 100_000)
    src = tmp_path / "a.zip"
    src.write_bytes(buf.getvalue())
    image_decompression.unzip(str(src), str(tmp_path / "out"), cap=100_000)
    assert (tmp_path / "out").read_bytes() == b"\0" * 100_000
    with pytest.raises(errors.TooLarge):  # a zip bomb stops at the cap
        image_decompression.unzip(str(src), str(tmp_path / "out2"), cap=99_999)


def test_unzip_refuses_several_members(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a", b"a")
        archive.writestr("b", b"b")
    src = tmp_path / "a.zip"
    src.write_bytes(buf.getvalue())
    with pytest.raises(PluginError, match="exactly one"):
        image_decompression.unzip(str(src), str(tmp_path / "out"), cap=1 << 20)


def test_gunzip_capped(tmp_path):
    src = tmp_path / "a.gz"
    src.write_bytes(gzip.compress(b"x" * 50_000))
    image_decompression.gunzip(str(src), str(tmp_path / "out"), cap=50_000)
    assert (tmp_path / "out").read_bytes() == b"x" * 50_000
    with pytest.raises(errors.TooLarge):
        image_decompression.gunzip(str(src), str(tmp_path / "out2"), cap=10_000)
