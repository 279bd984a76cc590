"""s3 driver failure paths on a real S3 server (moto; radosgw where marked)."""

from __future__ import annotations

import io
import logging
import os
import signal
import time
import uuid

import pytest

from glancelite import errors
from glancelite.store import base
from glancelite.store.capabilities import Capability, contains
from glancelite.store.drivers.s3 import S3Driver
from tests.backends import servers
from tests.backends.factories import make_s3, s3_leftovers, settings
from tests.support.payloads import raw_bytes
from tests.support.server import free_port

pytestmark = pytest.mark.backend
MiB = 1024 * 1024


class KillAt:
    """``total`` bytes of data; ``hook`` (stop the server) runs once when ``at`` bytes were handed out."""

    def __init__(self, total: int, at: int, hook):
        self.left, self.at, self.hook = total, at, hook
        self.given = 0

    def read(self, n=-1):
        if self.given >= self.at and self.hook:
            self.hook()
            self.hook = None
            time.sleep(0.2)
        n = min(n if n and n > 0 else 65536, self.left)
        self.left -= n
        self.given += n
        return raw_bytes(n)


class FailAfter:
    """Yields ``good`` bytes then raises, as a client that disconnects would."""

    def __init__(self, good: int):
        self.left = good

    def read(self, n=-1):
        if self.left <= 0:
            raise errors.Invalid("client went away")
        n = min(n if n and n > 0 else 65536, self.left)
        self.left -= n
        return raw_bytes(n)


@pytest.fixture(params=["moto", "rgw"])
def flavor(request):
    if request.param == "rgw":
        request.getfixturevalue("rgw_env")
    else:
        request.getfixturevalue("s3_env")
    return request.param


def test_failed_multipart_upload_is_aborted(flavor, tmp_path):
    driver = make_s3(flavor)(tmp_path, "abort")
    # Unknown size and 5 MiB parts: a multipart upload is under way when the client goes away.
    with pytest.raises(errors.Invalid, match="client went away"):
        driver.add(str(uuid.uuid4()), FailAfter(12 * MiB), None)
    assert s3_leftovers(driver) == []
    # Same with a declared size: the size check trips after the last part.
    with pytest.raises(errors.Invalid, match="Size mismatch"):
        driver.add(str(uuid.uuid4()), io.BytesIO(raw_bytes(11 * MiB)), 12 * MiB)
    assert s3_leftovers(driver) == []


def test_single_put_longer_than_declared_is_refused_and_removed(s3_env, tmp_path):
    driver = make_s3("moto")(tmp_path, "exceed")
    with pytest.raises(errors.Invalid, match="Size exceeds"):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x" * 2000), 1000)
    assert s3_leftovers(driver) == []


def test_large_upload_uses_bounded_multipart(s3_env, tmp_path):
    driver = make_s3("moto")(tmp_path, "multi", s3_store_thread_pools=2)
    data = raw_bytes(23 * MiB)
    part = 5 * MiB
    uploaded = []
    # botocore's own event hooks count the parts S3 acknowledged.
    driver._client.meta.events.register("after-call.s3.UploadPart", lambda **kw: uploaded.append(1))
    held = []

    class Watched(io.BytesIO):
        def read(self, n=-1):
            # Bytes taken from the client but not yet acknowledged by S3 = what the driver holds.
            held.append(self.tell() - len(uploaded) * part)
            return super().read(n)

    stored = driver.add(str(uuid.uuid4()), Watched(data), None)
    # At most thread_pools parts in flight plus the one being read.
    assert max(held) <= (2 + 1) * part, max(held) / MiB
    key = stored.url.rsplit("/", 1)[1]
    head = driver._client.head_object(Bucket=driver.bucket, Key=key)
    # A multipart object's ETag is "<md5 of part md5s>-<part count>": 5 parts of 5 MiB.
    assert head["ETag"].strip('"').endswith("-5")
    assert b"".join(driver.get(stored.url)) == data


def test_credentials_never_in_locations_or_logs(s3_env, tmp_path, caplog):
    secret = "glct-" + uuid.uuid4().hex
    access = "GLCTACCESS" + uuid.uuid4().hex[:8].upper()
    caplog.set_level(logging.DEBUG)
    driver = make_s3("moto")(tmp_path, "creds", s3_store_access_key=access, s3_store_secret_key=secret)
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"secret-free"), 11)
    assert access not in stored.url and secret not in stored.url
    assert stored.url == f"s3://{s3_env['S3_ENDPOINT'].split('://')[1]}/{driver.bucket}/{stored.url.rsplit('/', 1)[1]}"
    assert b"".join(driver.get(stored.url)) == b"secret-free"
    driver.delete(stored.url)
    with pytest.raises(base.StoreNotFound) as info:
        driver.get_size(stored.url)
    assert secret not in str(info.value)
    assert secret not in caplog.text
    own = [r.getMessage() for r in caplog.records if r.name.startswith("glancelite")]
    assert own and not any(access in line or secret in line for line in own)
    # A legacy Glance location with keys in it is still readable, and never echoed back.
    legacy_url = stored.url.replace("s3://", f"s3://{access}:{secret}@")
    with pytest.raises(base.StoreNotFound) as info:
        driver.get(legacy_url)
    assert secret not in str(info.value)
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"legacy"), 6)
    assert b"".join(driver.get(stored.url.replace("s3://", f"s3://{access}:{secret}@"))) == b"legacy"


def test_missing_bucket_without_create_has_no_access(s3_env, tmp_path):
    driver = make_s3("moto")(tmp_path, "nobucket", s3_store_create_bucket_on_put=False)
    probe = driver.probe()
    assert not contains(probe.capabilities, Capability.READ_ACCESS)
    assert not contains(probe.capabilities, Capability.WRITE_ACCESS)
    assert "does not exist" in probe.reason
    with pytest.raises(base.StoreUnavailable, match="does not exist"):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x"), 1)


def test_unreachable_endpoint_drops_access_quickly(tmp_path):
    port = free_port()  # nothing listens there
    driver = S3Driver(
        settings(
            "gone",
            "s3",
            s3_store_host=f"http://127.0.0.1:{port}",
            s3_store_access_key="a",
            s3_store_secret_key="b",
            s3_store_bucket="glct-gone",
        )
    )
    started = time.monotonic()
    probe = driver.probe()
    assert probe.unreachable
    assert probe.capabilities & Capability.RW_ACCESS == 0
    with pytest.raises(base.StoreUnavailable):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x"), 1)
    assert time.monotonic() - started < 30


def test_server_stopped_mid_upload(s3_env, tmp_path):
    """moto dies while parts are going up: a 503-class error, access dropped, back after restart."""
    driver = make_s3("moto")(tmp_path, "killed")
    pid = int(s3_env["S3_PID"])

    def kill():
        os.kill(pid, signal.SIGKILL)

    try:
        started = time.monotonic()
        with pytest.raises(base.StoreUnavailable):
            driver.add(str(uuid.uuid4()), KillAt(30 * MiB, 8 * MiB, kill), None)
        assert time.monotonic() - started < 60
        probe = driver.probe()
        assert probe.unreachable and not contains(probe.capabilities, Capability.READ_ACCESS)
    finally:
        servers.restart("s3")
    probe = driver.probe()
    assert contains(probe.capabilities, Capability.RW_ACCESS), probe
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"back"), 4)
    assert b"".join(driver.get(stored.url)) == b"back"
