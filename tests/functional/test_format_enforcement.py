"""Image format enforcement ([image_format] require_image_format_match) against a real glancelite-api."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.conftest import ADMIN
from tests.functional._images import image_row, new_image
from tests.support.server import Server, write_config

OCTET = {"Content-Type": "application/octet-stream", **ADMIN}
QEMU_IMG = shutil.which("qemu-img")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img (Debian qemu-utils) is not installed")


def qemu_image(tmp_path, fmt: str, size: str = "16M", *options: str) -> bytes:
    path = tmp_path / f"image.{fmt}"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, *options, str(path), size], check=True)
    return path.read_bytes()


def upload(service, http, image_id: str, data: bytes):
    return http.put(f"{service.url}/v2/images/{image_id}/file", data=data, headers=OCTET)


def stored_files(service) -> list[str]:
    root = service.config.parent
    return sorted(name for store in ("fast", "slow") if (root / store).exists() for name in os.listdir(root / store))


def show(service, http, image_id: str) -> dict:
    return http.get(f"{service.url}/v2/images/{image_id}", headers=ADMIN).json()


def test_fake_qcow2_is_refused_and_the_image_stays_queued(service, http):
    image_id = new_image(service, http, headers=ADMIN, disk_format="qcow2")
    before = stored_files(service)
    resp = upload(service, http, image_id, b"QFI\xfb" + os.urandom(300_000))
    assert resp.status_code == 415, resp.text
    assert "qcow2" in resp.text
    image = show(service, http, image_id)
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert stored_files(service) == before
    # Random bytes declared qcow2: refused too.
    assert upload(service, http, image_id, os.urandom(100_000)).status_code == 415
    assert show(service, http, image_id)["status"] == "queued"


def test_raw_accepts_arbitrary_bytes_and_records_virtual_size(service, http):
    data = os.urandom(70_000)
    image_id = new_image(service, http, headers=ADMIN, disk_format="raw")
    assert upload(service, http, image_id, data).status_code == 204
    image = show(service, http, image_id)
    assert image["status"] == "active"
    assert image["virtual_size"] == len(data)


@needs_qemu_img
def test_real_qcow2_is_accepted_with_its_virtual_size(service, http, tmp_path):
    data = qemu_image(tmp_path, "qcow2", "16M")
    image_id = new_image(service, http, headers=ADMIN, disk_format="qcow2")
    assert upload(service, http, image_id, data).status_code == 204
    image = show(service, http, image_id)
    assert image["status"] == "active"
    assert image["virtual_size"] == 16 * 1024 * 1024
    assert image["size"] == len(data)


@needs_qemu_img
def test_qcow2_uploaded_as_raw_is_refused(service, http, tmp_path):
    image_id = new_image(service, http, headers=ADMIN, disk_format="raw")
    resp = upload(service, http, image_id, qemu_image(tmp_path, "qcow2"))
    assert resp.status_code == 415
    assert "the data is qcow2, disk_format is raw" in resp.text
    assert image_row(service, image_id).status == "queued"


@needs_qemu_img
def test_qcow2_with_a_backing_file_is_refused(service, http, tmp_path):
    base = tmp_path / "base.qcow2"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    data = qemu_image(tmp_path, "qcow2", "1M", "-b", str(base), "-F", "qcow2")
    image_id = new_image(service, http, headers=ADMIN, disk_format="qcow2")
    resp = upload(service, http, image_id, data)
    assert resp.status_code == 415
    assert "backing file" in resp.text


@needs_qemu_img
@pytest.mark.parametrize(
    ("disk_format", "qemu_format", "virtual_size"), [("vmdk", "vmdk", 16 << 20), ("vhdx", "vhdx", 16 << 20)]
)
def test_other_formats_accepted_with_virtual_size(service, http, tmp_path, disk_format, qemu_format, virtual_size):
    image_id = new_image(service, http, headers=ADMIN, disk_format=disk_format)
    assert upload(service, http, image_id, qemu_image(tmp_path, qemu_format)).status_code == 204
    assert show(service, http, image_id)["virtual_size"] == virtual_size


def test_other_containers_and_ami_formats_are_not_inspected(service, http):
    for fields in (
        {"disk_format": "qcow2", "container_format": "ovf"},
        {"disk_format": "ami", "container_format": "ami"},
    ):
        image_id = new_image(service, http, headers=ADMIN, **fields)
        assert upload(service, http, image_id, os.urandom(1000)).status_code == 204, fields


def wait_status(service, http, image_id: str, statuses: set[str], deadline: float = 30.0) -> dict:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        image = show(service, http, image_id)
        if image["status"] in statuses and not image.get("os_glance_import_task"):
            return image
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} did not reach {statuses}: {image}")


@needs_qemu_img
def test_glance_direct_import_checks_the_staged_data(service, http, tmp_path):
    fake = new_image(service, http, headers=ADMIN, disk_format="qcow2")
    stage = http.put(f"{service.url}/v2/images/{fake}/stage", data=os.urandom(5000), headers=OCTET)
    assert stage.status_code == 204, stage.text
    body = {"method": {"name": "glance-direct"}}
    assert http.post(f"{service.url}/v2/images/{fake}/import", json=body, headers=ADMIN).status_code == 202
    assert wait_status(service, http, fake, {"queued"})["status"] == "queued"

    real = new_image(service, http, headers=ADMIN, disk_format="qcow2")
    stage = http.put(f"{service.url}/v2/images/{real}/stage", data=qemu_image(tmp_path, "qcow2", "8M"), headers=OCTET)
    assert stage.status_code == 204
    assert http.post(f"{service.url}/v2/images/{real}/import", json=body, headers=ADMIN).status_code == 202
    image = wait_status(service, http, real, {"active"})
    assert image["virtual_size"] == 8 << 20


@pytest.fixture(scope="module")
def lax_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("lax")
    server = Server(write_config(root, {"image_format": {"require_image_format_match": "false"}})).start()
    yield server
    server.stop()


def test_require_image_format_match_false_accepts_a_mismatch(lax_service, http):
    image_id = new_image(lax_service, http, headers=ADMIN, disk_format="qcow2")
    assert upload(lax_service, http, image_id, os.urandom(4000)).status_code == 204
    assert show(lax_service, http, image_id)["status"] == "active"
