"""The fault-injection tier: real components broken on purpose, then checked for "nothing lost, nothing left".

Every case ends with ``assert_audit_clean``: ``glancelite-manage store audit`` run as a subprocess
over the service's configuration must find no orphan, missing, wrong-size, leftover or unassigned
object in any store (the reserved staging and tasks stores included) and exit 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.backends.servers import unavailable
from tests.support.imports import WebSource
from tests.support.server import free_port, manage

ROOT = Path(__file__).resolve().parents[2]

SUMMARY = re.compile(
    r"summary: stores audited=(?P<audited>\d+) skipped=(?P<skipped>\d+) failed=(?P<failed>\d+); "
    r"orphan=(?P<orphan>\d+) missing=(?P<missing>\d+) wrong-size=(?P<wrong_size>\d+) "
    r"leftover=(?P<leftover>\d+) unassigned=(?P<unassigned>\d+); removed=(?P<removed>\d+) not-removed=(?P<not_removed>\d+)"
)
FINDING_COUNTS = ("failed", "orphan", "missing", "wrong_size", "leftover", "unassigned", "removed", "not_removed")


def assert_audit_clean(config: Path, *, stores: int) -> str:
    """The store audit over ``config`` finds nothing in any of its ``stores`` stores; returns its output."""
    proc = manage(config, "store", "audit", check=False)
    assert proc.returncode == 0, f"store audit exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    last = proc.stdout.strip().splitlines()[-1]
    summary = SUMMARY.fullmatch(last)
    assert summary, f"no summary line in the audit's output:\n{proc.stdout}"
    counts = {key: int(value) for key, value in summary.groupdict().items()}
    assert counts["audited"] == stores and counts["skipped"] == 0, last
    assert {key: counts[key] for key in FINDING_COUNTS} == dict.fromkeys(FINDING_COUNTS, 0), proc.stdout
    return proc.stdout


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A ``size`` tmpfs mounted on ``path`` (root only: skips saying so), lazily unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {path} ({done.stderr.decode().strip()}): needs root or CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module")
def web():
    """A 127.0.0.1 web-download source; ``web.filtering_opts`` lets a service's import filter reach it."""
    source = WebSource()
    yield source
    source.close()


@pytest.fixture
def http():
    """A session asking for Glance's JSON error bodies, so a case can read the messages."""
    with requests.Session() as session:
        session.headers["Accept"] = "application/json"
        yield session


class Moto:
    """moto_server on 127.0.0.1:``port``, killed and started again by PID."""

    def __init__(self, binary: str, log: Path):
        self.binary, self.log, self.port = binary, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Moto:
        self.proc = subprocess.Popen(
            [self.binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                if requests.get(f"{self.url}/moto-api/", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"moto_server did not answer on {self.url} within 30 s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, but nothing answers."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def store_options(self) -> dict[str, str]:
        """An s3 store on this server; 5 MiB parts, so a few MiB make a multipart upload."""
        return {
            "s3_store_host": self.url,
            "s3_store_access_key": "testing",
            "s3_store_secret_key": "testing",
            "s3_store_bucket": "faults",
            "s3_store_create_bucket_on_put": "true",
            "s3_store_large_object_size": "5",
            "s3_store_large_object_chunk_size": "5",
        }


@pytest.fixture
def moto(tmp_path):
    binary = str(ROOT / ".venv-tools" / "bin" / "moto_server")
    if not os.access(binary, os.X_OK):
        binary = shutil.which("moto_server") or ""
    if not binary:
        unavailable("s3", "moto_server not found: run tools/backends/install-backends.sh")
    server = Moto(binary, tmp_path / "moto.log").start()
    yield server
    server.kill()


def bucket_contents(moto) -> list[str]:
    """Objects and unfinished multipart uploads in the store's bucket, asked of moto directly."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        objects = client.list_objects_v2(Bucket="faults").get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket="faults").get("Uploads", [])
    except client.exceptions.NoSuchBucket:
        return []
    return sorted([o["Key"] for o in objects] + [f"multipart:{u['Key']}" for u in uploads])


# -- Swift and Ceph (the servers of tests/backends/servers.py) -------------------------------


class SwiftProxy:
    """The Swift all-in-one's tempauth proxy, killed and started again by PID (the rest keeps running).

    Swift keeps its data on disk in the object servers, so what was written before the kill is
    still there after: exactly what a dead upload's cleanup must find and remove.
    """

    def __init__(self, env: dict[str, str], test_dir: Path):
        self.env, self.pidfile = env, test_dir / "pids" / "proxy"
        self.auth_url, self.user, self.key = env["SWIFT_AUTH_URL"], env["SWIFT_USER"], env["SWIFT_KEY"]
        self.base = self.auth_url.rsplit("/auth/", 1)[0]
        self.log = test_dir / "log" / "proxy.log"
        self.cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")

    @property
    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while _answers(f"{self.base}/healthcheck"):
            assert time.monotonic() < end, "the Swift proxy still answers after SIGKILL"
            time.sleep(0.05)

    def start(self) -> None:
        """The same command line again; its PID recorded where swift-stop.sh finds it."""
        proc = subprocess.Popen(self.cmdline, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        self.pidfile.write_text(str(proc.pid))
        end = time.monotonic() + 30
        while not _answers(f"{self.base}/healthcheck"):
            assert proc.poll() is None and time.monotonic() < end, f"the Swift proxy did not come back: {self.log}"
            time.sleep(0.1)

    def store_options(self, container: str) -> dict[str, str]:
        """A single-tenant swift store in ``container``, segmented (DLO) from 1 MiB in 1 MiB segments."""
        return {
            "swift_store_auth_address": self.auth_url,
            "swift_store_user": self.user,
            "swift_store_key": self.key,
            "swift_store_auth_version": "1",
            "swift_store_container": container,
            "swift_store_create_container_on_put": "true",
            "swift_store_large_object_size": "1",
            "swift_store_large_object_chunk_size": "1",
        }

    def listing(self, container: str) -> list[str]:
        """Object names of ``container``, asked of Swift directly ([] when it does not exist)."""
        import swiftclient.client as sc
        from swiftclient.exceptions import ClientException

        url, token = sc.get_auth(self.auth_url, self.user, self.key)
        try:
            return sorted(o["name"] for o in sc.get_container(url, token, container, full_listing=True)[1])
        except ClientException as exc:
            if exc.http_status == 404:
                return []
            raise


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def swift_proxy():
    from tests.backends import servers

    env = servers.require("swift", alone=True)
    return SwiftProxy(env, Path(env["SWIFT_TEST_DIR"]))


class CephOsd:
    """The single memstore OSD of the Ceph test cluster, frozen (SIGSTOP) and thawed by PID.

    Killing it would lose the memstore and the pools with it; frozen, it holds every write in
    flight exactly as a hung or partitioned OSD does, and librados times out (rados_connect_timeout).
    """

    def __init__(self, env: dict[str, str]):
        self.env, self.pid, self.pool = env, int(env["CEPH_OSD_PID"]), env["CEPH_RBD_POOL"]

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def store_options(self) -> dict[str, str]:
        """An rbd store in 1 MiB objects; every mon/osd operation bounded to 3 s."""
        return {
            "rbd_store_pool": self.pool,
            "rbd_store_user": self.env["CEPH_GLANCE_USER"],
            "rbd_store_ceph_conf": self.env["CEPH_CONF"],
            "rbd_store_chunk_size": "1",
            "rados_connect_timeout": "3",
        }

    def images(self) -> list[str]:
        """RBD images in the pool, asked of Ceph directly with the admin key."""
        import rados
        import rbd

        # Bounded: an OSD that never recovers from its freeze fails the case instead of hanging the run.
        cluster = rados.Rados(
            conffile=self.env["CEPH_CONF"],
            conf={
                "keyring": self.env["CEPH_ADMIN_KEYRING"],
                "rados_osd_op_timeout": "20",
                "rados_mon_op_timeout": "20",
            },
        )
        cluster.connect(timeout=30)
        try:
            with cluster.open_ioctx(self.pool) as ioctx:
                return sorted(rbd.RBD().list(ioctx))
        finally:
            cluster.shutdown()


# Opt-in: in a whole .ci/run on the 2-core CI machine (2026-12-05) the memstore OSD, thawed after
# its SIGSTOP, kept the upload's in-flight writes 'delayed' for ever (ceph health: slow ops, none
# completing), and the run hung for two hours in the first case. Until the outage is made another
# way (a killed OSD on a persistent objectstore), these cases run only when asked for. The rbd
# driver's removal of a partial image once the cluster answers is also covered, without a freeze,
# by tests/backends/test_rbd.py.
CEPH_FREEZE_OPT_IN = "GLANCELITE_TEST_CEPH_FREEZE"


@pytest.fixture(scope="module")
def ceph_osd():
    from tests.backends import servers

    if os.environ.get(CEPH_FREEZE_OPT_IN) != "1":
        pytest.skip(
            f"OSD-freeze cases need {CEPH_FREEZE_OPT_IN}=1: a thawed memstore OSD was seen to keep writes "
            "delayed for ever on the CI machine (tests/faults/conftest.py says more)"
        )

    pytest.importorskip("rbd", reason="Debian's python3-rbd is not importable (tools/backends/install-backends.sh)")
    # The cluster of its own that freezing an OSD may disturb (mon + memstore OSD, no radosgw).
    osd = CephOsd(servers.require("ceph-outage", alone=True))
    yield osd
    osd.thaw()  # never leave it frozen for the next module
