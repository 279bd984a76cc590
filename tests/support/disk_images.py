"""Real disk images for the format-inspection tests, made by the tools that make them in the wild.

qcow2, vmdk, vhd (qemu's "vpc"), vhdx, qed, vdi and raw come from ``qemu-img``
(Debian qemu-utils), GPT disks from ``sgdisk`` (Debian gdisk), ISO 9660 from
pycdlib (a test dependency). tools/backends/install-backends.sh installs the
Debian packages; tests that need a missing tool skip and say which.
Every builder writes into ``directory`` and returns the image's path.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

QEMU_IMG = shutil.which("qemu-img")
SGDISK = shutil.which("sgdisk")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img (Debian qemu-utils) is not installed")
needs_sgdisk = pytest.mark.skipif(SGDISK is None, reason="sgdisk (Debian gdisk) is not installed")

MIB = 1 << 20
MBR_PARTITION_TABLE = 446  # four 16-byte entries, then the 0x55AA signature at 510


def qemu_image(directory: Path, fmt: str, size: str = "16M", *options: str, name: str | None = None) -> Path:
    """``qemu-img create -f fmt`` (``fmt`` is qemu's name: vpc for vhd)."""
    path = Path(directory) / (name or f"image.{fmt}")
    subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, *options, str(path), size], check=True)
    return path


def qcow2_with_backing_file(directory: Path, size: str = "1M") -> Path:
    base = qemu_image(directory, "qcow2", size, name="base.qcow2")
    return qemu_image(directory, "qcow2", size, "-b", str(base), "-F", "qcow2", name="overlay.qcow2")


def qcow2_with_data_file(directory: Path, size: str = "1M") -> Path:
    """A qcow2 whose guest data lives in another (raw) file: its header sets the external data-file bit."""
    data = Path(directory) / "external.raw"
    return qemu_image(directory, "qcow2", size, "-o", f"data_file={data}", name="datafile.qcow2")


def gpt_disk(directory: Path, size: int = 4 * MIB) -> Path:
    """A raw disk with a protective MBR and a GPT holding one Linux partition."""
    path = Path(directory) / "gpt.raw"
    with open(path, "wb") as fh:
        fh.truncate(size)
    subprocess.run([SGDISK, "--new=1:2048:0", "--typecode=1:8300", str(path)], check=True, capture_output=True)
    return path


def add_mbr_partition(path: Path) -> None:
    """A second MBR entry next to the protective one: a GPT whose MBR fails oslo's "mbr" check."""
    entry = struct.pack("<B3sB3sII", 0x00, b"\x00\x01\x00", 0x83, b"\xfe\xff\xff", 1, 2048)
    with open(path, "r+b") as fh:
        fh.seek(MBR_PARTITION_TABLE + 16)
        fh.write(entry)


def iso_image(directory: Path, content: bytes = b"hello from an ISO\n") -> Path:
    """An ISO 9660 filesystem with one file (pycdlib, the way genisoimage lays it out)."""
    import io

    import pycdlib

    path = Path(directory) / "image.iso"
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident="GLANCELITE")
    iso.add_fp(io.BytesIO(content), len(content), "/HELLO.TXT;1")
    iso.write(str(path))
    iso.close()
    return path


def hybrid_iso(directory: Path) -> Path:
    """An ISO whose system area starts with a GPT disk's MBR, as bootable-as-disk ISOs do."""
    iso = iso_image(directory)
    mbr = gpt_disk(directory).read_bytes()[:512]
    with open(iso, "r+b") as fh:
        fh.write(mbr)
    return iso


def set_vmdk_descriptor(path: Path, edit) -> None:
    """Rewrite the descriptor embedded in a monolithicSparse vmdk (``edit(text) -> text``) in its own space."""
    data = bytearray(path.read_bytes())
    sector, sectors = struct.unpack_from("<QQ", data, 28)
    start, length = sector * 512, sectors * 512
    text = bytes(data[start : start + length]).split(b"\0", 1)[0].decode()
    new = edit(text).encode()
    assert len(new) <= length, "the edited descriptor must fit in its sectors"
    data[start : start + length] = new.ljust(length, b"\0")
    path.write_bytes(bytes(data))
