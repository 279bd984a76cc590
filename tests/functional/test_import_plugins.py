"""Import plugins ([image_import_opts] image_import_plugins) against a real glancelite-api.

image_decompression, image_conversion (to raw) and inject_image_metadata run
on glance-direct and web-download imports of real qcow2 images made by
qemu-img; a failing conversion reverts everything; an unknown plugin name
stops the service.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server as http_server
import io
import json
import os
import shutil
import subprocess
import threading
import zipfile

import pytest

from tests.conftest import ADMIN, identity
from tests.support.imports import (
    create_image,
    get_image,
    stage,
    start_import,
    store_files,
    wait_task,
)
from tests.support.payloads import raw_bytes
from tests.support.server import BIN, Server, write_config

QEMU_IMG = shutil.which("qemu-img")
MEMBER = identity("project-bob", "reader,member", "bob")
INJECT = {"injected_by": "operator", "hw_vif_model": "virtio", "os_glance_bogus": "x"}

if QEMU_IMG is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI=true: qemu-img (Debian qemu-utils) is required by the import plugin tests")
    pytest.skip(
        "qemu-img (Debian qemu-utils) is not installed; tools/backends/install-backends.sh installs it",
        allow_module_level=True,
    )


class Files:
    """A 127.0.0.1 HTTP server for web-download: /<name> serves ``files[name]`` with Content-Length."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(http_server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def files():
    server = Files()
    yield server
    server.close()


def start_service(root, plugins: str, extra=None):
    sections = {
        "DEFAULT": {"enabled_backends": "fast:file, slow:file", "image_size_cap": str(64 << 20)},
        "image_import_opts": {"image_import_plugins": plugins},
        "inject_metadata_properties": {"inject": ",".join(f"{k}:{v}" for k, v in INJECT.items())},
        "image_conversion": {"output_format": "raw"},
        "glance_store": {"store_capability_refresh_interval": "0"},
        **(extra or {}),
    }
    server = Server(write_config(root, sections)).start()
    server.root = root
    return server


@pytest.fixture(scope="module")
def service(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("plugins")
    server = start_service(
        root,
        "[image_decompression, image_conversion, inject_image_metadata, no_op]",
        {"import_filtering_opts": {"allowed_hosts": "127.0.0.1", "allowed_ports": str(files.port)}},
    )
    yield server
    server.stop()


@pytest.fixture
def http(json_http):
    return json_http  # this module reads Glance's JSON error messages


def qcow2(tmp_path, size: str = "8M", *options: str, content: bytes = b"") -> bytes:
    """A real qcow2 from qemu-img; with ``content``, these bytes are written at its start."""
    path = tmp_path / f"img-{raw_bytes(4).hex()}.qcow2"
    if content:
        raw = tmp_path / "content.raw"
        raw.write_bytes(content.ljust(1 << 20, b"\0"))
        subprocess.run([QEMU_IMG, "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True)
    else:
        subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", *options, str(path), size], check=True)
    return path.read_bytes()


def qemu_info(path) -> dict:
    out = subprocess.run([QEMU_IMG, "info", "--output=json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def stored_path(service, image: dict):
    return service.root / image["stores"] / image["id"]


def nothing_left(service, image_id, stores=("fast", "slow", "staging")):
    """No file of the image in ``stores`` (partial ones included), no working file in the tasks store."""
    for store in stores:
        assert store_files(service.root, store, image_id) == [], store
    assert [n for n in os.listdir(service.root / "tasks") if not n.endswith(".owner")] == []


def check_converted(service, http, image_id, virtual_size: int, headers):
    image = get_image(service, http, image_id, headers)
    assert image["status"] == "active", image
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    path = stored_path(service, image)
    info = qemu_info(path)
    assert info["format"] == "raw" and info["virtual-size"] == virtual_size
    data = path.read_bytes()
    assert len(data) == virtual_size == image["size"] == image["virtual_size"]
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert http.get(f"{service.url}/v2/images/{image_id}/file", headers=headers).content == data
    nothing_left(service, image_id, stores=("staging",))
    return image, data


# ------------------------------------------------------------------ conversion, injection


def test_glance_direct_qcow2_converted_to_raw_with_injection_for_a_member(service, http, tmp_path):
    source = qcow2(tmp_path, content=b"glancelite plugin test\n")
    image_id = create_image(service, http, MEMBER, disk_format="qcow2")
    assert stage(service, http, image_id, source, MEMBER).status_code == 204
    resp = start_import(service, http, image_id, {"name": "glance-direct"}, MEMBER)
    assert resp.status_code == 202, resp.text
    task = wait_task(service, http, image_id)
    assert task["status"] == "success", task
    image, data = check_converted(service, http, image_id, 1 << 20, MEMBER)
    assert data.startswith(b"glancelite plugin test\n")
    assert image["injected_by"] == "operator" and image["hw_vif_model"] == "virtio"
    assert "os_glance_bogus" not in image


def test_web_download_qcow2_converted_no_injection_for_admin(service, http, files, tmp_path):
    source = qcow2(tmp_path, "6M")
    image_id = create_image(service, http, ADMIN, disk_format="qcow2")
    resp = start_import(
        service, http, image_id, {"name": "web-download", "uri": files.url("cirros.qcow2", source)}, ADMIN
    )
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    image, data = check_converted(service, http, image_id, 6 << 20, ADMIN)
    assert data == b"\0" * (6 << 20)
    assert "injected_by" not in image and "hw_vif_model" not in image


# ------------------------------------------------------------------ decompression


def test_gzip_payload_decompressed_then_converted(service, http, files, tmp_path):
    source = qcow2(tmp_path, content=b"gzip inside\n")
    image_id = create_image(service, http, MEMBER, disk_format="qcow2")
    url = files.url("image.qcow2.gz", gzip.compress(source))
    assert start_import(service, http, image_id, {"name": "web-download", "uri": url}, MEMBER).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    _image, data = check_converted(service, http, image_id, 1 << 20, MEMBER)
    assert data.startswith(b"gzip inside\n")


def test_zip_payload_decompressed_raw(service, http):
    raw = raw_bytes(300_000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("disk.raw", raw)
    image_id = create_image(service, http, ADMIN, disk_format="raw")
    assert stage(service, http, image_id, buf.getvalue(), ADMIN).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, ADMIN).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id, ADMIN)
    assert image["status"] == "active" and image["size"] == len(raw)
    assert image["checksum"] == hashlib.md5(raw).hexdigest()
    assert stored_path(service, image).read_bytes() == raw
    nothing_left(service, image_id, stores=("staging",))


def test_zip_with_two_files_fails_and_reverts(service, http):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a", b"a" * 1000)
        archive.writestr("b", b"b" * 1000)
    image_id = create_image(service, http, ADMIN, disk_format="raw")
    assert stage(service, http, image_id, buf.getvalue(), ADMIN).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, ADMIN).status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure" and "exactly one" in task["message"], task
    assert_reverted(service, http, image_id, "raw")


def test_container_format_compressed_is_not_decompressed(service, http):
    data = gzip.compress(raw_bytes(50_000))
    image_id = create_image(service, http, ADMIN, disk_format="raw", container_format="compressed")
    assert stage(service, http, image_id, data, ADMIN).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, ADMIN).status_code == 202
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id, ADMIN)
    assert image["size"] == len(data) and image["checksum"] == hashlib.md5(data).hexdigest()


# ------------------------------------------------------------------ failures revert


def assert_reverted(service, http, image_id, disk_format):
    image = get_image(service, http, image_id, ADMIN)
    assert image["status"] == "queued", image
    assert image["disk_format"] == disk_format
    assert image["size"] is None and image["checksum"] is None and image["virtual_size"] is None
    assert "os_glance_import_task" not in image
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert sorted(image["os_glance_failed_import"].split(",")) == ["fast"]
    nothing_left(service, image_id)


def test_corrupt_qcow2_passing_inspection_fails_conversion_and_reverts(service, http, tmp_path):
    """A qcow2 whose header is valid but whose first L1 entry points to an unaligned L2 table:
    our inspector and qemu-img info accept it (they read the header), qemu-img convert fails."""
    good = bytearray(qcow2(tmp_path, content=b"x" * 4096))
    l1_offset = int.from_bytes(good[40:48], "big")
    good[l1_offset : l1_offset + 8] = (0x80000000_00000000 | 0x30200).to_bytes(8, "big")
    image_id = create_image(service, http, MEMBER, disk_format="qcow2")
    assert stage(service, http, image_id, bytes(good), MEMBER).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, MEMBER).status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure", task
    assert "conversion failed" in task["message"], task
    assert_reverted(service, http, image_id, "qcow2")


def test_qcow2_with_backing_file_refused(service, http, tmp_path):
    base = tmp_path / "base.qcow2"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    data = qcow2(tmp_path, "1M", "-b", str(base), "-F", "qcow2")
    image_id = create_image(service, http, ADMIN, disk_format="qcow2")
    assert stage(service, http, image_id, data, ADMIN).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, ADMIN).status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure" and "backing file" in task["message"], task
    assert_reverted(service, http, image_id, "qcow2")


def test_raw_data_claimed_qcow2_refused(service, http):
    image_id = create_image(service, http, ADMIN, disk_format="qcow2")
    assert stage(service, http, image_id, raw_bytes(70_000), ADMIN).status_code == 204
    assert start_import(service, http, image_id, {"name": "glance-direct"}, ADMIN).status_code == 202
    task = wait_task(service, http, image_id)
    assert task["status"] == "failure" and "mismatch" in task["message"], task
    assert_reverted(service, http, image_id, "qcow2")


def test_copy_image_runs_no_plugin(service, http, tmp_path):
    source = qcow2(tmp_path, "2M")
    image_id = create_image(service, http, ADMIN, disk_format="qcow2")
    # A plain upload (no plugin) keeps the qcow2; copy-image must not convert it either.
    resp = http.put(
        f"{service.url}/v2/images/{image_id}/file",
        data=source,
        headers={"Content-Type": "application/octet-stream", **ADMIN},
    )
    assert resp.status_code == 204, resp.text
    resp = start_import(service, http, image_id, {"name": "copy-image"}, ADMIN, stores=["slow"])
    assert resp.status_code == 202, resp.text
    assert wait_task(service, http, image_id)["status"] == "success"
    image = get_image(service, http, image_id, ADMIN)
    assert image["disk_format"] == "qcow2" and sorted(image["stores"].split(",")) == ["fast", "slow"]
    assert (service.root / "slow" / image_id).read_bytes() == source


# ------------------------------------------------------------------ configuration


def test_unknown_plugin_stops_the_service(tmp_path):
    conf = write_config(tmp_path, {"image_import_opts": {"image_import_plugins": "no_op, image_shrinker"}})
    proc = subprocess.run(
        [str(BIN / "glancelite-api"), "--config-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )
    assert proc.returncode == 1, proc
    assert proc.stderr.startswith("glancelite: invalid configuration: [image_import_opts] image_import_plugins")
    assert "'image_shrinker'" in proc.stderr and "image_conversion" in proc.stderr
