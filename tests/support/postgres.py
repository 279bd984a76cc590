"""The private PostgreSQL of a test session: tools/pg-start.sh once, a fresh database per user.

Each pytest session gets its own cluster directory and a free port, so
concurrent sessions on one machine never share (or stop) each other's server.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "tools" / "pg-start.sh"
STOP = ROOT / "tools" / "pg-stop.sh"
DATABASE_ENV = "GLANCELITE_TEST_DATABASE"


class PostgresUnavailable(RuntimeError):
    pass


class PostgresCluster:
    def __init__(self, directory: str, port: int, admin_url: str):
        self.directory = directory
        self.port = port
        self.admin_url = admin_url

    @classmethod
    def start(cls, timeout: float = 120.0, port: int | None = None) -> PostgresCluster:
        """``port``: listen there (a test that starts a client before its server); a free one otherwise."""
        # Under /tmp itself: pytest's tmp dirs are 0700 root, which user postgres cannot enter.
        directory = tempfile.mkdtemp(prefix="glancelite-pg-", dir="/tmp")
        # The owner PID makes the cluster stop itself should this session be killed before teardown.
        env = {**os.environ, "GLANCELITE_PG_DIR": directory, "GLANCELITE_PG_OWNER_PID": str(os.getpid())}
        env.pop("GLANCELITE_PG_PORT", None)
        if port is not None:
            env["GLANCELITE_PG_PORT"] = str(port)
        try:
            proc = subprocess.run(["bash", str(START)], env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            cls._stop_dir(directory)
            raise PostgresUnavailable(f"tools/pg-start.sh did not finish in {timeout}s") from exc
        if proc.returncode != 0:
            cls._stop_dir(directory)
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PostgresUnavailable(f"tools/pg-start.sh failed ({proc.returncode}): {' | '.join(detail)}")
        values = {}
        for line in proc.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                values[key] = shlex.split(value)[0] if value else ""
        return cls(directory, int(values["GLANCELITE_PG_PORT"]), values["GLANCELITE_PG_URL"])

    @staticmethod
    def _stop_dir(directory: str) -> None:
        subprocess.run(["bash", str(STOP)], env={**os.environ, "GLANCELITE_PG_DIR": directory}, timeout=60)

    def stop(self) -> None:
        self._stop_dir(self.directory)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """A new database (a fresh name unless given), a copy of ``template`` when named."""
        name = name or f"glancelite_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """Skip (printing why) on a developer machine; fail in CI, where PostgreSQL is part of the gate."""
    message = f"PostgreSQL tier unavailable: {reason}"
    if in_ci():
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


def wanted_backend() -> str:
    """Which database the ``service`` fixture uses: GLANCELITE_TEST_DATABASE=postgresql or sqlite (default)."""
    value = os.environ.get(DATABASE_ENV, "sqlite").strip().lower()
    if value in ("postgres", "postgresql", "pg"):
        return "postgresql"
    if value in ("", "sqlite"):
        return "sqlite"
    raise pytest.UsageError(f"{DATABASE_ENV}={value!r}: expected sqlite or postgresql")
