"""The fault-injection tier: real components broken on purpose, then checked for "nothing lost, nothing left".

Every case ends with ``assert_audit_clean``: ``glancelite-manage store audit`` run as a subprocess
over the service's configuration must find no orphan, missing, wrong-size, leftover or unassigned
object in any store (the reserved staging and tasks stores included) and exit 0.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.server import manage

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


@pytest.fixture
def http():
    """A session asking for Glance's JSON error bodies, so a case can read the messages."""
    with requests.Session() as session:
        session.headers["Accept"] = "application/json"
        yield session
