"""Holding load: the metadata API under a flood of slow image transfers.

    .venv/bin/python benchmarks/trickle.py [--transfers 256] [--seconds 30] [--rate 4096] [--smoke]

Starts the real glancelite under gunicorn (tests/support/server.py) with the default
configuration (two workers, default max_transfers_per_worker), then holds ``--transfers``
image transfers in flight at once, half uploads (PUT /file with Content-Length) and half
downloads (GET /file of one 8 MiB image), each sending or reading ``--rate`` bytes a second.
Meanwhile it samples GET /versions, GET /v2/images and POST /v2/images one after another and
prints, per request, p50/p99 and errors, next to the same figures measured on the idle server
just before (the ceiling of this run). It prints the workers' RSS before and during the
transfers (growth per transfer in flight), then finishes the uploads and checks every
checksum.

Last, the admission limit: a second server with one worker and max_transfers_per_worker=8
holds 8 slow uploads; further uploads and downloads must get 503 with Retry-After at once
while metadata still answers.

Targets (issue 12): metadata p99 < 100 ms and no errors with 256 transfers in flight; RSS growth
< 1 MiB per transfer. Exit 1 when a target is missed or a check fails; with ``--smoke`` (few
transfers, a few seconds: for CI) timings never fail the run, only wrong answers do.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import socket
import statistics
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.support.server import Server, write_config  # noqa: E402
from tests.support.transfers import SlowDownload, SlowUpload, read_body, read_response_head  # noqa: E402

ADMIN = {"X-Identity-Status": "Confirmed", "X-Project-Id": "bench", "X-User-Id": "u", "X-Roles": "admin,member"}
P99_TARGET = 0.100  # seconds
RSS_TARGET = 1024 * 1024  # bytes of worker RSS per transfer in flight
DOWNLOAD_SIZE = 8 * 1024 * 1024
TICK = 0.25  # seconds between two pieces of one transfer
ADMISSION_LIMIT = 8
NEW_IMAGE = {"disk_format": "raw", "container_format": "bare"}
PROBES = (("GET", "/versions", None, 200), ("GET", "/v2/images", None, 200), ("POST", "/v2/images", NEW_IMAGE, 201))


def raw_bytes(size: int) -> bytes:
    """Random image data that is plain raw: without a boot sector's 0x55AA signature at byte 510.

    Random bytes carry it once in 65,536 images; oslo's inspector then reads the data as a
    partitioned disk whose random partition table fails the GPT safety check (415), as in Glance.
    """
    data = bytearray(os.urandom(size))
    if size >= 512:
        data[510:512] = b"\0\0"
    return bytes(data)


def rss(pids: list[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) * 1024
    return out


def new_image(http: requests.Session, url: str) -> str:
    resp = http.post(f"{url}/v2/images", json=NEW_IMAGE, headers=ADMIN, timeout=30)
    resp.raise_for_status()
    return resp.json()["id"]


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Sampler(threading.Thread):
    """Times the metadata probes in turn until stopped: {path: [seconds]}, {path: errors}."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.latencies: dict[str, list[float]] = {f"{m} {p}": [] for m, p, _, _ in PROBES}
        self.errors: dict[str, list[str]] = {f"{m} {p}": [] for m, p, _, _ in PROBES}

    def run(self) -> None:
        with requests.Session() as http:
            while not self.stop.is_set():
                for method, path, body, expected in PROBES:
                    key = f"{method} {path}"
                    started = time.perf_counter()
                    try:
                        resp = http.request(method, self.url + path, json=body, headers=ADMIN, timeout=15)
                        if resp.status_code != expected:
                            self.errors[key].append(str(resp.status_code))
                    except requests.RequestException as exc:
                        self.errors[key].append(type(exc).__name__)
                    self.latencies[key].append(time.perf_counter() - started)
                time.sleep(0.02)


def sample_for(url: str, seconds: float) -> Sampler:
    sampler = Sampler(url)
    sampler.start()
    time.sleep(seconds)
    sampler.stop.set()
    sampler.join()
    return sampler


def report_latency(label: str, sampler: Sampler) -> tuple[float, int]:
    worst_p99, errors = 0.0, 0
    print(f"  {label}")
    for key, samples in sampler.latencies.items():
        p99 = quantile(samples, 0.99) if samples else float("inf")
        worst_p99 = max(worst_p99, p99)
        errors += len(sampler.errors[key])
        p50 = statistics.median(samples) * 1000 if samples else float("nan")
        print(
            f"    {key:<18} n={len(samples):<5} p50={p50:7.1f} ms  p99={p99 * 1000:7.1f} ms"
            f"  errors={len(sampler.errors[key])} {sorted(set(sampler.errors[key]))[:3] or ''}"
        )
    return worst_p99, errors


class Trickle(threading.Thread):
    """Feeds every upload and reads every download ``rate`` bytes a second until stopped."""

    def __init__(self, uploads: list[SlowUpload], downloads: list[SlowDownload], rate: int):
        super().__init__(daemon=True)
        self.uploads, self.downloads = uploads, downloads
        self.piece = max(1, int(rate * TICK))
        self.stop = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.wait(TICK):
            for upload in self.uploads:
                # Keep the last piece back: the upload finishes when the benchmark says so.
                if len(upload.data) - upload.sent > self.piece:
                    try:
                        upload.send(self.piece)
                    except OSError as exc:
                        self.failures.append(f"upload: {exc}")
            for download in self.downloads:
                try:
                    chunk = download.sock.recv(self.piece, socket.MSG_DONTWAIT)
                    download.received += len(chunk)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    self.failures.append(f"download: {exc}")


def hold_load(args, root: pathlib.Path) -> bool:
    server = Server(write_config(root / "load")).start()
    ok = True
    uploads: list[SlowUpload] = []
    downloads: list[SlowDownload] = []
    try:
        with requests.Session() as http:
            big = new_image(http, server.url)
            resp = http.put(
                f"{server.url}/v2/images/{big}/file",
                data=raw_bytes(DOWNLOAD_SIZE),
                headers={"Content-Type": "application/octet-stream", **ADMIN},
                timeout=60,
            )
            resp.raise_for_status()
            n_up = args.transfers // 2
            upload_size = int(args.rate * args.seconds * 2) + 65536
            targets = [new_image(http, server.url) for _ in range(n_up)]
        # The workers have served a few requests of every kind: their RSS is settled.
        workers = server.worker_pids()
        before = rss(workers)
        print(
            f"server: {len(workers)} workers; transfers {args.transfers} (half uploads of {upload_size} B, half downloads)"
        )
        print(f"  trickling {args.rate} B/s each for {args.seconds:.0f} s")
        idle = sample_for(server.url, max(2.0, args.seconds / 5))
        idle_p99, idle_errors = report_latency("idle server (this run's ceiling):", idle)

        opened = time.monotonic()
        for i in range(args.transfers):
            if i % 2 == 0 and len(uploads) < n_up:
                image_id = targets[len(uploads)]
                upload = SlowUpload(server.url, f"/v2/images/{image_id}/file", raw_bytes(upload_size), ADMIN)
                upload.image_id = image_id
                upload.send(1024)
                uploads.append(upload)
            else:
                download = SlowDownload(server.url, f"/v2/images/{big}/file", ADMIN, keep_body=False)
                if download.status != 200:
                    print(f"  FAIL: download {len(downloads)} answered {download.status}")
                    ok = False
                downloads.append(download)
        print(f"  {len(uploads)} uploads and {len(downloads)} downloads open in {time.monotonic() - opened:.1f} s")
        trickle = Trickle(uploads, downloads, args.rate)
        trickle.start()
        time.sleep(1.0)
        loaded = sample_for(server.url, args.seconds)
        during = rss(workers)
        trickle.stop.set()
        trickle.join()
        in_flight = sum(1 for u in uploads if not u.done_sending) + sum(1 for d in downloads if not d.done)
        print(f"  transfers still in flight at the end of sampling: {in_flight} of {args.transfers}")
        loaded_p99, loaded_errors = report_latency(f"with {args.transfers} slow transfers in flight:", loaded)
        growth = sum(during.values()) - sum(before.values())
        per_transfer = growth / max(1, args.transfers)
        print(
            "  worker RSS MiB before: "
            + ", ".join(f"{v / 2**20:.1f}" for v in before.values())
            + "; during: "
            + ", ".join(f"{v / 2**20:.1f}" for v in during.values())
            + f"; growth {growth / 2**20:.1f} MiB = {per_transfer / 1024:.0f} KiB per transfer"
            f" (target < {RSS_TARGET // 1024} KiB)"
        )
        if trickle.failures:
            print(f"  FAIL: {len(trickle.failures)} transfers broke: {trickle.failures[:3]}")
            ok = False

        for download in downloads:
            download.close()
        with requests.Session() as http:
            for upload in uploads:
                status = upload.finish()
                image = http.get(f"{server.url}/v2/images/{upload.image_id}", headers=ADMIN, timeout=30).json()
                if status != 204 or image.get("checksum") != hashlib.md5(upload.data).hexdigest():
                    print(
                        f"  FAIL: upload {upload.image_id}: {status} {upload.response_body[:300]!r}, {image.get('status')}"
                    )
                    for line in server.log.read_text().splitlines():
                        if upload.image_id in line:
                            print("    server log:", line[:300])
                    ok = False
        print(f"  {len(uploads)} uploads finished, checksums checked")

        met = loaded_p99 < P99_TARGET and loaded_errors == 0 and in_flight == args.transfers
        rss_met = per_transfer < RSS_TARGET
        print(
            f"  metadata p99 {loaded_p99 * 1000:.1f} ms under load (idle {idle_p99 * 1000:.1f} ms), "
            f"{loaded_errors} errors: target p99 < {P99_TARGET * 1000:.0f} ms and no errors "
            + ("met" if met else "MISSED")
        )
        print(f"  RSS per transfer: target {'met' if rss_met else 'MISSED'}")
        if idle_errors or loaded_errors:
            ok = False
        if not args.smoke and not (met and rss_met):
            ok = False
    finally:
        for transfer in (*uploads, *downloads):
            transfer.close()
        server.stop()
    return ok


def admission(root: pathlib.Path) -> bool:
    """Past the limit: 503 + Retry-After at once for uploads and downloads, metadata still served."""
    config = write_config(
        root / "admission", {"DEFAULT": {"workers": "1", "max_transfers_per_worker": str(ADMISSION_LIMIT)}}
    )
    server = Server(config).start()
    ok = True
    held: list[SlowUpload] = []
    try:
        with requests.Session() as http:
            big = new_image(http, server.url)
            http.put(
                f"{server.url}/v2/images/{big}/file",
                data=raw_bytes(65536),
                headers={"Content-Type": "application/octet-stream", **ADMIN},
                timeout=30,
            ).raise_for_status()
            for _ in range(ADMISSION_LIMIT):
                upload = SlowUpload(
                    server.url, f"/v2/images/{new_image(http, server.url)}/file", raw_bytes(65536), ADMIN
                )
                upload.send(1024)
                held.append(upload)
            time.sleep(0.5)
            print(f"admission: one worker, max_transfers_per_worker={ADMISSION_LIMIT}, {ADMISSION_LIMIT} uploads held")
            for kind in ("upload", "download"):
                started = time.perf_counter()
                if kind == "upload":
                    path, data = f"/v2/images/{new_image(http, server.url)}/file", raw_bytes(1 << 20)
                    started = time.perf_counter()  # from the connection on
                    extra = SlowUpload(server.url, path, data, ADMIN)
                    extra.send(4096)
                    status, headers, first = read_response_head(extra.sock)
                    read_body(extra.sock, headers, first)
                    extra.close()
                else:
                    resp = http.get(f"{server.url}/v2/images/{big}/file", headers=ADMIN, timeout=30)
                    status, headers = resp.status_code, {k.lower(): v for k, v in resp.headers.items()}
                elapsed = time.perf_counter() - started
                print(
                    f"  extra {kind}: {status}, Retry-After {headers.get('retry-after')!r}, "
                    f"answered in {elapsed * 1000:.1f} ms"
                )
                if status != 503 or not headers.get("retry-after", "").isdigit():
                    print(f"  FAIL: expected 503 with Retry-After for the extra {kind}")
                    ok = False
            for method, path, body, expected in PROBES:
                started = time.perf_counter()
                resp = http.request(method, server.url + path, json=body, headers=ADMIN, timeout=30)
                print(f"  {method} {path}: {resp.status_code} in {(time.perf_counter() - started) * 1000:.1f} ms")
                if resp.status_code != expected:
                    ok = False
            finished = [upload.finish() for upload in held]
            print(f"  held uploads finished: {sorted(set(finished))}")
            if set(finished) != {204}:
                ok = False
            after = http.get(f"{server.url}/v2/images/{big}/file", headers=ADMIN, timeout=30)
            print(f"  a download once the slots are free: {after.status_code}")
            ok = ok and after.status_code == 200
    finally:
        for upload in held:
            upload.close()
        server.stop()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long metadata is sampled under load")
    parser.add_argument("--rate", type=int, default=4096, help="bytes a second each transfer moves")
    parser.add_argument("--smoke", action="store_true", help="32 transfers for 3 s; never fails on timing")
    args = parser.parse_args()
    if args.smoke:
        args.transfers, args.seconds = min(args.transfers, 32), min(args.seconds, 3.0)
    with tempfile.TemporaryDirectory(prefix="glancelite-trickle-") as tmp:
        root = pathlib.Path(tmp)
        ok = hold_load(args, root)
        ok = admission(root) and ok
    print("result:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
