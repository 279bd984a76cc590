"""The streaming format inspector: real images from qemu-img, hand-built headers, chunking."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest

from glancelite.store import format_inspector as fi

QEMU_IMG = shutil.which("qemu-img")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img (Debian qemu-utils) is not installed")


def inspect(data: bytes, disk_format: str | None = None, *, enforce: bool = False, chunk: int = 1 << 20):
    inspection = fi.Inspection(disk_format, enforce=enforce)
    for i in range(0, len(data), chunk):
        inspection.feed(data[i : i + chunk])
    return inspection, inspection.finish()


def qemu_image(tmp_path, fmt: str, size: str = "20M", *options: str) -> bytes:
    path = tmp_path / f"image.{fmt}"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, *options, str(path), size], check=True)
    return path.read_bytes()


@needs_qemu_img
@pytest.mark.parametrize(
    ("qemu_format", "options", "expected", "virtual_size"),
    [
        ("qcow2", (), "qcow2", 20 << 20),
        ("qcow2", ("-o", "compat=0.10"), "qcow2", 20 << 20),
        ("vmdk", (), "vmdk", 20 << 20),
        ("vmdk", ("-o", "subformat=streamOptimized"), "vmdk", 20 << 20),
        ("vhdx", (), "vhdx", 20 << 20),
        ("vpc", (), "vhd", None),  # VHD rounds to its CHS geometry; checked against the footer below
        ("qed", (), "qed", None),
        ("vdi", (), "vdi", None),
    ],
)
@pytest.mark.parametrize("chunk", [1 << 20, 4096, 511])
def test_real_images(tmp_path, qemu_format, options, expected, virtual_size, chunk):
    data = qemu_image(tmp_path, qemu_format, "20M", *options)
    inspection, verdict = inspect(data, expected, enforce=True, chunk=chunk)
    assert verdict.format == expected
    assert inspection.problem is None
    if virtual_size is not None:
        assert verdict.virtual_size == virtual_size
    if expected == "vhd":
        assert verdict.virtual_size == struct.unpack_from(">Q", data, 48)[0] >= 20 << 20


@needs_qemu_img
def test_agrees_with_oslo_utils(tmp_path):
    imageutils = pytest.importorskip("oslo_utils.imageutils.format_inspector")
    for fmt, name in (("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhdx", "vhdx"), ("raw", "raw")):
        path = tmp_path / f"x.{fmt}"
        subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, str(path), "4M"], check=True)
        theirs = imageutils.detect_file_format(str(path))
        _, ours = inspect(path.read_bytes())
        assert ours.format == str(theirs) == name
        if name != "raw":  # oslo's detect_file_format stops reading a raw file early
            assert ours.virtual_size == theirs.virtual_size == 4 << 20


def test_raw_is_anything_unrecognised():
    _, verdict = inspect(os.urandom(200_000), "raw", enforce=True)
    assert verdict == fi.Verdict("raw", 200_000)
    _, verdict = inspect(b"", "raw", enforce=True)
    assert verdict == fi.Verdict("raw", 0)


def qcow2_header(version=3, backing_offset=0, cluster_bits=16, size=1 << 30, incompatible=0) -> bytes:
    header = struct.pack(">4sIQIIQ", b"QFI\xfb", version, backing_offset, 0, cluster_bits, size)
    header = header.ljust(72, b"\0") + struct.pack(">Q", incompatible)
    return header.ljust(512, b"\0")


def test_hand_built_qcow2_headers():
    _, verdict = inspect(qcow2_header(), "qcow2", enforce=True)
    assert verdict == fi.Verdict("qcow2", 1 << 30)
    with pytest.raises(fi.FormatMismatch, match="backing file"):
        inspect(qcow2_header(backing_offset=0x200), "qcow2", enforce=True)
    with pytest.raises(fi.FormatMismatch, match="external data file"):
        inspect(qcow2_header(incompatible=fi.QCOW2_EXTERNAL_DATA_FILE), "qcow2", enforce=True)
    with pytest.raises(fi.FormatMismatch, match="not a valid qcow2 header"):
        inspect(qcow2_header(version=7), "qcow2", enforce=True)
    # The magic alone followed by junk is not a qcow2 to a raw upload either way.
    _, verdict = inspect(qcow2_header(version=7), "raw", enforce=True)
    assert verdict.format == "raw"


def test_fake_qcow2_refused_early_without_reading_the_rest():
    inspection = fi.Inspection("qcow2", enforce=True)
    with pytest.raises(fi.FormatMismatch, match="the data is raw, disk_format is qcow2"):
        inspection.feed(os.urandom(fi.HEAD_BYTES))
    assert inspection.position == fi.HEAD_BYTES


def test_qcow2_declared_raw_is_refused():
    with pytest.raises(fi.FormatMismatch, match="the data is qcow2, disk_format is raw"):
        inspect(qcow2_header() + os.urandom(100_000), "raw", enforce=True)


def vmdk(create_type: str, extents: int = 1) -> bytes:
    descriptor = f'# Disk DescriptorFile\nversion=1\ncreateType="{create_type}"\n'
    descriptor += "".join(f'RW 2048 SPARSE "disk{i}.vmdk"\n' for i in range(extents))
    header = struct.pack("<4sIIQQQQ", b"KDMV", 1, 3, 2048, 128, 1, 20)
    return header.ljust(512, b"\0") + descriptor.encode().ljust(20 * 512, b"\0")


def test_hand_built_vmdk():
    _, verdict = inspect(vmdk("monolithicSparse"), "vmdk", enforce=True)
    assert verdict == fi.Verdict("vmdk", 2048 * 512)
    with pytest.raises(fi.FormatMismatch, match="createType 'vmfs'"):
        inspect(vmdk("vmfs"), "vmdk", enforce=True)
    with pytest.raises(fi.FormatMismatch, match="extents in other files"):
        inspect(vmdk("monolithicSparse", extents=2), "vmdk", enforce=True)
    # [image_format] vmdk_allowed_types narrows (or widens) the accepted createType values.
    relaxed = fi.for_image("vmdk", "bare", require_match=True, vmdk_allowed_types=["vmfs"])
    relaxed.feed(vmdk("vmfs"))
    assert relaxed.finish().format == "vmdk"


def test_vhd_and_iso_headers():
    footer = struct.pack(">8sIIQIIIIQQ", b"conectix", 2, 0x10000, 512, 0, 0, 0, 0, 5 << 20, 5 << 20)
    _, verdict = inspect(footer.ljust(512, b"\0"), "vhd", enforce=True)
    assert verdict == fi.Verdict("vhd", 5 << 20)

    iso = bytearray(0x8800)
    iso[0x8000:0x8006] = b"\x01CD001"
    struct.pack_into("<I", iso, 0x8000 + 80, 300)
    struct.pack_into("<H", iso, 0x8000 + 128, 2048)
    _, verdict = inspect(bytes(iso), "iso", enforce=True)
    assert verdict == fi.Verdict("iso", 300 * 2048)
    with pytest.raises(fi.FormatMismatch):
        inspect(bytes(iso), "raw", enforce=True)


def test_not_enforced_reports_but_refuses_nothing():
    _, verdict = inspect(qcow2_header(backing_offset=0x200), "raw", enforce=False)
    assert verdict.format == "qcow2"


def test_for_image_skips_ami_formats_and_checks_only_bare():
    assert fi.for_image("ami", "ami", require_match=True) is None
    assert fi.for_image("qcow2", "ovf", require_match=True).enforce is False
    assert fi.for_image("qcow2", "bare", require_match=True).enforce is True
    assert fi.for_image("qcow2", "bare", require_match=False).enforce is False
    assert fi.for_image("ploop", "bare", require_match=True) is None


def test_reader_shows_every_byte():
    import io

    data = qcow2_header() + os.urandom(5000)
    inspection = fi.Inspection("qcow2", enforce=True)
    reader = fi.InspectingReader(io.BytesIO(data), inspection)
    read = b"".join(iter(lambda: reader.read(777), b""))
    assert read == data
    assert inspection.finish() == fi.Verdict("qcow2", 1 << 30)
