"""Session fixtures: the real servers of tools/backends, started once per session, stopped at exit.

A backend that cannot start skips its tests with the reason (fails them when CI=true).
"""

from __future__ import annotations

import pytest

from tests.backends import servers


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    return servers.require("s3")


@pytest.fixture(scope="session")
def swift_env() -> dict[str, str]:
    return servers.require("swift")


@pytest.fixture(scope="session")
def ceph_env() -> dict[str, str]:
    return servers.require("ceph")


@pytest.fixture(scope="session")
def rgw_env(ceph_env) -> dict[str, str]:
    if "RGW_ENDPOINT" not in ceph_env:
        servers.unavailable("radosgw", "not started (GLANCELITE_TEST_RGW=0)")
    return ceph_env


def pytest_terminal_summary(terminalreporter):
    started = servers.timings()
    if started:
        text = ", ".join(f"{name} {seconds}s" for name, seconds in started.items())
        terminalreporter.write_line(f"backend servers started (wall time of the start scripts): {text}")
