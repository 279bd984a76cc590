"""Data path benchmark: the real API under gunicorn next to this machine's ceilings, measured in the same run.

    .venv/bin/python benchmarks/data_path.py [--rounds 2] [--size-mib 1024] [--fsync] [--workdir DIR]
    .venv/bin/python benchmarks/data_path.py --quick      # CI smoke: small sizes, a few seconds

The server is tests/support/server.py's: glancelite-api under gunicorn with the default two
workers and the default file store (``fast``; ``slow`` is the second file store copy-image
copies to). The client is this process, on the same machine: it sends from pre-built 1 MiB
blocks and reads into one reused buffer, so it costs as little CPU as a client can.

Ceilings, each measured in every round next to the figures it bounds:

Every figure is bracketed by readings of its ceiling just before and just after it: the ratio
is to their mean, and a figure above both readings is reported as a DEFECT of the ceiling.
The workers' CPU time per MiB moved is printed too, next to what md5 + sha512 alone cost:
unlike the rates, it hardly depends on what else runs on the machine.

- hashes: md5 and sha512 of the same data on two threads at once (what an upload hashes);
- store write: the image written to the store's filesystem as the file store writes it by
  default (a new file, 1 MiB os.write calls, no fsync; with ``--fsync`` the store fsyncs and
  so does this);
- upload ceiling = min(hashes, store write). An upload measured above it means the ceiling
  is wrong: that is reported as a benchmark DEFECT, not as a target met;
- two-core ceiling (8 concurrent uploads): two streams hashed fully at once (md5 + sha512 each);
- sendfile: the uploaded image's file sent with sendfile() to a local TCP socket and read by
  this process the way the download is read.

Targets (each printed as figure, ceiling, ratio, met or gap):

- one upload, Content-Length, >= 80% of the upload ceiling;
- one upload, chunked (64 KiB chunks, as python-glanceclient sends), >= 80% of it;
- 8 concurrent uploads >= 80% of the two-core ceiling, every checksum verified;
- download >= 90% of sendfile;
- stage + glance-direct import, and copy-image between the two file stores, >= 70% of the
  upload ceiling (copy-image verifies the copy against the image's multihash server side);
- worker RSS: when started, after the warm-up (a first import loads the import machinery),
  and the rounds' peak (VmHWM, reset after the warm-up) over the warmed-up worker, reported.

Timing never fails the run: the exit status is 1 only for an error or a wrong checksum, so CI
can run ``--quick`` as a smoke test. ``--strict`` also exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.support.server import Server, write_config  # noqa: E402

MiB = 1024 * 1024
PIECE = MiB
# The payload: these 16 distinct random MiB, repeated. Sending them costs no copy.
PIECES = [os.urandom(PIECE) for _ in range(16)]
# No boot-sector signature at byte 510 (1 random image in 65,536 has one, and the format
# inspector then refuses it as an unsafe GPT disk).
PIECES[0] = PIECES[0][:510] + b"\0\0" + PIECES[0][512:]
GLANCECLIENT_CHUNK = 64 * 1024  # python-glanceclient's chunk size for chunked uploads
RECV_BUFFER = bytearray(4 * MiB)


def payload(size: int) -> Iterator[bytes]:
    """``size`` bytes as a sequence of (mostly) 1 MiB bytes objects."""
    sent, index = 0, 0
    while sent < size:
        piece = PIECES[index % len(PIECES)]
        if size - sent < PIECE:
            piece = piece[: size - sent]
        yield piece
        sent += len(piece)
        index += 1


class BenchmarkError(Exception):
    """An error or a wrong checksum: the run fails, whatever the timings."""


# -- ceilings ----------------------------------------------------------------------------


def _hash_on_threads(streams: int, size: int) -> tuple[float, list[tuple[str, str]]]:
    """md5 and sha512 of ``streams`` copies of the payload, each hash on its own thread; bytes/s in total."""
    results: dict[tuple[int, str], str] = {}

    def work(stream: int, name: str) -> None:
        hasher = hashlib.new(name)
        for piece in payload(size):
            hasher.update(piece)
        results[(stream, name)] = hasher.hexdigest()

    threads = [threading.Thread(target=work, args=(s, n)) for s in range(streams) for n in ("md5", "sha512")]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    HASH_CPU.append((time.process_time() - cpu) / (streams * size / MiB))
    return streams * size / elapsed, [(results[(s, "md5")], results[(s, "sha512")]) for s in range(streams)]


# CPU seconds per MiB that hashing one stream (md5 + sha512) took, every reading: what an
# upload's server cannot do with less, whatever the machine's load.
HASH_CPU: list[float] = []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def store_write_speed(directory: pathlib.Path, size: int, fsync: bool) -> float:
    """Write like the file store: a new file, 1 MiB os.write calls, fsync only when the store would."""
    path = directory / ".bench-write"
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for piece in payload(size):
            os.write(fd, piece)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    path.unlink()
    return size / elapsed


def _drain_socket(sock: socket.socket, size: int) -> int:
    view = memoryview(RECV_BUFFER)
    got = 0
    while got < size:
        n = sock.recv_into(view)
        if not n:
            break
        got += n
    return got


def sendfile_speed(path: pathlib.Path) -> float:
    """sendfile() of ``path`` to a local TCP socket by another process (as the server is), read
    here as the download is. A sender thread in this process would share its GIL with the
    reader and read low: the download then came out above its "ceiling"."""
    size = path.stat().st_size
    with socket.create_server(("127.0.0.1", 0)) as listener:
        receiver = socket.create_connection(listener.getsockname())
        sender, _ = listener.accept()
    start = time.perf_counter()
    child = os.fork()
    if child == 0:  # the sender: nothing but sendfile, then out without any cleanup of the parent's
        code = 0
        try:
            receiver.close()
            with open(path, "rb") as fh:
                sender.sendfile(fh)
            sender.close()
        except BaseException:
            code = 1
        os._exit(code)
    sender.close()
    got = _drain_socket(receiver, size)
    elapsed = time.perf_counter() - start
    receiver.close()
    _, status = os.waitpid(child, 0)
    if status != 0 or got != size:
        raise BenchmarkError(f"sendfile ceiling: got {got} of {size} bytes, sender status {status}")
    return size / elapsed


# -- HTTP --------------------------------------------------------------------------------


class Api:
    def __init__(self, server: Server):
        self.host, self.port = "127.0.0.1", server.port

    def call(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict | None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if method == "PATCH":
                headers["Content-Type"] = "application/openstack-images-v2.1-json-patch"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != expect:
                raise BenchmarkError(f"{method} {path}: {resp.status} {data[:300]!r}")
            return json.loads(data) if data else None
        finally:
            conn.close()

    def create(self, name: str) -> str:
        return self.call("POST", "/v2/images", {"name": name, "disk_format": "raw", "container_format": "bare"}, 201)[
            "id"
        ]

    def image(self, image_id: str) -> dict:
        return self.call("GET", f"/v2/images/{image_id}")

    def delete(self, image_id: str) -> None:
        self.call("DELETE", f"/v2/images/{image_id}", expect=204)

    def send_data(self, path: str, size: int, chunked: bool) -> float:
        """PUT ``size`` payload bytes to ``path``; seconds until the 204."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            conn.putrequest("PUT", path)
            conn.putheader("Content-Type", "application/octet-stream")
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            else:
                conn.putheader("Content-Length", str(size))
            start = time.perf_counter()
            conn.endheaders()
            sock = conn.sock
            for piece in payload(size):
                if not chunked:
                    sock.sendall(piece)
                    continue
                view = memoryview(piece)
                for at in range(0, len(view), GLANCECLIENT_CHUNK):
                    chunk = view[at : at + GLANCECLIENT_CHUNK]
                    sock.sendmsg([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            resp = conn.getresponse()
            body = resp.read()
            elapsed = time.perf_counter() - start
            if resp.status != 204:
                raise BenchmarkError(f"PUT {path}: {resp.status} {body[:300]!r}")
            return elapsed
        finally:
            conn.close()

    def download(self, image_id: str, size: int) -> float:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            start = time.perf_counter()
            conn.request("GET", f"/v2/images/{image_id}/file")
            resp = conn.getresponse()
            if resp.status != 200:
                raise BenchmarkError(f"GET file: {resp.status} {resp.read()[:300]!r}")
            view = memoryview(RECV_BUFFER)
            got = 0
            while True:
                n = resp.readinto(view)
                if not n:
                    break
                got += n
            elapsed = time.perf_counter() - start
            if got != size:
                raise BenchmarkError(f"download: got {got} of {size} bytes")
            return elapsed
        finally:
            conn.close()

    def wait(self, image_id: str, done: Callable[[dict], bool], what: str, timeout: float = 600) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            image = self.image(image_id)
            if done(image):
                return image
            if image["status"] in ("killed", "deleted") or image.get("os_glance_failed_import"):
                raise BenchmarkError(f"{what}: image {image_id} failed: {image}")
            time.sleep(0.02)
        raise BenchmarkError(f"{what}: image {image_id} not done in {timeout}s")


def check_digests(image: dict, expected: tuple[str, str], what: str) -> None:
    md5, sha512 = expected
    if image.get("checksum") != md5 or image.get("os_hash_value") != sha512 or image.get("os_hash_algo") != "sha512":
        raise BenchmarkError(
            f"{what}: wrong checksum for {image['id']}: {image.get('checksum')}/{image.get('os_hash_value')}"
        )


def worker_memory(pids: list[int]) -> dict[int, dict[str, int]]:
    out = {}
    for pid in pids:
        fields = {}
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = int(value.split()[0]) * 1024
        except OSError:
            continue
        out[pid] = fields
    return out


def reset_peak_memory(pids: list[int]) -> None:
    """Start each process's VmHWM afresh (Linux clear_refs 5), so the rounds' peak is their own."""
    for pid in pids:
        try:
            pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError as exc:
            print(f"  (cannot reset worker {pid}'s peak RSS: {exc}; the peak includes the warm-up)")


# -- one round ---------------------------------------------------------------------------


def one_round(api: Api, server: Server, store_dir: pathlib.Path, sizes: dict[str, int], fsync: bool) -> dict:
    """Every figure once, each with its ceilings read just before and just after it (the best
    of the two counts: a ceiling read in a noisy moment would flatter the figure); returns
    name -> bytes/s, a figure's ceiling under "<name> ceiling"."""
    r: dict[str, float] = {}
    single, each = sizes["single"], sizes["concurrent"]
    sample = min(single, 512 * MiB)  # ceilings after the first are read on at most this much

    def upload_ceiling(size: int = sample) -> float:
        hashes, _ = _hash_on_threads(1, size)
        write = store_write_speed(store_dir, size, fsync)
        r["hashes"], r["store write"] = max(r.get("hashes", 0), hashes), max(r.get("store write", 0), write)
        return min(hashes, write)

    def bracketed(name: str, ceiling: Callable[[], float], figure: Callable[[], float], moved: int = single) -> None:
        before = ceiling()
        workers = server.worker_pids()
        cpu = cpu_seconds(workers)
        r[name] = figure()
        r[f"{name} server cpu"] = (cpu_seconds(workers) - cpu) / (moved / MiB)
        after = ceiling()
        # The mean of the readings before and after is the ceiling at the time of the figure;
        # a figure above both readings shows a ceiling that does not bound it.
        r[f"{name} ceiling"] = (before + after) / 2
        r[f"{name} ceiling max"] = max(before, after)

    # The payload's digests, from hashing it whole (that reading counts as a ceiling reading too).
    r["hashes"], (digests,) = _hash_on_threads(1, single)
    created = []

    def timed_upload(mode: str) -> float:
        image_id = api.create(f"bench-{mode}")
        created.append(image_id)
        elapsed = api.send_data(f"/v2/images/{image_id}/file", single, chunked=mode == "chunked")
        check_digests(api.image(image_id), digests, f"upload {mode}")
        return single / elapsed

    try:
        for mode in ("Content-Length", "chunked"):
            bracketed(f"upload {mode}", upload_ceiling, lambda mode=mode: timed_upload(mode))
        uploaded = created[0]

        # Download next to sendfile of the very same file.
        bracketed(
            "download",
            lambda: sendfile_speed(store_dir / uploaded),
            lambda: single / api.download(uploaded, single),
        )

        # Concurrent uploads next to two streams hashed fully at once.
        _, (each_digests,) = _hash_on_threads(1, each)
        ids = [api.create(f"bench-concurrent-{i}") for i in range(sizes["uploads"])]
        created.extend(ids)

        def concurrent() -> float:
            failures: list[BaseException] = []

            def up(image_id: str) -> None:
                try:
                    api.send_data(f"/v2/images/{image_id}/file", each, chunked=False)
                except BaseException as exc:
                    failures.append(exc)

            threads = [threading.Thread(target=up, args=(i,)) for i in ids]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            if failures:
                raise BenchmarkError(f"concurrent uploads: {failures[0]}")
            for image_id in ids:
                check_digests(api.image(image_id), each_digests, "concurrent upload")
            return len(ids) * each / elapsed

        bracketed(
            f"{len(ids)} concurrent uploads",
            lambda: _hash_on_threads(2, min(len(ids) * each // 2, 256 * MiB))[0],
            concurrent,
            moved=len(ids) * each,
        )

        # Stage + glance-direct import, timed from the first staged byte to active.
        def stage_and_import() -> float:
            image_id = api.create("bench-stage")
            created.append(image_id)
            start = time.perf_counter()
            api.send_data(f"/v2/images/{image_id}/stage", single, chunked=False)
            api.call("POST", f"/v2/images/{image_id}/import", {"method": {"name": "glance-direct"}}, 202)
            image = api.wait(image_id, lambda i: i["status"] == "active", "glance-direct import")
            elapsed = time.perf_counter() - start
            check_digests(image, digests, "glance-direct import")
            return single / elapsed

        bracketed("stage + glance-direct import", upload_ceiling, stage_and_import)

        # copy-image of the uploaded image into the second file store.
        def copy_image() -> float:
            start = time.perf_counter()
            api.call(
                "POST", f"/v2/images/{uploaded}/import", {"method": {"name": "copy-image"}, "stores": ["slow"]}, 202
            )
            image = api.wait(
                uploaded,
                lambda i: "slow" in i.get("stores", "").split(",") and not i.get("os_glance_importing_to_stores"),
                "copy-image",
            )
            elapsed = time.perf_counter() - start
            check_digests(image, digests, "copy-image")
            return single / elapsed

        bracketed("copy-image", upload_ceiling, copy_image)
    finally:
        for image_id in created:
            try:
                api.delete(image_id)
            except Exception as exc:  # the round's own error matters more
                print(f"  (could not delete {image_id}: {exc})")
    return r


TARGETS = [
    # (figure, what its ceiling is, share of the ceiling to reach)
    ("upload Content-Length", "upload ceiling", 0.8),
    ("upload chunked", "upload ceiling", 0.8),
    ("{n} concurrent uploads", "two-core ceiling", 0.8),
    ("download", "sendfile", 0.9),
    ("stage + glance-direct import", "upload ceiling", 0.7),
    ("copy-image", "upload ceiling", 0.7),
]
# Figures that cannot exceed their ceiling: one that does shows a wrong ceiling.
CAPPED = {"upload Content-Length", "upload chunked", "{n} concurrent uploads", "download"}


def rate(value: float) -> str:
    return f"{value / MiB:7.1f} MiB/s"


def span(values: list[float]) -> str:
    if len(values) == 1:
        return rate(values[0])
    return f"{min(values) / MiB:.0f}-{max(values) / MiB:.0f} MiB/s"


def report(rounds: list[dict], uploads: int) -> tuple[int, int]:
    """Print the per-round table and the summary; returns (targets missed, defects)."""
    missed = defects = 0
    print()
    print(f"{'target':<34} {'figure':>14} {'ceiling':>14} {'ratio':>7} {'goal':>5}  verdict")
    for figure_name, ceiling_name, share in TARGETS:
        name = figure_name.format(n=uploads)
        print(f"{name}: against the {ceiling_name}")
        ratios = []
        for index, r in enumerate(rounds, 1):
            figure, ceiling = r[name], r[name + " ceiling"]
            ratio = figure / ceiling
            ratios.append(ratio)
            if figure > r[name + " ceiling max"] and figure_name in CAPPED:
                verdict = f"DEFECT: above its ceiling ({ceiling_name}), the ceiling is wrong"
                defects += 1
            elif ratio >= share:
                verdict = "met"
            else:
                verdict = f"gap {rate(share * ceiling - figure).strip()} ({share * 100 - ratio * 100:.0f} points)"
            label = f"  round {index}"
            print(
                f"{label:<34} {rate(figure):>14} {rate(ceiling):>14} {ratio * 100:6.0f}% {share * 100:4.0f}%  {verdict}"
            )
        if len(rounds) > 1:
            figures = span([r[name] for r in rounds])
            ceilings = span([r[name + " ceiling"] for r in rounds])
            print(f"{'  range':<34} {figures:>14} {ceilings:>14} {min(ratios) * 100:3.0f}-{max(ratios) * 100:.0f}%")
        if statistics.median(ratios) < share:
            missed += 1
    # Load-independent: the workers' CPU per MiB moved, next to what hashing alone costs here.
    hashing = min(HASH_CPU) * 1000
    print(f"\nserver CPU per MiB (both workers; md5 + sha512 alone take {hashing:.2f} ms here):")
    for figure_name, _, _ in TARGETS:
        name = figure_name.format(n=uploads)
        costs = [r[name + " server cpu"] * 1000 for r in rounds]
        print(f"  {name:<32} {min(costs):.2f}-{max(costs):.2f} ms")
    return missed, defects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: small sizes, one round, a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds to run (default 2, --quick 1)")
    parser.add_argument("--size-mib", type=int, default=None, help="single upload size (default 1024, --quick 16)")
    parser.add_argument("--concurrent-mib", type=int, default=None, help="each concurrent upload (128, --quick 4)")
    parser.add_argument("--uploads", type=int, default=8, help="concurrent uploads")
    parser.add_argument("--fsync", action="store_true", help="run the store with filesystem_store_fsync = true")
    parser.add_argument("--strict", action="store_true", help="also exit 1 when a target is missed")
    parser.add_argument("--workdir", default=None, help="where the stores live (default: a temp dir, removed)")
    args = parser.parse_args()
    sizes = {
        "single": (args.size_mib or (16 if args.quick else 1024)) * MiB,
        "concurrent": (args.concurrent_mib or (4 if args.quick else 128)) * MiB,
        "uploads": args.uploads,
    }
    rounds = args.rounds or (1 if args.quick else 2)
    root = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="glancelite-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    svc = root / "svc"
    sections = {"fast": {"filesystem_store_fsync": "true"}, "slow": {"filesystem_store_fsync": "true"}}
    server = Server(write_config(svc, sections if args.fsync else None)).start()
    results: list[dict] = []
    try:
        api = Api(server)
        # The server answers as soon as one worker does: wait for both before reading their idle RSS.
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        idle = worker_memory(server.worker_pids())
        # Warm both workers up (first-request imports, database connections, the import
        # machinery a worker loads on its first import), unmeasured.
        for _ in range(4):
            image_id = api.create("bench-warm-up")
            api.send_data(f"/v2/images/{image_id}/file", MiB, chunked=False)
            api.download(image_id, MiB)
            api.delete(image_id)
            image_id = api.create("bench-warm-up")
            api.send_data(f"/v2/images/{image_id}/stage", MiB, chunked=False)
            api.call("POST", f"/v2/images/{image_id}/import", {"method": {"name": "glance-direct"}}, 202)
            api.wait(image_id, lambda i: i["status"] == "active", "warm-up import")
            api.delete(image_id)
        warmed = worker_memory(server.worker_pids())
        reset_peak_memory(server.worker_pids())
        for index in range(rounds):
            print(
                f"round {index + 1}/{rounds}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                flush=True,
            )
            results.append(one_round(api, server, svc / "fast", sizes, args.fsync))
            r = results[-1]
            write = "store write (fsync)" if args.fsync else "store write"
            print(
                f"  best readings: hashes {rate(r['hashes']).strip()}, {write} {rate(r['store write']).strip()}",
                flush=True,
            )
        memory = worker_memory(server.worker_pids())
    except BenchmarkError as exc:
        print(f"ERROR: {exc}")
        return 1
    finally:
        server.stop()
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)

    print(
        f"\nsingle upload {sizes['single'] // MiB} MiB, {sizes['uploads']} concurrent uploads of "
        f"{sizes['concurrent'] // MiB} MiB, {rounds} round(s); every checksum verified"
    )
    missed, defects = report(results, sizes["uploads"])
    print()
    for pid, fields in memory.items():
        start = idle.get(pid, {}).get("VmRSS", 0)
        ready = warmed.get(pid, {}).get("VmRSS", 0)
        peak = fields.get("VmHWM", 0)
        print(
            f"worker {pid}: RSS started {start / MiB:.0f} MiB, warmed up {ready / MiB:.0f} MiB, "
            f"peak in the rounds {peak / MiB:.0f} MiB (peak - warmed up {(peak - ready) / MiB:.0f} MiB)"
        )
    if defects:
        print(f"{defects} figure(s) above their ceiling: a benchmark defect, fix the ceiling")
    if args.quick:
        print("(--quick: sizes too small for the ratios to mean anything; this run checks errors and checksums)")
    return 1 if args.strict and (missed or defects) else 0


if __name__ == "__main__":
    sys.exit(main())
