"""rbd driver on a real Ceph cluster (mon + memstore OSD) with the cephx user client.glance."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import uuid

import pytest

from glancelite import errors
from glancelite.store import base
from glancelite.store.capabilities import Capability, contains
from tests.backends import servers
from tests.backends.factories import make_rbd, rbd_leftovers, rbd_options, settings
from tests.support.payloads import raw_bytes

rados = pytest.importorskip(
    "rados", reason="Debian's python3-rados is not importable (tools/backends/install-backends.sh)"
)
rbd = pytest.importorskip("rbd", reason="Debian's python3-rbd is not importable (tools/backends/install-backends.sh)")
from glancelite.store.drivers.rbd import RbdDriver  # noqa: E402 - needs the bindings checked above

pytestmark = pytest.mark.backend
MiB = 1024 * 1024


@pytest.fixture
def admin(ceph_env):
    """An admin connection to inspect what the driver wrote (as an operator would with the rbd CLI)."""
    cluster = rados.Rados(conffile=ceph_env["CEPH_CONF"], conf={"keyring": ceph_env["CEPH_ADMIN_KEYRING"]})
    cluster.connect(timeout=30)
    ioctx = cluster.open_ioctx(ceph_env["CEPH_RBD_POOL"])
    yield ioctx
    ioctx.close()
    cluster.shutdown()


def test_image_is_written_as_glance_writes_it(ceph_env, admin, tmp_path):
    driver = make_rbd(tmp_path, "layout")
    data = raw_bytes(5 * MiB + 3)
    image_id = str(uuid.uuid4())
    stored = driver.add(image_id, io.BytesIO(data), len(data))
    assert stored.url == f"rbd://{ceph_env['CEPH_FSID']}/{ceph_env['CEPH_RBD_POOL']}/{image_id}/snap"
    with rbd.Image(admin, image_id, read_only=True) as image:
        assert not image.old_format()  # format 2
        assert image.features() & rbd.RBD_FEATURE_LAYERING
        assert image.stat()["order"] == 22  # rbd_store_chunk_size = 4 MiB
        assert image.size() == len(data)
        assert [s["name"] for s in image.list_snaps()] == ["snap"]
        assert image.is_protected_snap("snap")
    with rbd.Image(admin, image_id, snapshot="snap", read_only=True) as snap:
        assert snap.read(0, len(data)) == data


def test_unknown_size_grows_in_doubling_steps(ceph_env, admin, tmp_path):
    """Sizes seen while writing 20 MiB in 1 MiB chunks: 1, 3, 7, 15, 31 MiB (not one resize per chunk)."""
    driver = make_rbd(tmp_path, "grow", rbd_store_chunk_size=1)
    image_id = str(uuid.uuid4())
    data = raw_bytes(20 * MiB)
    seen: set[int] = set()

    class Watching:
        def __init__(self):
            self.buf = io.BytesIO(data)

        def read(self, n=-1):
            if self.buf.tell():
                with rbd.Image(admin, image_id, read_only=True) as image:
                    seen.add(image.size() // MiB)
            return self.buf.read(n)

    stored = driver.add(image_id, Watching(), None)
    assert seen <= {1, 3, 7, 15, 31}, seen
    assert len(seen) >= 4, seen
    assert driver.get_size(stored.url) == len(data)
    assert b"".join(driver.get(stored.url)) == data


def test_delete_with_clones_is_in_use_and_loses_nothing(ceph_env, admin, tmp_path):
    driver = make_rbd(tmp_path, "clones")
    data = raw_bytes(MiB)
    image_id = str(uuid.uuid4())
    stored = driver.add(image_id, io.BytesIO(data), len(data))
    clone = f"{image_id}-vm-disk"
    rbd.RBD().clone(admin, image_id, "snap", admin, clone, features=rbd.RBD_FEATURE_LAYERING)
    with pytest.raises(base.InUse) as info:
        driver.delete(stored.url)
    assert isinstance(info.value, errors.Conflict)  # 409
    assert clone in info.value.message
    with rbd.Image(admin, image_id, read_only=True) as image:
        assert image.is_protected_snap("snap")
    assert b"".join(driver.get(stored.url)) == data
    with rbd.Image(admin, clone, read_only=True) as child:
        assert child.read(0, 4096) == data[:4096]
    rbd.RBD().remove(admin, clone)
    driver.delete(stored.url)
    assert image_id not in rbd.RBD().list(admin)
    with pytest.raises(base.StoreNotFound):
        driver.delete(stored.url)


def test_connection_reused_only_when_declared(ceph_env, tmp_path):
    reusable = make_rbd(tmp_path, "reuse")
    stored = reusable.add(str(uuid.uuid4()), io.BytesIO(b"r" * 10), 10)
    handle = reusable._cluster
    assert handle is not None
    reusable.get_size(stored.url)
    assert reusable._cluster is handle
    reusable.close()
    assert reusable._cluster is None

    class OneShot(RbdDriver):
        STATIC_CAPABILITIES = Capability.RW_ACCESS

    oneshot = OneShot(settings("oneshot", "rbd", **rbd_options()))
    stored = oneshot.add(str(uuid.uuid4()), io.BytesIO(b"o" * 10), 10)
    assert oneshot._cluster is None
    assert b"".join(oneshot.get(stored.url)) == b"o" * 10
    assert oneshot._cluster is None


def test_two_pools_side_by_side(ceph_env, tmp_path):
    a, b = make_rbd(tmp_path, "pool-a"), make_rbd(tmp_path, "pool-b")
    assert a.pool != b.pool
    image_id = str(uuid.uuid4())
    url_a = a.add(image_id, io.BytesIO(b"in a"), 4).url
    url_b = b.add(image_id, io.BytesIO(b"in b!"), 5).url  # same image id, other pool: no clash
    assert b"".join(a.get(url_a)) == b"in a" and b"".join(b.get(url_b)) == b"in b!"
    with pytest.raises(base.BadStoreUri):
        b.get(url_a)


def test_unreachable_cluster_drops_access_within_timeout(ceph_env, tmp_path):
    conf = tmp_path / "ceph.conf"
    text = open(ceph_env["CEPH_CONF"]).read()
    from tests.support.server import free_port

    port = free_port()
    text = "\n".join(
        f"mon host = [v1:127.0.0.1:{port}]" if line.startswith("mon host") else line for line in text.splitlines()
    )
    conf.write_text(text + "\n")
    driver = make_rbd(tmp_path, "nomon", rbd_store_ceph_conf=str(conf), rados_connect_timeout=3)
    started = time.monotonic()
    probe = driver.probe()
    assert probe.unreachable and probe.capabilities & Capability.RW_ACCESS == 0
    with pytest.raises(base.StoreUnavailable):
        driver.add(str(uuid.uuid4()), io.BytesIO(b"x"), 1)
    assert time.monotonic() - started < 30


@pytest.fixture
def outage_cluster():
    """A Ceph cluster of its own (no radosgw): freezing its OSD cannot disturb the other tests."""
    env = servers.require("ceph-outage")
    yield env
    servers.stop("ceph-outage")


def test_osd_stopped_mid_upload(outage_cluster, tmp_path):
    """The OSD freezes mid-write: a 503-class error after rados_connect_timeout, access back after."""
    env = outage_cluster
    pid = int(env["CEPH_OSD_PID"])
    driver = RbdDriver(
        settings(
            "frozen",
            "rbd",
            rbd_store_pool=env["CEPH_RBD_POOL"],
            rbd_store_user=env["CEPH_GLANCE_USER"],
            rbd_store_ceph_conf=env["CEPH_CONF"],
            rbd_store_chunk_size=1,
            rados_connect_timeout=3,
        )
    )
    image_id = str(uuid.uuid4())

    class Freeze:
        def __init__(self):
            self.buf = io.BytesIO(raw_bytes(8 * MiB))

        def read(self, n=-1):
            if self.buf.tell() == 3 * MiB:
                os.kill(pid, signal.SIGSTOP)
            return self.buf.read(n)

    resumed = threading.Timer(12, os.kill, (pid, signal.SIGCONT))
    try:
        started = time.monotonic()
        with pytest.raises(base.StoreUnavailable):
            driver.add(image_id, Freeze(), 8 * MiB)
        assert time.monotonic() - started < 60
        assert driver.probe().unreachable
        resumed.start()
    finally:
        if not resumed.is_alive():
            os.kill(pid, signal.SIGCONT)
    resumed.join()
    deadline = time.monotonic() + 60
    while not contains(driver.probe().capabilities, Capability.RW_ACCESS) and time.monotonic() < deadline:
        time.sleep(1)
    assert contains(driver.probe().capabilities, Capability.RW_ACCESS)
    # The driver works again on a rebuilt connection; the partial image (its removal could not
    # reach the frozen OSD) is removed by the driver's pending removals once the cluster answers
    # and the dead connection's watch lapses (osd_client_watch_timeout: 5 s on the test cluster).
    stored = driver.add(str(uuid.uuid4()), io.BytesIO(b"back"), 4)
    assert b"".join(driver.get(stored.url)) == b"back"
    deadline = time.monotonic() + 60
    while image_id in rbd_leftovers(driver):
        assert time.monotonic() < deadline, f"the partial image stayed: pending {driver.pending_removals.pending()}"
        time.sleep(1)
    assert driver.pending_removals.pending() == []
