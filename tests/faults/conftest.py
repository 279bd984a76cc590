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
