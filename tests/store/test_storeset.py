"""StoreSet: start-up validation, the one capability check, live state, reserved stores."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import uuid

import pytest

from glancelite import errors
from glancelite.model import Location
from glancelite.settings import Settings, StoreSettings
from glancelite.store import base, registry
from glancelite.store.capabilities import Capability
from glancelite.store.stores import StoreSet, UnknownStore
from tests.store.cases_local import WebRoot
from tests.support.payloads import raw_bytes


def file_settings(store_id, datadir, *, reserved=False, read_only=False, weight=0, **options):
    return StoreSettings(
        id=store_id,
        type="file",
        description=f"{store_id} store",
        weight=weight,
        options={"filesystem_store_datadir": str(datadir), **options},
        reserved=reserved,
        read_only=read_only,
    )


def settings_with(tmp_path, *extra, default="fast", interval=0, **kw) -> Settings:
    stores = (
        file_settings("fast", tmp_path / "fast", weight=100),
        *extra,
        file_settings("os_glance_staging_store", tmp_path / "staging", reserved=True),
        file_settings("os_glance_tasks_store", tmp_path / "tasks", reserved=True),
    )
    return Settings(
        multi_store=True, stores=stores, default_store=default, store_capability_refresh_interval=interval, **kw
    )


@pytest.fixture
def storeset(tmp_path):
    s = StoreSet(settings_with(tmp_path, file_settings("slow", tmp_path / "slow", weight=50)))
    yield s
    s.close()


def test_public_ids_hide_reserved_and_sort_by_weight(storeset):
    assert storeset.public_ids() == ["fast", "slow"]
    assert [s["id"] for s in storeset.info()] == ["fast", "slow"]
    assert storeset.info()[0] == {"id": "fast", "description": "fast store", "default": "true"}


@pytest.mark.parametrize("target", ["os_glance_staging_store", "os_glance_tasks_store", "nope"])
def test_reserved_and_unknown_targets_refused(storeset, target):
    with pytest.raises(UnknownStore, match=f"Store for identifier {target} not found") as info:
        storeset.validate_target(target)
    assert isinstance(info.value, errors.Invalid)
    with pytest.raises(UnknownStore):
        storeset.write(target, str(uuid.uuid4()), io.BytesIO(b"x"), 1)


def test_reserved_store_usable_internally(storeset):
    stored = storeset.write("os_glance_staging_store", "img", io.BytesIO(b"staged"), 6, internal=True)
    loc = Location(url=stored.url, metadata={"store": "os_glance_staging_store"})
    assert storeset.read(loc).read() == b"staged"
    assert storeset.delete_location(loc) is True
    assert storeset.delete_location(loc) is False  # already gone is not an error


def test_write_read_delete_through_the_set(storeset):
    stored = storeset.write("slow", "img-1", io.BytesIO(b"hello world"), None)
    meta = storeset.location_metadata("slow", stored)
    assert meta == {"store": "slow"}
    loc = Location(url=stored.url, metadata=meta)
    assert storeset.store_of(loc) == "slow"
    assert storeset.read(loc, 6, 5).read() == b"world"
    assert storeset.get_size(loc) == 11
    storeset.delete(loc)
    with pytest.raises(base.StoreNotFound):
        storeset.read(loc)


def test_location_without_metadata_found_by_url(storeset):
    stored = storeset.write(None, "img-2", io.BytesIO(b"legacy"), 6)
    assert storeset.store_of(Location(url=stored.url, metadata={})) == "fast"


def test_sort_locations_by_weight(storeset):
    locs = [Location("file:///x", {"store": "slow"}), Location("file:///y", {"store": "fast"}), Location("z", {})]
    assert [loc.url for loc in storeset.sort_locations(locs)] == ["file:///y", "file:///x", "z"]


def test_read_only_store_refuses_add_with_410(tmp_path):
    s = StoreSet(settings_with(tmp_path, file_settings("ro", tmp_path / "ro", read_only=True)))
    with pytest.raises(base.StoreAddDisabled) as info:
        s.write("ro", "img", io.BytesIO(b"x"), 1)
    assert isinstance(info.value, errors.Gone)
    assert "ro" in info.value.message
    detail = {d["id"]: d for d in s.detail()}["ro"]
    assert "WRITE_ACCESS" not in detail["capabilities"]
    assert detail["read-only"] == "true"
    with pytest.raises(base.StoreDeleteNotSupported):
        s.delete(Location(url=f"file://{tmp_path}/ro/x", metadata={"store": "ro"}))


class TickingClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_live_capabilities_refresh_interval(tmp_path):
    clock = TickingClock()
    s = StoreSet(settings_with(tmp_path, interval=10), clock=clock)
    calls = []
    driver = s._entries["fast"].driver
    original = driver.probe
    driver.probe = lambda: calls.append(1) or original()
    s.probe("fast")
    clock.now += 5
    s.probe("fast")
    assert calls == []  # within the interval: cached
    clock.now += 6
    s.probe("fast")
    assert calls == [1]


def test_http_store_refuses_add_and_delete(tmp_path):
    http = StoreSettings(id="web", type="http", description=None, weight=0, options={})
    s = StoreSet(settings_with(tmp_path, http))
    with pytest.raises(base.StoreAddDisabled):
        s.write("web", "img", io.BytesIO(b"x"), 1)
    loc = Location(url="http://127.0.0.1:9/x", metadata={"store": "web"})
    with pytest.raises(base.StoreDeleteNotSupported):
        s.delete(loc)
    assert s.delete_location(loc) is False
    assert {d["id"]: d for d in s.info()}["web"]["read-only"] == "true"


def test_writable_follows_capabilities_not_types(tmp_path, counting_type):
    """WRITE_ACCESS as configured decides: a read_only store and a driver without the bit are not writable."""
    http = StoreSettings(id="web", type="http", description=None, weight=0, options={})
    ro = file_settings("ro", tmp_path / "ro", read_only=True)
    s = StoreSet(settings_with(tmp_path, http, ro, counting_type))
    assert [store for store in s.public_ids() if s.writable(store)] == ["fast", "cnt"]
    assert [d["id"] for d in s.info() if d.get("read-only")] == ["web", "ro"]
    # A store that lost WRITE_ACCESS for now (full) is still a target: the write answers 413.
    s._entries["fast"].probe = base.Probe(Capability.READ_RANDOM, "full", full=True)
    s._entries["fast"].probed_at = float("inf")
    assert s.writable("fast")
    with pytest.raises(base.StoreFull):
        s.write("fast", "img", io.BytesIO(b"x"), 1)


def test_http_unreachable_drops_read_then_recovers(tmp_path):
    web_root = tmp_path / "web"
    web_root.mkdir()
    (web_root / "img").write_bytes(b"remote data")
    web = WebRoot(web_root)
    http = StoreSettings(id="web", type="http", description=None, weight=0, options={})
    s = StoreSet(settings_with(tmp_path, http, interval=0))
    try:
        loc = Location(url=f"{web.url}/img", metadata={"store": "web"})
        assert s.read(loc).read() == b"remote data"
        assert s.read(loc, 7, 4).read() == b"data"
    finally:
        web.close()
    with pytest.raises(base.StoreUnavailable) as info:
        s.read(loc)
    assert isinstance(info.value, errors.Unavailable)
    detail = {d["id"]: d for d in s.detail()}["web"]
    assert "READ_ACCESS" not in detail["capabilities"]
    with pytest.raises(base.StoreUnavailable):  # the capability check refuses before the driver runs
        s.read(loc)


def test_http_redirect_limit(tmp_path):
    import http.server
    import threading

    class Loop(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            n = int(self.path.strip("/") or 0)
            self.send_response(302)
            self.send_header("Location", f"/{n + 1}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Loop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        opts = {"http_max_redirects": 3}
        s = StoreSet(settings_with(tmp_path, StoreSettings("web", "http", None, 0, opts)))
        loc = Location(url=f"http://127.0.0.1:{server.server_address[1]}/0", metadata={"store": "web"})
        with pytest.raises(base.StoreUnavailable, match="More than 3 redirects"):
            s.read(loc)
    finally:
        server.shutdown()
        server.server_close()


def test_http_verifies_tls_by_default(tmp_path):
    s = StoreSet(settings_with(tmp_path, StoreSettings("web", "http", None, 0, {})))
    assert s._entries["web"].driver.session.verify is True


# -- start-up refusals --------------------------------------------------------------


def test_operator_store_with_reserved_prefix_refused(tmp_path):
    bad = file_settings("os_glance_mine", tmp_path / "mine")
    with pytest.raises(errors.ConfigError, match="os_glance_"):
        StoreSet(settings_with(tmp_path, bad))


def test_reserved_dir_shared_with_a_file_store_refused(tmp_path):
    clash = file_settings("other", tmp_path / "staging")
    with pytest.raises(errors.ConfigError, match="staging.*other|other.*staging|reserved") as info:
        StoreSet(settings_with(tmp_path, clash))
    assert info.value.option == "filesystem_store_datadir"


def test_default_store_must_exist_and_not_be_reserved(tmp_path):
    with pytest.raises(errors.ConfigError, match="default_backend"):
        StoreSet(settings_with(tmp_path, default="os_glance_staging_store"))
    with pytest.raises(errors.ConfigError, match="Store for identifier nope not found"):
        StoreSet(settings_with(tmp_path, default="nope"))


def test_bad_driver_option_names_group_and_option(tmp_path):
    bad = file_settings("bad", tmp_path / "bad", filesystem_store_file_perm=200)
    with pytest.raises(errors.ConfigError) as info:
        StoreSet(settings_with(tmp_path, bad))
    assert (info.value.group, info.value.option) == ("bad", "filesystem_store_file_perm")


def test_missing_sdk_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(
        registry._registry,
        "s3",
        registry.DriverSpec("glancelite_no_such_module:X", hint="pip install 'glancelite[s3]'"),
    )
    monkeypatch.delitem(registry._loaded, "s3", raising=False)
    s3 = StoreSettings("objects", "s3", None, 0, {})
    with pytest.raises(errors.ConfigError, match=r"\[objects\].*pip install 'glancelite\[s3\]'"):
        StoreSet(settings_with(tmp_path, s3))


# -- file store live state on real mounts (tests run as root) ---------------------------


@contextlib.contextmanager
def tmpfs(path, size="2m"):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root/CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_is_413_and_leaves_nothing(tmp_path):
    with tmpfs(tmp_path / "small"):
        s = StoreSet(settings_with(tmp_path, file_settings("small", tmp_path / "small")))
        with pytest.raises(base.StoreFull) as info:
            s.write("small", "big", io.BytesIO(raw_bytes(3 * 1024 * 1024)), None)
        assert isinstance(info.value, errors.TooLarge)
        assert os.listdir(tmp_path / "small") == []
        # Fill it so that less than a chunk is free: the probe reports it full.
        (tmp_path / "small" / "filler").write_bytes(b"\0" * (1536 * 1024))
        probe = s.probe("small")
        assert probe.full and not probe.capabilities & Capability.WRITE_ACCESS
        with pytest.raises(base.StoreFull):
            s.write("small", "more", io.BytesIO(b"x"), 1)
        # Deleting still works on a full store: that is how space comes back.
        os.unlink(tmp_path / "small" / "filler")
        assert not s.probe("small").full


def test_read_only_filesystem_drops_write(tmp_path):
    with tmpfs(tmp_path / "rofs") as mount:
        (mount / "keep").write_bytes(b"old image")
        s = StoreSet(settings_with(tmp_path, file_settings("rofs", mount)))
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        probe = s.probe("rofs")
        assert not probe.capabilities & Capability.WRITE_ACCESS
        assert probe.reason == "no data directory is writable"
        with pytest.raises(base.StoreAddDisabled, match="no data directory is writable"):
            s.write("rofs", "img", io.BytesIO(b"x"), 1)
        loc = Location(url=f"file://{mount}/keep", metadata={"store": "rofs"})
        assert s.read(loc).read() == b"old image"


class CountingDriver(base.Driver):
    """A non-reusable, whole-object-only driver registered as a plugin type."""

    TYPE = "counting"
    SCHEMES = ("counting",)
    STATIC_CAPABILITIES = Capability.RW_ACCESS
    instances = 0
    closed = 0
    objects: dict[str, bytes] = {}

    def __init__(self, store):
        super().__init__(store)
        type(self).instances += 1

    def add(self, image_id, reader, size):
        data = reader.read()
        self.objects[image_id] = data
        return base.StoredObject(url=f"counting://{image_id}", size=len(data))

    def get(self, url, offset=0, length=None):
        data = self.objects[url.split("://")[1]]
        return base.DataStream([data], size=len(data), length=len(data))

    def get_size(self, url):
        return len(self.objects[url.split("://")[1]])

    def delete(self, url):
        self.objects.pop(url.split("://")[1])

    def close(self):
        type(self).closed += 1


@pytest.fixture
def counting_type(monkeypatch):
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    registry.register("counting", CountingDriver)
    CountingDriver.instances = CountingDriver.closed = 0
    return StoreSettings("cnt", "counting", None, 0, {})


def test_non_reusable_driver_is_fresh_per_operation(tmp_path, counting_type):
    s = StoreSet(settings_with(tmp_path, counting_type))
    assert CountingDriver.instances == 1  # built and validated at start
    stored = s.write("cnt", "img", io.BytesIO(b"abc"), 3)
    loc = Location(url=stored.url, metadata={"store": "cnt"})
    with s.read(loc) as stream:
        assert b"".join(stream) == b"abc"
    s.delete(loc)
    assert CountingDriver.instances == 4
    assert CountingDriver.closed == 3  # each one-off instance closed after its operation


def test_ranged_read_refused_by_the_check_names_the_capability(tmp_path, counting_type):
    s = StoreSet(settings_with(tmp_path, counting_type))
    stored = s.write("cnt", "img2", io.BytesIO(b"abcdef"), 6)
    loc = Location(url=stored.url, metadata={"store": "cnt"})
    with pytest.raises(base.RangeNotSupported, match="cnt.*READ_OFFSET") as info:
        s.read(loc, 2, 2)
    assert isinstance(info.value, errors.Invalid)
    with pytest.raises(base.RangeNotSupported, match="READ_CHUNK"):
        s.read(loc, 0, 2)


def test_entry_point_drivers_are_registered(tmp_path, monkeypatch):
    """A third-party distribution publishing glancelite.store.drivers is picked up at start."""
    dist = tmp_path / "site" / "glstore_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: glstore-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[glancelite.store.drivers]\nplugin = tests.store.test_storeset:CountingDriver\nfile = nowhere:Nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(registry, "_entry_points_read", False)
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    assert registry.load_entry_points() == ["plugin"]  # built-in 'file' is not replaced
    assert registry.driver_class("plugin") is CountingDriver
    assert registry.registered()["file"] == "glancelite.store.drivers.file:FileDriver"
    assert registry.load_entry_points() == []  # once per process
