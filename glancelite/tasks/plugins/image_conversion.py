"""image_conversion: convert the staged image to ``[image_conversion] output_format`` with qemu-img.

Glance's safety rules, before qemu-img touches the data: the data must be
what ``disk_format`` says (oslo.utils' format inspector through
store/inspection.py, which also runs its safety checks: qcow2 backing and
data files, VMDK descriptors, the GPT protective MBR; data with a partition
table counts as raw); an ISO stays an ISO
unconverted; then ``qemu-img info`` (run under an address-space and CPU
limit) must agree on the format and show no backing file, no data-file and
an allowed VMDK create-type. The image records the source's virtual size.
Unless the image already is in the output format, ``qemu-img convert``
writes the result in the tasks store, the result is inspected, replaces the
staged data, and the image gets ``disk_format`` = output format,
``container_format`` = bare and the new size (checksums follow when the
stores get the data). Revert: the scratch file goes and the image gets its
own formats back.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

from glancelite.store import inspection
from glancelite.tasks.plugins.base import ImportPlugin, PluginError

LOG = logging.getLogger(__name__)
# Glance's QEMU_IMG_PROC_LIMITS for qemu-img info: 1 GiB of address space, 30 s of CPU.
QEMU_IMG_ADDRESS_SPACE = 1 << 30
QEMU_IMG_CPU_SECONDS = 30
CONVERT_TIMEOUT = 3600
# Sets the limits in the child, then becomes qemu-img (no preexec_fn: the import runs in threads).
_LIMITED = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]),) * 2); "
    "resource.setrlimit(resource.RLIMIT_CPU, (int(sys.argv[2]),) * 2); "
    "os.execvp(sys.argv[3], sys.argv[3:])"
)


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise PluginError("Image conversion needs qemu-img, which is not installed on this node.")
    return path


def qemu_img_info(path: str, source_format: str) -> dict:
    cmd = [
        sys.executable,
        "-c",
        _LIMITED,
        str(QEMU_IMG_ADDRESS_SPACE),
        str(QEMU_IMG_CPU_SECONDS),
        qemu_img(),
        "info",
        "-f",
        source_format,
        "--output=json",
        path,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=QEMU_IMG_CPU_SECONDS * 4, check=False)
    if proc.returncode != 0 or proc.stderr.strip():
        raise PluginError(f"qemu-img info failed: {(proc.stderr or proc.stdout).strip()[:500]}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise PluginError("qemu-img info gave no readable answer") from exc


class Plugin(ImportPlugin):
    NAME = "image_conversion"
    CHANGES_DATA = True

    def run(self, staged_size: int) -> int:
        image = self.env.images.get_image(self.plan.image_id)
        self.original = {"disk_format": image.disk_format, "container_format": image.container_format}
        source, target = image.disk_format, self.env.settings.image_conversion_output_format
        self._check_source(source)
        if self._inspect(self.staged, source) == "iso":
            LOG.debug("image %s is an ISO: not converted", image.id)
            return staged_size
        info = qemu_img_info(self.staged, source)
        self._check_info(info, source)
        self.env.images.update_image(image.id, values={"virtual_size": info.get("virtual-size", 0)})
        if source == target:
            LOG.debug("image %s is already %s: not converted", image.id, target)
            return staged_size
        self._convert(source, target)
        detected = self._inspect(self.scratch, target)
        if detected != target:
            raise PluginError(f"Image conversion to {target} produced {detected} data")
        size = self.replace_staged(disk_format=target, container_format="bare")
        LOG.info("image %s converted from %s to %s, %d bytes", image.id, source, target, size)
        return size

    def _check_source(self, source: str | None) -> None:
        if not source:
            raise PluginError("Image has no disk_format to convert from")

    def _inspect(self, path: str, claimed: str) -> str:
        """What the data is (raw for unrecognised data); refuses unsafe data and a wrong claim."""
        try:
            verdict = inspection.inspect_file(path, inspection.FormatPolicy.from_settings(self.env.settings))
        except inspection.UnsafeImage as exc:
            LOG.error("image %s: %s", self.plan.image_id, exc.message)
            raise PluginError(f"Image has disallowed configuration: {exc.message}") from exc
        except inspection.FormatMismatch as exc:
            LOG.error("image %s: %s", self.plan.image_id, exc.message)
            raise PluginError(f"Image format detection failed: {exc.message}") from exc
        # Glance: a disk with a partition table (gpt) is raw to qemu-img.
        detected = "raw" if verdict.format == inspection.PARTITIONED_RAW else verdict.format
        if detected == "iso" and claimed != "iso":
            # Glance: data inspected as an ISO but claimed otherwise is refused.
            raise PluginError(f"Image claimed to be {claimed} format but format inspection found: ISO")
        if detected != claimed:
            raise PluginError(f"Image format mismatch: claimed {claimed}, the data is {detected}")
        return detected

    def _check_info(self, info: dict, source: str) -> None:
        if info.get("format") != source:
            raise PluginError(
                f"Image metadata disagrees about format: {source}, qemu-img says {info.get('format', 'unknown')}"
            )
        if "backing-filename" in info:
            raise PluginError("QCOW images with backing files are not allowed")
        specific = (info.get("format-specific") or {}).get("data") or {}
        if specific.get("data-file") is not None:
            raise PluginError("QCOW images with data-file set are not allowed")
        if source == "vmdk":
            create_type = specific.get("create-type")
            allowed = self.env.settings.vmdk_allowed_types
            if not create_type:
                raise PluginError("Unable to determine VMDK create-type")
            if create_type not in allowed:
                raise PluginError(f"Invalid VMDK create-type specified: {create_type}")

    def _convert(self, source: str, target: str) -> None:
        cmd = [qemu_img(), "convert", "-q", "-f", source, "-O", target, self.staged, self.scratch]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CONVERT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PluginError(f"qemu-img convert did not finish within {CONVERT_TIMEOUT} s") from exc
        if proc.returncode != 0 or proc.stderr.strip():
            raise PluginError(f"Image conversion failed: {(proc.stderr or proc.stdout).strip()[:500]}")

    def undo(self) -> None:
        original = getattr(self, "original", None)
        if original:
            self.env.images.update_image(self.plan.image_id, values=original)
