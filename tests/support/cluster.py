"""Several glancelite-api nodes on one machine sharing a job board: one Redis, one database, the
image stores and the staging directory (as NFS would share them); each node keeps its own tasks
store. Used by tests/cluster and benchmarks/cluster.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.support.server import Server, free_port, manage, write_config

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "backends"


class RedisUnavailable(RuntimeError):
    pass


class Redis:
    """The project's private Redis (tools/backends/redis-start.sh), stopped by its recorded PID."""

    def __init__(self, directory: Path, port: int | None = None):
        self.dir = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "REDIS_TEST_DIR": str(self.dir), "REDIS_PORT": str(self.port), **extra}

    def start(self, *, keep_data: bool = False) -> Redis:
        done = subprocess.run(
            ["bash", str(TOOLS / "redis-start.sh")],
            env=self._env(REDIS_KEEP_DATA="1" if keep_data else "0"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RedisUnavailable(f"redis-start.sh exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return self

    def stop(self, *, keep_data: bool = False) -> None:
        subprocess.run(
            ["bash", str(TOOLS / "redis-stop.sh"), *(["keep"] if keep_data else [])],
            env=self._env(),
            capture_output=True,
            timeout=60,
        )


class Cluster:
    """``count`` nodes; ``start()`` syncs the database once and starts them all."""

    def __init__(
        self,
        root: Path,
        *,
        database: str,
        redis_url: str | None,
        count: int = 3,
        claim_expiry: int = 6,
        workers: int = 1,
        shared_staging: bool = True,
        extra: dict[str, dict[str, str]] | None = None,
    ):
        self.root = root
        self.shared = root / "shared"
        self.database = database
        self.nodes: list[Server] = []
        for index in range(count):
            port = free_port()
            node_root = root / f"node{index}"
            sections: dict[str, dict[str, str]] = {
                "DEFAULT": {
                    "bind_port": str(port),
                    "workers": str(workers),
                    "worker_self_reference_url": f"http://127.0.0.1:{port}",
                },
                "fast": {"filesystem_store_datadir": str(self.shared / "fast")},
                "slow": {"filesystem_store_datadir": str(self.shared / "slow")},
            }
            if shared_staging:  # else each node stages under its own root (write_config's default)
                sections["os_glance_staging_store"] = {"filesystem_store_datadir": str(self.shared / "staging")}
            if redis_url:
                sections["taskflow_jobboard"] = {
                    "backend_url": redis_url,
                    "claim_expiry": str(claim_expiry),
                    "conductor_name": f"node{index}",
                    "shared_staging": str(shared_staging).lower(),
                }
            for section, values in (extra or {}).items():
                sections.setdefault(section, {}).update(values)
            config = write_config(node_root, sections, database=database)
            node = Server(config)
            node.root = node_root
            node.name = f"node{index}"
            self.nodes.append(node)

    def start(self) -> Cluster:
        manage(self.nodes[0].config, "db", "sync")
        for node in self.nodes:
            node.start(deadline=60, sync=False)
        return self

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()

    def kill(self, node: Server) -> None:
        """SIGKILL the node's master and workers at once (power loss): nothing runs a revert."""
        pids = [node.proc.pid, *node.worker_pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.proc.wait(10)

    def claims_in_log(self, node: Server) -> list[str]:
        """The task ids whose import job this node's conductors claimed (from its log)."""
        if not node.log.exists():
            return []
        found = []
        for line in node.log.read_text().splitlines():
            if "claimed the import job of task" in line:
                found.append(line.split("claimed the import job of task", 1)[1].split()[0])
        return found


def wait_images(http, node_url: str, image_ids, headers, timeout: float) -> dict[str, dict]:
    """Poll until every image's import tasks are over (success or failure); the images as last seen."""
    deadline = time.monotonic() + timeout
    images: dict[str, dict] = {}
    pending = set(image_ids)
    while pending and time.monotonic() < deadline:
        for image_id in list(pending):
            try:
                image = http.get(f"{node_url}/v2/images/{image_id}", headers=headers, timeout=10).json()
                tasks = http.get(f"{node_url}/v2/images/{image_id}/tasks", headers=headers, timeout=10).json()
            except (requests.RequestException, ValueError):
                continue
            images[image_id] = image
            over = tasks.get("tasks") and all(t["status"] in ("success", "failure") for t in tasks["tasks"])
            if over and image["status"] in ("active", "queued", "killed"):
                pending.discard(image_id)
        if pending:
            time.sleep(0.5)
    return images
