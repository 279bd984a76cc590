"""What image data really is, judged while it streams: oslo.utils' shared format inspector.

The detection and the safety checks are oslo.utils' (``oslo_utils.imageutils.
format_inspector``, the code Glance, Nova and Cinder share). This module feeds
it the chunks our readers pass along (it keeps only small header regions,
never the image) and turns its answer into a verdict with typed errors:

- a ``bare`` image whose data is not its ``disk_format`` is refused
  (``[image_format] require_image_format_match``), as early as the header
  shows it when the claimed format's inspector can tell;
- whatever the data turns out to be is safety-checked (qcow2 backing and data
  files, vmdk descriptors and footers, the GPT protective MBR, ...), match
  required or not, as Glance does. GPT failures whose check names are listed
  in ``[image_format] gpt_safety_checks_nonfatal`` are logged, not fatal;
- glancelite keeps two rules of its own on top: a vmdk's createType must be
  in ``[image_format] vmdk_allowed_types`` (which can only narrow oslo's
  monolithicSparse/streamOptimized) and its descriptor must name one extent
  and come embedded in a sparse header; and data of a richer format uploaded
  as ``raw`` is refused while the match is required (Glance lets it through
  with a warning).
"""

from __future__ import annotations

import dataclasses
import logging
import re

from oslo_utils.imageutils import format_inspector

from glancelite import errors
from glancelite.settings import Settings

LOG = logging.getLogger(__name__)

# Every format the inspector recognises; only these disk_formats can be held to their content.
INSPECTABLE = frozenset(format_inspector.ALL_FORMATS)
# Disk formats that are raw bytes by definition (kernels, ramdisks, ploop): never inspected.
NOT_INSPECTED = frozenset({"ami", "ari", "aki", "ploop"})
# What raw data with a partition table is detected as; a raw disk_format covers it.
PARTITIONED_RAW = "gpt"
_VMDK_EXTENT = re.compile(r"^\s*(?:rw|rdonly|noaccess)\s", re.MULTILINE)


class FormatMismatch(errors.UnsupportedMedia):
    """The data is not what disk_format says, or its format cannot be told (415, image stays queued)."""


class UnsafeImage(errors.UnsupportedMedia):
    """The data fails a safety check of the format it is (415, image stays queued)."""


@dataclasses.dataclass(frozen=True)
class FormatPolicy:
    """The ``[image_format]`` options inspection follows."""

    require_match: bool = True
    vmdk_allowed_types: frozenset[str] = frozenset({"streamOptimized", "monolithicSparse"})
    # GPT safety-check names ("mbr") whose failure is only logged.
    gpt_nonfatal_checks: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> FormatPolicy:
        return cls(
            require_match=settings.require_image_format_match,
            vmdk_allowed_types=frozenset(settings.vmdk_allowed_types),
            gpt_nonfatal_checks=frozenset(settings.gpt_safety_checks_nonfatal),
        )


@dataclasses.dataclass(frozen=True)
class Verdict:
    format: str | None  # what the data is ("raw": nothing more specific; None: it could not be told)
    virtual_size: int | None  # None when the format does not tell


class _Slot:
    """The one chunk the oslo wrapper reads next: oslo reads it, we fed it."""

    data = b""

    def read(self, size: int = -1) -> bytes:
        data, self.data = self.data, b""
        return data


class Inspection:
    """Feed every chunk in order with ``feed``; ``finish`` judges (or raises FormatMismatch/UnsafeImage).

    ``enforce_match`` False (require_image_format_match off) still refuses
    data that fails its safety check, but neither a mismatch nor data whose
    format cannot be told.
    """

    def __init__(self, disk_format: str | None, policy: FormatPolicy, *, enforce_match: bool | None = None):
        self.disk_format = disk_format  # None: no claim (only detect and safety-check)
        self.policy = policy
        if enforce_match is None:
            enforce_match = policy.require_match
        self.enforce_match = enforce_match and disk_format in INSPECTABLE
        # The claimed format's inspector may refuse the data as soon as its header is in (raw never does).
        expected = disk_format if self.enforce_match and disk_format != "raw" else None
        self._slot = _Slot()
        self._wrapper = format_inspector.InspectWrapper(self._slot, expected_format=expected)
        self.position = 0
        self._decided = False
        self._finished = False

    # -- streaming ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.position += len(data)
        if self._decided:
            return  # every inspector has what it needs: the rest is only counted
        self._slot.data = data
        try:
            self._wrapper.read(len(data))
        except format_inspector.ImageFormatError as exc:
            LOG.info("data of disk_format %s refused by its inspector: %s", self.disk_format, exc)
            raise FormatMismatch(
                f"Image content does not match disk_format: the data is not {self.disk_format}."
            ) from exc
        except Exception as exc:  # the claimed format's inspector failed on the data itself
            LOG.warning("the %s inspector failed on the data: %s", self.disk_format, exc)
            raise FormatMismatch("Image format inspection failed.") from exc
        self._decided = self._formats() is not None

    def _formats(self) -> list[format_inspector.FileInspector] | None:
        """oslo's matches so far (None: undecided); None too when an inspector trips over the data.

        oslo.utils 10.x: data whose first 512 bytes look like text and whose first
        chunk is not ASCII leaves the vmdk inspector without an answer, and asking
        it raises; then only the end of the data decides (``detect``).
        """
        try:
            return self._wrapper.formats
        except Exception:
            LOG.debug("format inspection undecided", exc_info=True)
            return None

    @property
    def decided(self) -> bool:
        """Nothing more to learn from further data (a caller may stop feeding; pass ``total`` to finish)."""
        return self._decided

    # -- the verdict -----------------------------------------------------------------

    def finish(self, total: int | None = None) -> Verdict:
        """End of data (``total`` bytes, when feeding stopped early): what the data is, judged."""
        try:
            inspector = self.detect()
        except FormatMismatch as exc:
            if self.enforce_match:
                raise
            LOG.warning("image data claimed %s not judged (%s); no match required", self.disk_format, exc.message)
            return Verdict(None, None)
        size = self.position if total is None else total
        detected = str(inspector)
        if detected == self.disk_format or (self.disk_format == "raw" and detected == PARTITIONED_RAW):
            pass
        elif self.disk_format not in INSPECTABLE and detected == "raw":
            return Verdict(detected, None)  # a format we cannot inspect, and nothing else recognised
        elif self.enforce_match:
            raise FormatMismatch(
                f"Image content does not match disk_format: the data is {detected}, disk_format is {self.disk_format}."
            )
        elif self.disk_format == "raw":
            # Glance: a rich format claimed raw is let through (no match required), its safety checked.
            LOG.warning("image data claimed raw is %s; accepted as raw", detected)
            check_safety(inspector, self.policy)
            return Verdict(detected, size)
        else:
            LOG.warning("image data claimed %s is %s; no match required", self.disk_format, detected)
            return Verdict(detected, None)
        check_safety(inspector, self.policy)
        try:
            return Verdict(detected, _virtual_size(inspector, size))
        except FormatMismatch:
            if self.enforce_match:
                raise
            return Verdict(detected, None)

    def detect(self) -> format_inspector.FileInspector:
        """End of data: the one inspector that matched (raw when none did).

        ISO wins over GPT (bootable ISOs carry both); any other pair is refused,
        as one header hidden in another may be an attack.
        """
        if not self._finished:
            self._finished = True
            self._wrapper.close()
        try:
            found = self._wrapper.formats or ()
        except Exception as exc:  # an inspector that trips over the data (see _formats)
            LOG.warning("format inspection failed: %r", exc)
            raise FormatMismatch("Image format inspection failed.") from exc
        matches = {str(inspector): inspector for inspector in found}
        if matches.keys() == {"iso", PARTITIONED_RAW}:
            return matches["iso"]
        if len(matches) > 1:
            names = ", ".join(sorted(matches))
            LOG.warning("image data matches several formats: %s", names)
            raise FormatMismatch(f"Image format inspection failed: the data matches several formats ({names}).")
        return next(iter(matches.values()))


def check_safety(inspector: format_inspector.FileInspector, policy: FormatPolicy) -> None:
    """oslo.utils' safety checks for the detected format, then glancelite's own vmdk rules."""
    name = str(inspector)
    try:
        inspector.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        if name == PARTITIONED_RAW and exc.failures.keys() <= policy.gpt_nonfatal_checks:
            LOG.warning(
                "%s safety check failures let through by gpt_safety_checks_nonfatal: %s", name, _describe(exc.failures)
            )
        else:
            LOG.warning("image data (%s) fails safety checks: %s", name, _describe(exc.failures))
            raise UnsafeImage(f"Image does not pass the {name} safety check: {_describe(exc.failures)}") from exc
    except format_inspector.ImageFormatError as exc:
        raise FormatMismatch(f"Image format inspection failed: the {name} data is incomplete.") from exc
    if name == "vmdk":
        _check_vmdk(inspector, policy)


def _check_vmdk(inspector: format_inspector.VMDKInspector, policy: FormatPolicy) -> None:
    if not inspector.has_region("header"):
        raise UnsafeImage("Image does not pass the vmdk safety check: a descriptor without its sparse extent")
    create_type = inspector.vmdktype  # oslo lower-cases the descriptor
    if create_type not in {allowed.lower() for allowed in policy.vmdk_allowed_types}:
        raise UnsafeImage(f"Image does not pass the vmdk safety check: createType {create_type!r} is not allowed")
    if len(_VMDK_EXTENT.findall(inspector.desc_text or "")) != 1:
        raise UnsafeImage("Image does not pass the vmdk safety check: extents in other files are not allowed")


def _describe(failures: dict) -> str:
    return "; ".join(f"{check}: {failure}" for check, failure in sorted(failures.items()))


def _virtual_size(inspector: format_inspector.FileInspector, size: int) -> int | None:
    if str(inspector) in ("raw", PARTITIONED_RAW):
        return size  # the disk is the data
    try:
        return inspector.virtual_size or None  # oslo answers 0 when the header does not tell
    except Exception as exc:  # a header that passed the checks but whose size tables do not parse
        LOG.warning("the %s virtual size cannot be read: %r", inspector, exc)
        raise FormatMismatch(f"Image format inspection failed: the {inspector} virtual size cannot be read.") from exc


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


def for_image(disk_format: str | None, container_format: str | None, policy: FormatPolicy) -> Inspection | None:
    """The inspection an upload or import of this image needs, or None when its data is not inspected."""
    # COMPAT: Glance inspects only bare images; other containers wrap the disk.
    if (container_format or "bare") != "bare" or disk_format in NOT_INSPECTED:
        return None
    return Inspection(disk_format or "raw", policy)


def inspect_file(path: str, policy: FormatPolicy, chunk_size: int = 1 << 20) -> Verdict:
    """What the file at ``path`` is, safety-checked whatever it claims to be (reads only what it needs).

    Raises UnsafeImage when it fails a safety check, FormatMismatch when its format cannot be told.
    """
    inspection = Inspection(None, policy, enforce_match=False)
    with open(path, "rb") as fh:
        while not inspection.decided:
            chunk = fh.read(chunk_size)
            if not chunk:
                break
            inspection.feed(chunk)
        total = fh.seek(0, 2)
    inspector = inspection.detect()
    check_safety(inspector, policy)
    return Verdict(str(inspector), _virtual_size(inspector, total))
