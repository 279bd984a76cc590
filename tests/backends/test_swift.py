"""swift driver on real servers: Glance's DLO layout, token expiry mid-upload, cleanup, outages."""

from __future__ import annotations

import io
import os
import signal
import time
import uuid

import pytest
import requests
import swiftclient.client as sc

from glancelite import errors
from glancelite.store import base
from glancelite.store.capabilities import Capability, contains
from glancelite.store.drivers.swift.single_tenant import SwiftDriver
from tests.backends import servers
from tests.backends.factories import make_swift, settings, swift_leftovers, swift_options
from tests.support.payloads import raw_bytes
from tests.support.server import free_port

pytestmark = pytest.mark.backend
MiB = 1024 * 1024


class SlowReader:
    """``total`` bytes handed out slowly (``delay`` s per read): an upload that outlives a token."""

    def __init__(self, data: bytes, delay: float, hook_at: int | None = None, hook=None):
        self.buf, self.delay = io.BytesIO(data), delay
        self.hook_at, self.hook = hook_at, hook

    def read(self, n=-1):
        if self.hook and self.buf.tell() >= self.hook_at:
            self.hook()
            self.hook = None
            time.sleep(0.3)
        time.sleep(self.delay)
        return self.buf.read(min(n if n and n > 0 else 65536, 256 * 1024))


def test_large_image_is_a_glance_style_dlo(swift_env, tmp_path):
    driver = make_swift("aio")(tmp_path, "dlo")
    data = raw_bytes(9 * MiB + 7)
    image_id = str(uuid.uuid4())
    stored = driver.add(image_id, io.BytesIO(data), len(data))
    assert stored.url.endswith(f"/{driver.container}/{image_id}")
    url, token = driver.credentials.get(0)
    headers = sc.head_object(url, token, driver.container, image_id)
    assert headers["x-object-manifest"] == f"{driver.container}/{image_id}-"
    names = swift_leftovers(driver)
    assert names == sorted([image_id, f"{image_id}-00001", f"{image_id}-00002", f"{image_id}-00003"])
    # What Glance (or any Swift client) reads through the manifest.
    _, body = sc.get_object(url, token, driver.container, image_id)
    assert body == data
    driver.delete(stored.url)
    assert swift_leftovers(driver) == []


def test_token_expiring_mid_upload_is_refreshed(swift_env, tmp_path):
    """Tokens of the short-lived proxy live SWIFT_SHORT_TOKEN_LIFE (3) s; the upload takes longer."""
    life = float(swift_env["SWIFT_SHORT_TOKEN_LIFE"])
    driver = make_swift("aio")(
        tmp_path,
        "expiry",
        swift_store_auth_address=swift_env["SWIFT_SHORT_AUTH_URL"],
        swift_store_large_object_chunk_size=1,
        swift_store_expire_soon_interval=1,
    )
    first_url, first_token = driver.credentials.get(driver.expire_soon)
    data = raw_bytes(6 * MiB)
    started = time.monotonic()
    stored = driver.add(str(uuid.uuid4()), SlowReader(data, delay=0.07), None)
    assert time.monotonic() - started > life + 1, "the upload must outlive one token"
    # The first token really expired meanwhile: without a refresh the upload would have got 401s.
    with pytest.raises(sc.ClientException) as info:
        sc.head_container(first_url, first_token, driver.container)
    assert info.value.http_status == 401
    assert b"".join(driver.get(stored.url)) == data


def test_refused_token_is_renewed_and_request_replayed(swift_env, tmp_path):
    driver = make_swift("aio")(tmp_path, "replay", swift_store_expire_soon_interval=0)
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"payload"), 7)
    # Simulate a token revoked behind our back: the next request gets 401, re-auths, succeeds.
    driver.credentials._token = "AUTH_tk" + "0" * 32
    assert driver.get_size(stored.url) == 7


def test_failed_upload_deletes_its_segments(swift_env, tmp_path):
    driver = make_swift("aio")(tmp_path, "cleanup", swift_store_large_object_chunk_size=1)

    class Cut:
        left = int(3.5 * MiB)

        def read(self, n=-1):
            if self.left <= 0:
                raise errors.Invalid("client went away")
            n = min(n if n > 0 else 65536, self.left)
            self.left -= n
            return b"s" * n

    for size in (None, 8 * MiB):
        with pytest.raises(errors.Invalid, match="client went away"):
            driver.add(str(uuid.uuid4()), Cut(), size)
        assert swift_leftovers(driver) == []
    with pytest.raises(errors.Invalid, match="Size mismatch"):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x" * (2 * MiB)), 3 * MiB)
    assert swift_leftovers(driver) == []


def test_config_file_reference_keeps_credentials_out_of_locations(swift_env, tmp_path):
    refs = tmp_path / "swift-refs.conf"
    refs.write_text(
        "[ref1]\n"
        f"auth_address = {swift_env['SWIFT_AUTH_URL']}\n"
        f"user = {swift_env['SWIFT_USER']}\n"
        f"key = {swift_env['SWIFT_KEY']}\n"
        "auth_version = 1\n"
    )
    container = f"glct-ref-{uuid.uuid4().hex[:8]}"
    driver = SwiftDriver(
        settings(
            "refstore",
            "swift",
            swift_store_config_file=str(refs),
            default_swift_reference="ref1",
            swift_store_container=container,
            swift_store_create_container_on_put=True,
        )
    )
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"by reference"), 12)
    assert stored.url == f"swift+config://ref1/{container}/{stored.url.rsplit('/', 1)[1]}"
    assert swift_env["SWIFT_KEY"] not in stored.url
    assert b"".join(driver.get(stored.url)) == b"by reference"
    # Without a references file the location names the auth endpoint, still without user or key.
    plain = make_swift("aio")(tmp_path, "plain")
    stored = plain.add(str(uuid.uuid4()), io.BytesIO(b"plain"), 5)
    assert stored.url.startswith("swift+http://127.0.0.1:")
    assert swift_env["SWIFT_KEY"] not in stored.url and "tester" not in stored.url
    with pytest.raises(errors.ConfigError, match="no section"):
        SwiftDriver(settings("bad", "swift", swift_store_config_file=str(refs), default_swift_reference="nope"))


def test_missing_container_without_create_has_no_access(swift_env, tmp_path):
    driver = make_swift("aio")(tmp_path, "nocont", swift_store_create_container_on_put=False)
    probe = driver.probe()
    assert not contains(probe.capabilities, Capability.READ_ACCESS) and "does not exist" in probe.reason
    with pytest.raises(base.StoreUnavailable, match="does not exist"):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x"), 1)


def test_bad_credentials_and_unreachable_auth(swift_env, tmp_path):
    driver = make_swift("aio")(tmp_path, "badkey", swift_store_key="wrong")
    probe = driver.probe()
    assert probe.capabilities & Capability.RW_ACCESS == 0
    with pytest.raises(base.StoreUnavailable, match="refused the credentials"):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x"), 1)
    gone = make_swift("aio")(tmp_path, "gone", swift_store_auth_address=f"http://127.0.0.1:{free_port()}/auth/v1.0")
    probe = gone.probe()
    assert probe.unreachable and probe.capabilities & Capability.RW_ACCESS == 0


def test_rgw_swift_serves_the_same_layout(rgw_env, tmp_path):
    driver = make_swift("rgw")(tmp_path, "rgwdlo", swift_store_large_object_chunk_size=1)
    data = raw_bytes(3 * MiB + 1)
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(data), None)
    assert b"".join(driver.get(stored.url)) == data
    assert driver.get(stored.url, MiB - 2, 4).read() == data[MiB - 2 : MiB + 2]
    driver.delete(stored.url)
    assert swift_leftovers(driver) == []


def test_server_stopped_mid_upload(swift_env, tmp_path):
    """The proxy dies between segments: a 503-class error, access dropped, back after a restart."""
    driver = make_swift("aio")(tmp_path, "killed", swift_store_large_object_chunk_size=1)
    pid = int(swift_env["SWIFT_PROXY_PID"])
    try:
        started = time.monotonic()
        with pytest.raises(base.StoreUnavailable):
            driver.add(
                str(uuid.uuid4()),
                SlowReader(raw_bytes(5 * MiB), 0, hook_at=2 * MiB, hook=lambda: os.kill(pid, signal.SIGKILL)),
                None,
            )
        assert time.monotonic() - started < 90
        probe = driver.probe()
        assert probe.unreachable and not contains(probe.capabilities, Capability.READ_ACCESS)
    finally:
        servers.restart("swift")
    assert contains(driver.probe().capabilities, Capability.RW_ACCESS)
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"back"), 4)
    assert b"".join(driver.get(stored.url)) == b"back"
    assert requests.get(swift_options("aio")["swift_store_auth_address"].replace("/auth/v1.0", "/healthcheck")).ok
