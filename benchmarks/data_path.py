"""Data path benchmark: upload and download an image through the real API, next to this machine's ceilings.

    .venv/bin/python benchmarks/data_path.py [--size-mib 1024] [--workdir DIR]

Measured in the same run:
- single-core md5 and sha512 speed (the upload hashes both, on two threads,
  so its ceiling is the slower one),
- disk write speed of the store's filesystem (1 MiB blocks + fsync),
- upload (PUT /file, Content-Length known) and download (GET /file, sendfile)
  throughput through a real gunicorn-served glancelite,
- the peak RSS of the server's workers (VmHWM), which must stay flat: data streams.

Targets: upload >= 70% of min(slower hash, both hashes on two threads at
once, disk write, the CPU budget = cores / (per-byte md5 + sha512 + write cost)); download >= 70% of
the upload ceiling; worker peak RSS < 300 MiB. It prints each target as met
or the gap, and exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import sys
import tempfile
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.support.server import Server, write_config  # noqa: E402

MiB = 1024 * 1024
BLOCK = os.urandom(16 * MiB)


class Payload:
    """``size`` bytes of repeated random blocks, readable like a file (requests sends Content-Length)."""

    def __init__(self, size: int):
        self.size = size
        self.sent = 0

    def __len__(self) -> int:
        return self.size - self.sent

    def read(self, n: int = -1) -> bytes:
        if self.sent >= self.size:
            return b""
        n = self.size - self.sent if n is None or n < 0 else min(n, self.size - self.sent)
        offset = self.sent % len(BLOCK)
        data = BLOCK[offset : offset + n]
        self.sent += len(data)
        return data


def hash_speed(name: str, seconds: float = 1.5) -> float:
    hasher = hashlib.new(name)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        hasher.update(BLOCK)
        done += len(BLOCK)
    return done / (time.perf_counter() - start)


def parallel_hash_speed(size: int) -> float:
    """md5 and sha512 of the same bytes on two threads at once: what the upload's hashing can reach here, now."""
    import threading

    def work(name):
        hasher = hashlib.new(name)
        for _ in range(size // len(BLOCK)):
            hasher.update(BLOCK)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("md5", "sha512")]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (size // len(BLOCK)) * len(BLOCK) / (time.perf_counter() - start)


def disk_write_speed(directory: pathlib.Path, size: int) -> float:
    path = directory / "ddtest"
    start = time.perf_counter()
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            fh.write(BLOCK[: MiB * 4])
            written += MiB * 4
        fh.flush()
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return size / elapsed


def peak_rss(pids: list[int]) -> int:
    peak = 0
    for pid in pids:
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return peak


def mbps(rate: float) -> str:
    return f"{rate / MiB:8.1f} MiB/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", default=None, help="where the stores live (default: a temp dir)")
    args = parser.parse_args()
    size = args.size_mib * MiB
    root = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="glancelite-bench-"))
    root.mkdir(parents=True, exist_ok=True)

    md5 = hash_speed("md5")
    sha512 = hash_speed("sha512")
    both = parallel_hash_speed(min(size, 512 * MiB))
    disk = disk_write_speed(root, min(size, 512 * MiB))
    # Every uploaded byte is hashed twice and written once; with the client on
    # the same machine those share os.cpu_count() cores (an optimistic bound).
    cpu_budget = (os.cpu_count() or 1) / (1 / md5 + 1 / sha512 + 1 / disk)
    upload_ceiling = min(md5, sha512, both, disk, cpu_budget)
    print(
        f"ceilings: md5 {mbps(md5)}  sha512 {mbps(sha512)}  both on 2 threads {mbps(both)}  "
        f"disk write {mbps(disk)}  cpu budget {mbps(cpu_budget)}  -> upload {mbps(upload_ceiling)}  (load avg {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} CPUs; the client runs on the same machine)"
    )

    server = Server(write_config(root / "svc", {"DEFAULT": {"workers": "1"}})).start()
    try:
        http = requests.Session()
        resp = http.post(
            f"{server.url}/v2/images", json={"name": "bench", "disk_format": "raw", "container_format": "bare"}
        )
        resp.raise_for_status()
        image_id = resp.json()["id"]
        start = time.perf_counter()
        resp = http.put(
            f"{server.url}/v2/images/{image_id}/file",
            data=Payload(size),
            headers={"Content-Type": "application/octet-stream"},
        )
        upload_time = time.perf_counter() - start
        assert resp.status_code == 204, resp.text
        upload = size / upload_time

        start = time.perf_counter()
        got = 0
        with http.get(f"{server.url}/v2/images/{image_id}/file", stream=True) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(4 * MiB):
                got += len(chunk)
        download_time = time.perf_counter() - start
        assert got == size, (got, size)
        download = size / download_time
        rss = peak_rss(server.worker_pids())
    finally:
        server.stop()

    print(f"upload   {args.size_mib} MiB in {upload_time:6.2f}s = {mbps(upload)}")
    print(f"download {args.size_mib} MiB in {download_time:6.2f}s = {mbps(download)}")
    print(f"server worker peak RSS {rss / MiB:.0f} MiB")
    targets = [
        ("upload >= 70% of ceiling", upload, 0.7 * upload_ceiling),
        ("download >= 70% of upload ceiling", download, 0.7 * upload_ceiling),
        ("worker peak RSS < 300 MiB", 300 * MiB, rss),
    ]
    missed = 0
    for name, value, target in targets:
        if value >= target:
            print(f"  met     {name}")
        else:
            missed += 1
            print(f"  MISSED  {name}: gap {(target - value) / MiB:.1f} MiB(/s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
