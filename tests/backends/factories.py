"""Factories of store drivers on real servers (for tests/backends and the conformance cases).

s3 runs on moto and on Ceph radosgw, swift on the Swift all-in-one and on
radosgw, rbd on Ceph (pools images / images2 for two stores side by side).
Servers start on first use (tests/backends/servers.py); a case whose server
cannot start skips with the reason, or fails when CI=true.
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable

from glancelite.settings import StoreSettings
from glancelite.store.base import Driver
from tests.backends import servers

MiB = 1024 * 1024
LARGE = 100 * MiB


def settings(store_id: str, type_name: str, **options) -> StoreSettings:
    return StoreSettings(id=store_id, type=type_name, description=None, weight=0, options=options)


def _name(store_id: str) -> str:
    """A bucket/container name unique to one driver instance (DNS-valid)."""
    return f"glct-{store_id}-{uuid.uuid4().hex[:8]}".lower()


# -- s3 -----------------------------------------------------------------------------


def s3_options(flavor: str, **overrides) -> dict:
    if flavor == "rgw":
        env = servers.require("ceph")
        if "RGW_ENDPOINT" not in env:
            import pytest

            pytest.skip("radosgw not started (GLANCELITE_TEST_RGW=0)")
        host, access, secret = env["RGW_ENDPOINT"], env["RGW_ACCESS_KEY"], env["RGW_SECRET_KEY"]
    else:
        env = servers.require("s3")
        host, access, secret = env["S3_ENDPOINT"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    return {
        "s3_store_host": host,
        "s3_store_access_key": access,
        "s3_store_secret_key": secret,
        "s3_store_create_bucket_on_put": True,
        # Small thresholds so the suite exercises single PUTs and multipart uploads.
        "s3_store_large_object_size": 5,
        "s3_store_large_object_chunk_size": 5,
        "s3_store_thread_pools": 3,
        **overrides,
    }


def make_s3(flavor: str) -> Callable[[pathlib.Path, str], Driver]:
    def make(tmp_path: pathlib.Path, store_id: str, **overrides) -> Driver:
        from glancelite.store.drivers.s3 import S3Driver

        opts = s3_options(flavor, **overrides)
        opts.setdefault("s3_store_bucket", _name(store_id))
        return S3Driver(settings(store_id, "s3", **opts))

    return make


def s3_leftovers(driver) -> list[str]:
    client = driver._client
    try:
        objects = client.list_objects_v2(Bucket=driver.bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=driver.bucket).get("Uploads", [])
    except client.exceptions.NoSuchBucket:
        return []
    return sorted([o["Key"] for o in objects] + [f"multipart:{u['Key']}" for u in uploads])


# -- swift ---------------------------------------------------------------------------


def swift_options(flavor: str, **overrides) -> dict:
    if flavor == "rgw":
        env = servers.require("ceph")
        if "RGW_SWIFT_AUTH_URL" not in env:
            import pytest

            pytest.skip("radosgw not started (GLANCELITE_TEST_RGW=0)")
        auth, user, key = env["RGW_SWIFT_AUTH_URL"], env["RGW_SWIFT_USER"], env["RGW_SWIFT_KEY"]
    else:
        env = servers.require("swift")
        auth, user, key = env["SWIFT_AUTH_URL"], env["SWIFT_USER"], env["SWIFT_KEY"]
    return {
        "swift_store_auth_address": auth,
        "swift_store_user": user,
        "swift_store_key": key,
        "swift_store_auth_version": "1",
        "swift_store_create_container_on_put": True,
        # Segmented (DLO) above 1 MiB, in 4 MiB segments: the suite covers both paths.
        "swift_store_large_object_size": 1,
        "swift_store_large_object_chunk_size": 4,
        **overrides,
    }


def make_swift(flavor: str) -> Callable[[pathlib.Path, str], Driver]:
    def make(tmp_path: pathlib.Path, store_id: str, **overrides) -> Driver:
        from glancelite.store.drivers.swift.single_tenant import SwiftDriver

        opts = swift_options(flavor, **overrides)
        opts.setdefault("swift_store_container", _name(store_id))
        return SwiftDriver(settings(store_id, "swift", **opts))

    return make


def swift_leftovers(driver) -> list[str]:
    import swiftclient.client as sc
    from swiftclient.exceptions import ClientException

    url, token = driver.credentials.get(driver.expire_soon)
    try:
        return sorted(o["name"] for o in sc.get_container(url, token, driver.container, full_listing=True)[1])
    except ClientException as exc:
        if exc.http_status == 404:
            return []
        raise


# -- rbd -----------------------------------------------------------------------------


def rbd_options(pool_index: int = 0, **overrides) -> dict:
    env = servers.require("ceph")
    pools = env["CEPH_RBD_POOLS"].split()
    return {
        "rbd_store_pool": pools[pool_index],
        "rbd_store_user": env["CEPH_GLANCE_USER"],
        "rbd_store_ceph_conf": env["CEPH_CONF"],
        "rbd_store_chunk_size": 4,
        "rados_connect_timeout": 30,
        **overrides,
    }


def make_rbd(tmp_path: pathlib.Path, store_id: str, **overrides) -> Driver:
    try:
        from glancelite.store.drivers.rbd import RbdDriver
    except ImportError as exc:
        servers.unavailable(
            "ceph", f"rados/rbd bindings not importable ({exc}); run tools/backends/install-backends.sh"
        )
    # The second store of the suite's pair lives in the other pool.
    opts = rbd_options(1 if store_id.endswith("-b") else 0, **overrides)
    return RbdDriver(settings(store_id, "rbd", **opts))


def rbd_leftovers(driver) -> list[str]:
    import rbd

    with driver._ioctx() as (_, ioctx):
        return sorted(rbd.RBD().list(ioctx))


def rbd_missing(driver) -> str:
    return driver.url_of(servers.require("ceph")["CEPH_FSID"], str(uuid.uuid4()))
