"""The file and http drivers in the conformance suite (no external server needed)."""

from __future__ import annotations

import functools
import http.server
import os
import pathlib
import threading

from glancelite.settings import StoreSettings
from glancelite.store.drivers.file import FileDriver
from glancelite.store.drivers.http import HttpDriver
from tests.store.conftest import DriverCase


def file_store(tmp_path: pathlib.Path, store_id: str, **options) -> FileDriver:
    opts = {"filesystem_store_datadir": str(tmp_path / store_id), **options}
    driver = FileDriver(StoreSettings(id=store_id, type="file", description=None, weight=0, options=opts))
    driver.prepare()  # what StoreSet does at start: create the directories
    return driver


def _file_leftovers(driver: FileDriver) -> list[str]:
    return [n for _, d in driver.datadirs for n in os.listdir(d)]


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (http.server ignores Range)."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        fh = open(path, "rb")
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            start_s, _, end_s = header[6:].partition("-")
            start = int(start_s)
            end = min(int(end_s), size - 1) if end_s else size - 1
            fh.seek(start)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self._remaining = end - start + 1
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self._remaining = size
        self.end_headers()
        return fh

    def copyfile(self, source, outputfile):
        remaining = self._remaining
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


class WebRoot:
    """A ThreadingHTTPServer on 127.0.0.1 serving one directory; stopped at exit."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        handler = functools.partial(RangeHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ServedHttpDriver(HttpDriver):
    """An HttpDriver that owns a local web root, so the suite can seed objects."""

    web: WebRoot

    def close(self):
        super().close()
        self.web.close()


def http_store(tmp_path: pathlib.Path, store_id: str) -> ServedHttpDriver:
    root = tmp_path / f"web-{store_id}"
    root.mkdir()
    driver = ServedHttpDriver(StoreSettings(id=store_id, type="http", description=None, weight=0, options={}))
    driver.web = WebRoot(root)
    return driver


def _http_seed(driver: ServedHttpDriver, name: str, data: bytes) -> str:
    (driver.web.root / name).write_bytes(data)
    return f"{driver.web.url}/{name}"


CASES = [
    DriverCase("file", file_store, leftovers=_file_leftovers, missing_url=lambda d: f"file://{d.datadirs[0][1]}/nope"),
    DriverCase(
        "file-fsync-perm",
        functools.partial(file_store, filesystem_store_fsync=True, filesystem_store_file_perm=640),
        leftovers=_file_leftovers,
        large_size=8 * 1024 * 1024,
    ),
    DriverCase("http", http_store, seed=_http_seed, missing_url=lambda d: f"{d.web.url}/nope"),
]
