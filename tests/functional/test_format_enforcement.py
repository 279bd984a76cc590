"""Image format enforcement ([image_format] require_image_format_match, gpt_safety_checks_nonfatal;
oslo.utils' format inspector through store/inspection.py) against a real glancelite-api."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import ADMIN
from tests.functional._images import image_row, new_image
from tests.support import disk_images
from tests.support.disk_images import needs_qemu_img, needs_sgdisk
from tests.support.payloads import raw_bytes
from tests.support.server import Server, write_config

OCTET = {"Content-Type": "application/octet-stream", **ADMIN}


def qemu_image(tmp_path, fmt: str, size: str = "16M", *options: str) -> bytes:
    return disk_images.qemu_image(tmp_path, fmt, size, *options).read_bytes()


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
    resp = upload(service, http, image_id, b"QFI\xfb" + raw_bytes(300_000))
    assert resp.status_code == 415, resp.text
    assert "qcow2" in resp.text
    image = show(service, http, image_id)
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert stored_files(service) == before
    # Random bytes declared qcow2: refused too.
    assert upload(service, http, image_id, raw_bytes(100_000)).status_code == 415
    assert show(service, http, image_id)["status"] == "queued"


def test_raw_accepts_arbitrary_bytes_and_records_virtual_size(service, http):
    data = raw_bytes(70_000)
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
    data = disk_images.qcow2_with_backing_file(tmp_path).read_bytes()
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


def test_iso_is_accepted_with_its_volume_size_and_refused_as_raw(service, http, tmp_path):
    data = disk_images.iso_image(tmp_path).read_bytes()
    image_id = new_image(service, http, headers=ADMIN, disk_format="iso")
    assert upload(service, http, image_id, data).status_code == 204
    assert show(service, http, image_id)["virtual_size"] == len(data)
    as_raw = new_image(service, http, headers=ADMIN, disk_format="raw")
    resp = upload(service, http, as_raw, data)
    assert resp.status_code == 415
    assert "the data is iso, disk_format is raw" in resp.text


@needs_sgdisk
def test_gpt_disk_is_raw(service, http, tmp_path):
    data = disk_images.gpt_disk(tmp_path).read_bytes()
    image_id = new_image(service, http, headers=ADMIN, disk_format="raw")
    assert upload(service, http, image_id, data).status_code == 204
    image = show(service, http, image_id)
    assert image["status"] == "active" and image["virtual_size"] == len(data)


def bad_gpt(tmp_path) -> bytes:
    path = disk_images.gpt_disk(tmp_path)
    disk_images.add_mbr_partition(path)
    return path.read_bytes()


@needs_sgdisk
def test_gpt_failing_its_mbr_check_is_refused_by_default(service, http, tmp_path):
    image_id = new_image(service, http, headers=ADMIN, disk_format="raw")
    before = stored_files(service)
    resp = upload(service, http, image_id, bad_gpt(tmp_path))
    assert resp.status_code == 415, resp.text
    assert "gpt safety check: mbr" in resp.text
    assert show(service, http, image_id)["status"] == "queued"
    assert stored_files(service) == before


def test_other_containers_and_ami_formats_are_not_inspected(service, http):
    for fields in (
        {"disk_format": "qcow2", "container_format": "ovf"},
        {"disk_format": "ami", "container_format": "ami"},
    ):
        image_id = new_image(service, http, headers=ADMIN, **fields)
        assert upload(service, http, image_id, raw_bytes(1000)).status_code == 204, fields


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
    stage = http.put(f"{service.url}/v2/images/{fake}/stage", data=raw_bytes(5000), headers=OCTET)
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
    assert upload(lax_service, http, image_id, raw_bytes(4000)).status_code == 204
    assert show(lax_service, http, image_id)["status"] == "active"


@needs_qemu_img
def test_require_image_format_match_false_still_runs_the_safety_checks(lax_service, http, tmp_path):
    # Glance 33: a qcow2 with a backing file is refused whether or not the format must match.
    data = disk_images.qcow2_with_backing_file(tmp_path).read_bytes()
    for disk_format in ("qcow2", "raw"):
        image_id = new_image(lax_service, http, headers=ADMIN, disk_format=disk_format)
        resp = upload(lax_service, http, image_id, data)
        assert resp.status_code == 415, (disk_format, resp.text)
        assert "backing file" in resp.text
        assert show(lax_service, http, image_id)["status"] == "queued"


@pytest.fixture(scope="module")
def gpt_lenient_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt-lenient")
    server = Server(write_config(root, {"image_format": {"gpt_safety_checks_nonfatal": "mbr"}})).start()
    yield server
    server.stop()


@needs_sgdisk
def test_gpt_safety_checks_nonfatal_lets_the_listed_gpt_failure_through(gpt_lenient_service, http, tmp_path):
    data = bad_gpt(tmp_path)
    image_id = new_image(gpt_lenient_service, http, headers=ADMIN, disk_format="raw")
    assert upload(gpt_lenient_service, http, image_id, data).status_code == 204
    image = show(gpt_lenient_service, http, image_id)
    assert image["status"] == "active" and image["virtual_size"] == len(data)
    # It relaxes the GPT checks only: a qcow2 backing file is still refused.
    qcow2_id = new_image(gpt_lenient_service, http, headers=ADMIN, disk_format="qcow2")
    resp = upload(gpt_lenient_service, http, qcow2_id, disk_images.qcow2_with_backing_file(tmp_path).read_bytes())
    assert resp.status_code == 415 and "backing file" in resp.text
