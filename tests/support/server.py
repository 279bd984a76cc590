"""A real glancelite-api under gunicorn on a free 127.0.0.1 port, stopped by PID."""

from __future__ import annotations

import configparser
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(count: int, low: int = 20000, high: int = 39000) -> int:
    """First of ``count`` consecutive free ports (Swift's object/container/account servers)."""
    for _ in range(200):
        base = random.randint(low, high)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no run of {count} free ports")


def write_config(
    root: Path,
    sections: dict[str, dict[str, str]] | None = None,
    *,
    multi_store: bool = True,
    database: str | None = None,
) -> Path:
    """A glance-api.conf with two weighted file stores and the reserved stores under ``root``.

    ``sections`` overrides or adds options: {"DEFAULT": {"image_size_cap": "100"}}.
    """
    root.mkdir(parents=True, exist_ok=True)
    cp = configparser.RawConfigParser()
    cp.optionxform = str
    cp["DEFAULT"] = {
        "bind_host": "127.0.0.1",
        "bind_port": str(free_port()),
        "workers": "2",
        "log_file": str(root / "api.log"),
    }
    cp["database"] = {"connection": database or f"sqlite:///{root / 'glance.sqlite'}"}
    cp["healthcheck"] = {"disable_by_file_path": str(root / "healthcheck_disable")}
    if multi_store:
        cp["DEFAULT"]["enabled_backends"] = "fast:file, slow:file"
        cp["glance_store"] = {"default_backend": "fast"}
        cp["fast"] = {
            "filesystem_store_datadir": str(root / "fast"),
            "weight": "100",
            "store_description": "Fast local disk",
        }
        cp["slow"] = {
            "filesystem_store_datadir": str(root / "slow"),
            "weight": "90",
            "store_description": "Slow local disk",
        }
        cp["os_glance_staging_store"] = {"filesystem_store_datadir": str(root / "staging")}
        cp["os_glance_tasks_store"] = {"filesystem_store_datadir": str(root / "tasks")}
    else:
        cp["DEFAULT"]["node_staging_uri"] = f"file://{root / 'staging'}"
        cp["glance_store"] = {"filesystem_store_datadir": str(root / "images")}
        cp["task"] = {"work_dir": str(root / "work")}
    for section, values in (sections or {}).items():
        if section != "DEFAULT" and not cp.has_section(section):
            cp.add_section(section)
        for key, value in values.items():
            if value is None:
                cp.remove_option(section, key)
            else:
                cp.set(section, key, value)
    path = root / "glance-api.conf"
    with open(path, "w") as fh:
        cp.write(fh)
    return path


def manage(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "glancelite-manage"), "--config-file", str(config), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


class Server:
    """Start with ``start()``; ``url`` is the service root; ``stop()`` terminates by PID."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None, wrapper: tuple[str, ...] = ()):
        """``env``: the server's environment (default: the test's); ``wrapper``: a command it runs
        under (e.g. ``unshare``), given the glancelite-api command line as its arguments."""
        self.config = config
        self.env = env
        self.wrapper = wrapper
        cp = configparser.RawConfigParser()
        cp.read(config)
        self.port = int(cp["DEFAULT"]["bind_port"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(cp["DEFAULT"].get("log_file", str(config.parent / "api.log")))
        self.proc: subprocess.Popen | None = None

    def start(self, deadline: float = 30.0, *, sync: bool = True) -> Server:
        if sync:
            manage(self.config, "db", "sync")
        self.proc = subprocess.Popen(
            [*self.wrapper, str(BIN / "glancelite-api"), "--config-file", str(self.config)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.config.parent / "api.stderr", "ab"),
            start_new_session=True,
        )
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"glancelite-api exited with {self.proc.returncode}: {self.output()}")
            try:
                if requests.get(self.url + "/versions", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:  # refused, or a slow first answer while stores are probed
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"glancelite-api did not answer within {deadline}s: {self.output()}")

    def output(self) -> str:
        parts = []
        for p in (self.config.parent / "api.stderr", self.log):
            if p.exists():
                parts.append(p.read_text()[-4000:])
        return "\n".join(parts)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                return self.proc.wait(2)
            except subprocess.TimeoutExpired:
                # A worker forked just before the master's SIGTERM reached it ignores that signal
                # (gunicorn's worker has not installed its handlers yet) and the master would wait
                # graceful_timeout for it: tell the workers again. A worker already stopping
                # gracefully only hears what it knows.
                for pid in self.worker_pids():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
        os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(5)
