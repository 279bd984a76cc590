"""What image data really is: a streaming disk-format inspector.

``Inspection`` is fed the chunks of an upload as they pass and keeps only
small captured regions (the first 64 KiB, a VMDK descriptor, the VHDX region
and metadata tables), never the image. It recognises qcow2, vmdk, vhd, vhdx,
iso, and (so they are not taken for raw) qed, vdi and luks; anything else is
raw. Like Glance (with ``[image_format] require_image_format_match``), a bare
image whose content is not its ``disk_format`` is refused, as soon as the
header shows it where possible, and unsafe qcow2/vmdk features are refused.
The header layouts follow the formats' public specifications.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import uuid
from collections.abc import Callable

from glancelite import errors

HEAD_BYTES = 64 * 1024
SECTOR = 512
# Disk formats that are raw bytes by definition (or that we cannot inspect): never refused.
UNCHECKED_DISK_FORMATS = frozenset({"ami", "ari", "aki", "ploop"})
# Formats this module recognises; a disk_format outside these and UNCHECKED is not checked either.
KNOWN = frozenset({"raw", "qcow2", "vmdk", "vhd", "vhdx", "iso", "qed", "vdi", "luks"})
VMDK_ALLOWED_TYPES = frozenset({"monolithicSparse", "streamOptimized"})
QCOW2_EXTERNAL_DATA_FILE = 1 << 2
VHDX_REGION_TABLE = 192 * 1024
VHDX_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
ISO_MARKERS = ((0x8001, (b"CD001", b"BEA01", b"NSR02", b"NSR03")), (0x8801, (b"CD001", b"NSR02", b"NSR03")))


class FormatMismatch(errors.UnsupportedMedia):
    """The data is not what disk_format says, or it is unsafe (415, image stays queued)."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    format: str
    virtual_size: int | None


def detect(head: bytes) -> set[str]:
    """Every format whose signature ``head`` (the start of the data) carries."""
    found = set()
    if head[:4] == b"QFI\xfb":
        found.add("qcow2")
    if head[:4] == b"KDMV":
        found.add("vmdk")
    if head[:8] == b"conectix":
        found.add("vhd")
    if head[:8] == b"vhdxfile":
        found.add("vhdx")
    if head[:4] == b"QED\x00":
        found.add("qed")
    if head[:6] == b"LUKS\xba\xbe":
        found.add("luks")
    if len(head) >= 0x44 and struct.unpack_from("<I", head, 0x40)[0] == 0xBEDA107F:
        found.add("vdi")
    for offset, markers in ISO_MARKERS:
        if head[offset : offset + 5] in markers:
            found.add("iso")
    return found


@dataclasses.dataclass
class _Region:
    offset: int
    length: int
    on_complete: Callable[[bytes], None]
    data: bytearray = dataclasses.field(default_factory=bytearray)


class Inspection:
    """Feed every chunk in order with ``feed``; ``finish`` gives the verdict (or raises FormatMismatch).

    ``enforce`` False (require_image_format_match off, or a non-bare container)
    still reports what the data is and its virtual size, but refuses nothing.
    """

    def __init__(self, disk_format: str | None, *, enforce: bool = True, vmdk_allowed_types=VMDK_ALLOWED_TYPES):
        self.vmdk_allowed_types = frozenset(vmdk_allowed_types)
        self.disk_format = disk_format or "raw"
        self.enforce = enforce and self.disk_format in KNOWN
        self.position = 0
        self.detected: str | None = None
        self.virtual_size: int | None = None
        self.problem: str | None = None
        self._chunk_start = 0
        self._regions: list[_Region] = [_Region(0, HEAD_BYTES, self._on_head)]

    # -- streaming ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        start, end = self.position, self.position + len(data)
        self._chunk_start, self.position = start, end
        progressed = True
        while progressed and self._regions:
            progressed = False
            for region in list(self._regions):
                want_from = region.offset + len(region.data)
                if want_from >= end or want_from < start:
                    continue
                take = min(region.offset + region.length, end) - want_from
                region.data += data[want_from - start : want_from - start + take]
                if len(region.data) == region.length:
                    self._regions.remove(region)
                    region.on_complete(bytes(region.data))
                    progressed = True
        self._chunk_start = end

    @property
    def decided(self) -> bool:
        """Nothing more to learn from further data (a caller may stop feeding and call finish)."""
        return self.detected is not None and not self._regions

    def finish(self, total: int | None = None) -> Verdict:
        """End of data (``total`` bytes, when feeding stopped early): complete what can be, then judge."""
        for region in list(self._regions):
            if region.offset == 0:  # a short image: the head is all there is
                self._regions.remove(region)
                region.on_complete(bytes(region.data))
        self._regions.clear()
        self._judge(final=True)
        if self.detected == "raw":
            self.virtual_size = self.position if total is None else total
        return Verdict(self.detected or "raw", self.virtual_size)

    def _want(self, offset: int, length: int, on_complete: Callable[[bytes], None]) -> None:
        # A region may start inside the chunk being fed (feed rescans it); one we streamed past is lost.
        if offset >= self._chunk_start and length > 0:
            self._regions.append(_Region(offset, length, on_complete))

    # -- the header -----------------------------------------------------------------

    def _on_head(self, head: bytes) -> None:
        found = detect(head)
        if len(found) > 1:
            self.detected = "+".join(sorted(found))
            self.problem = f"Multiple formats detected: {', '.join(sorted(found))}"
        else:
            self.detected = found.pop() if found else "raw"
            parse = getattr(self, f"_parse_{self.detected}", None)
            if parse is not None:
                parse(head)
        if self.enforce and len(head) == HEAD_BYTES:
            self._judge(final=False)  # refuse early: the rest of the upload need not arrive

    def _judge(self, final: bool) -> None:
        if not self.enforce:
            return
        if self.detected is None:
            self.detected = "raw"
        if self.detected != self.disk_format:
            raise FormatMismatch(
                f"Image content does not match disk_format: the data is {self.detected}, "
                f"disk_format is {self.disk_format}."
            )
        if self.problem and (final or not self._regions):
            raise FormatMismatch(f"Image does not pass the {self.detected} safety check: {self.problem}")

    def _parse_qcow2(self, head: bytes) -> None:
        if len(head) < 72:
            self.problem = "truncated qcow2 header"
            return
        version, backing_offset, _backing_size, cluster_bits, size = struct.unpack_from(">IQIIQ", head, 4)
        if version not in (2, 3) or not 9 <= cluster_bits <= 21:
            self.detected = "raw"  # the magic alone does not make a qcow2
            if self.disk_format == "qcow2":
                self.detected, self.problem = "qcow2", "not a valid qcow2 header"
            return
        self.virtual_size = size
        if backing_offset:
            self.problem = "qcow2 images with a backing file are not allowed"
        elif version == 3 and len(head) >= 80:
            (incompatible,) = struct.unpack_from(">Q", head, 72)
            if incompatible & QCOW2_EXTERNAL_DATA_FILE:
                self.problem = "qcow2 images with an external data file are not allowed"

    def _parse_vmdk(self, head: bytes) -> None:
        if len(head) < 44:
            self.problem = "truncated vmdk header"
            return
        capacity, _grain, descriptor_sector, descriptor_sectors = struct.unpack_from("<QQQQ", head, 12)
        self.virtual_size = capacity * SECTOR
        if not descriptor_sector:
            self.problem = "vmdk without an embedded descriptor"
            return
        offset, length = descriptor_sector * SECTOR, min(descriptor_sectors * SECTOR, HEAD_BYTES)
        if offset + length <= len(head):
            self._check_vmdk_descriptor(head[offset : offset + length])
        else:
            self.problem = "vmdk descriptor not read"  # cleared when the descriptor arrives
            self._want(offset, length, self._check_vmdk_descriptor)

    def _check_vmdk_descriptor(self, descriptor: bytes) -> None:
        text = descriptor.split(b"\x00", 1)[0].decode("latin-1")
        match = re.search(r'^\s*createType\s*=\s*"([^"]*)"', text, re.MULTILINE)
        create_type = match[1] if match else None
        if create_type not in self.vmdk_allowed_types:
            self.problem = f"vmdk createType {create_type!r} is not allowed"
            return
        extents = re.findall(r'^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]*)"', text, re.MULTILINE)
        self.problem = "vmdk extents in other files are not allowed" if len(extents) > 1 else None

    def _parse_vhd(self, head: bytes) -> None:
        if len(head) >= 56:
            (self.virtual_size,) = struct.unpack_from(">Q", head, 48)

    def _parse_vhdx(self, head: bytes) -> None:
        self._want(VHDX_REGION_TABLE, 64 * 1024, self._on_vhdx_regions)

    def _on_vhdx_regions(self, table: bytes) -> None:
        if table[:4] != b"regi":
            return
        (count,) = struct.unpack_from("<I", table, 8)
        for i in range(min(count, 2047)):
            entry = 16 + 32 * i
            if table[entry : entry + 16] == VHDX_METADATA_REGION:
                region_offset, region_length = struct.unpack_from("<QI", table, entry + 16)
                self._want(
                    region_offset,
                    min(region_length, 64 * 1024),
                    lambda meta, base=region_offset: self._on_vhdx_metadata(base, meta),
                )
                return

    def _on_vhdx_metadata(self, base: int, table: bytes) -> None:
        if table[:8] != b"metadata":
            return
        (count,) = struct.unpack_from("<H", table, 10)
        for i in range(min(count, 2047)):
            entry = 32 + 32 * i
            if table[entry : entry + 16] == VHDX_VIRTUAL_DISK_SIZE:
                (item_offset,) = struct.unpack_from("<I", table, entry + 16)
                if item_offset + 8 <= len(table):
                    (self.virtual_size,) = struct.unpack_from("<Q", table, item_offset)
                else:
                    self._want(base + item_offset, 8, self._on_vhdx_size)
                return

    def _on_vhdx_size(self, value: bytes) -> None:
        (self.virtual_size,) = struct.unpack("<Q", value)

    def _parse_iso(self, head: bytes) -> None:
        # The primary volume descriptor (type 1) at 32 KiB: block count (LE half at 80), block size (LE at 128).
        pvd = 0x8000
        if head[pvd] == 1 and head[pvd + 1 : pvd + 6] == b"CD001" and len(head) >= pvd + 130:
            (blocks,) = struct.unpack_from("<I", head, pvd + 80)
            (block_size,) = struct.unpack_from("<H", head, pvd + 128)
            self.virtual_size = blocks * block_size


class InspectingReader:
    """``read(n)`` over ``source`` that shows every byte to an Inspection on its way through."""

    def __init__(self, source, inspection: Inspection):
        self._source = source
        self.inspection = inspection

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.inspection.feed(data)
        return data

    def close(self) -> None:
        closer = getattr(self._source, "close", None)
        if closer:
            closer()


def for_image(
    disk_format: str | None,
    container_format: str | None,
    *,
    require_match: bool,
    vmdk_allowed_types=VMDK_ALLOWED_TYPES,
) -> Inspection | None:
    """The inspection an upload of this image needs, or None (formats that are raw bytes by definition)."""
    if disk_format in UNCHECKED_DISK_FORMATS:
        return None
    # COMPAT: Glance inspects only bare images; other containers wrap the disk.
    enforce = require_match and (container_format or "bare") == "bare"
    return Inspection(disk_format, enforce=enforce, vmdk_allowed_types=vmdk_allowed_types)
