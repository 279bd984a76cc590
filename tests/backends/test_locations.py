"""Location URLs and option validation of the object-store drivers (no server needed)."""

from __future__ import annotations

import pytest

from glancelite import errors
from glancelite.store import base
from glancelite.store.drivers.s3 import S3Driver
from glancelite.store.drivers.swift.single_tenant import SwiftDriver
from tests.backends.factories import settings

S3 = {
    "s3_store_host": "https://s3.example.test:8443",
    "s3_store_access_key": "AKIDEXAMPLE",
    "s3_store_secret_key": "wJalrXUtnFEMI",
    "s3_store_bucket": "images",
}
SWIFT = {
    "swift_store_auth_address": "http://keystone.example.test:5000/v3",
    "swift_store_user": "service:glance",
    "swift_store_key": "swordfish",
    "swift_store_container": "glance",
}


def test_s3_locations_carry_no_keys():
    driver = S3Driver(settings("cheap", "s3", **S3))
    url = driver.url_of("a-b-c")
    assert url == "s3+https://s3.example.test:8443/images/a-b-c"
    assert driver.parse(url) == ("images", "a-b-c")
    legacy = "s3+https://AKIDEXAMPLE:wJalrXUtnFEMI@s3.example.test:8443/images/a-b-c"
    assert driver.parse(legacy) == ("images", "a-b-c") and driver.owns(legacy)
    with pytest.raises(base.BadStoreUri) as info:
        driver.parse(legacy.replace("/images/", "/other/"))
    assert "wJalrXUtnFEMI" not in info.value.message
    with pytest.raises(base.BadStoreUri):
        driver.parse("s3://AK:SK@http://host/images/x")  # two schemes: refused like glance_store
    assert S3Driver(settings("plain", "s3", **{**S3, "s3_store_host": "10.0.0.5:7480"})).url_of("x") == (
        "s3://10.0.0.5:7480/images/x"
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("s3_store_bucket", "", "is required"),
        ("s3_store_secret_key", None, "is required"),
        ("s3_store_large_object_chunk_size", 4, "at least 5 MiB"),
        ("s3_store_host", "ftp://host", "not an http"),
    ],
)
def test_s3_bad_options_name_the_option(option, value, message):
    with pytest.raises(errors.ConfigError, match=message) as info:
        S3Driver(settings("cheap", "s3", **{**S3, option: value}))
    assert info.value.group == "cheap" and info.value.option == option


def test_swift_locations_carry_no_credentials(tmp_path):
    driver = SwiftDriver(settings("archive", "swift", **SWIFT))
    url = driver.url_of("img")
    assert url == "swift+http://keystone.example.test:5000/v3/glance/img"
    assert "swordfish" not in url and "glance:" not in url
    assert driver.parse(url) == ("glance", "img")
    legacy = "swift+http://service%3Aglance:swordfish@keystone.example.test:5000/v3/glance/img"
    assert driver.parse(legacy) == ("glance", "img") and driver.owns(legacy)
    with pytest.raises(base.BadStoreUri) as info:
        driver.parse(legacy.replace("/glance/img", "/other/img"))
    assert "swordfish" not in info.value.message
    refs = tmp_path / "refs.conf"
    refs.write_text("[ref2]\nauth_address = http://127.0.0.1:1/auth/v1.0\nuser = a:b\nkey = k\nauth_version = 1\n")
    by_ref = SwiftDriver(
        settings("archive", "swift", swift_store_config_file=str(refs), default_swift_reference="ref2")
    )
    assert by_ref.url_of("img") == "swift+config://ref2/glance/img"
    assert by_ref.owns("swift+config://ref2/glance/img") and not by_ref.owns("swift+config://ref1/glance/img")


def test_swift_bad_options_name_the_option(tmp_path):
    with pytest.raises(errors.ConfigError) as info:
        SwiftDriver(settings("archive", "swift", **{**SWIFT, "swift_store_key": None}))
    assert info.value.option == "swift_store_auth_address"
    with pytest.raises(errors.ConfigError) as info:
        SwiftDriver(settings("archive", "swift", **{**SWIFT, "swift_store_auth_version": "4"}))
    assert info.value.option == "swift_store_auth_version"
    with pytest.raises(errors.ConfigError) as info:
        SwiftDriver(settings("archive", "swift", swift_store_config_file=str(tmp_path / "none.conf")))
    assert info.value.option == "swift_store_config_file"


def test_rbd_locations():
    rbd_driver = pytest.importorskip("glancelite.store.drivers.rbd", reason="Debian's python3-rados/rbd not importable")
    driver = rbd_driver.RbdDriver(settings("fast", "rbd", rbd_store_pool="images"))
    url = driver.url_of("0f1e-fsid", "img")
    assert url == "rbd://0f1e-fsid/images/img/snap"
    assert driver.parse(url) == ("images", "img", "snap")
    assert driver.parse("rbd://legacy-image") == ("images", "legacy-image", None)
    for bad in ("rbd://a/b/c", "rbd://fsid//img/snap", "file:///x"):
        with pytest.raises(base.BadStoreUri):
            driver.parse(bad)
    with pytest.raises(base.BadStoreUri):
        driver.parse("rbd://fsid/otherpool/img/snap")
    assert driver.order == 23  # 8 MiB objects, Glance's default
    with pytest.raises(errors.ConfigError):
        rbd_driver.RbdDriver(settings("fast", "rbd", rbd_store_chunk_size=0))
