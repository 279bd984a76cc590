"""image_decompression: unpack a zip or gzip payload before it is stored.

As Glance: an image whose container_format is ``compressed`` is left alone;
otherwise the staged data's magic number decides: zip (the archive must
hold exactly one file), gzip, or LHA. glancelite unpacks what Python's
standard library reads (zip, gzip); an LHA archive fails the import with a
clear message (Glance needs the optional ``lhafile`` module). Anything else
passes unchanged. The unpacked data is written to the tasks store, may not
exceed image_size_cap, then replaces the staged data and sets the image's
size. Revert: the scratch file goes (staged data is reverted by the flow).
"""

from __future__ import annotations

import gzip
import logging
import zipfile
import zlib

from glancelite import errors
from glancelite.tasks.plugins.base import ImportPlugin, PluginError

LOG = logging.getLogger(__name__)
CHUNK = 1 << 20
# (offset, magic) as in Glance's MAGIC_NUMBERS.
ZIP = (0, b"PK\x03\x04")
LHA = (2, b"-lh")
GZIP = (0, b"\x1f\x8b\x08")
HEAD = max(offset + len(magic) for offset, magic in (ZIP, LHA, GZIP))


def kind(head: bytes) -> str | None:
    for name, (offset, magic) in (("zip", ZIP), ("lha", LHA), ("gzip", GZIP)):
        if head.startswith(magic, offset):
            return name
    return None


def _copy_capped(source, out, cap: int) -> None:
    written = 0
    while chunk := source.read(CHUNK):
        written += len(chunk)
        if written > cap:
            raise errors.TooLarge(f"The decompressed image exceeds the image size cap of {cap} bytes.")
        out.write(chunk)


def unzip(path: str, dest: str, cap: int) -> None:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) != 1:
            raise PluginError(f"Archive contains {len(members)} files; an image archive must contain exactly one.")
        if members[0].is_dir():
            raise PluginError("Archive contains a directory, not an image file.")
        with archive.open(members[0]) as source, open(dest, "xb") as out:
            _copy_capped(source, out, cap)


def gunzip(path: str, dest: str, cap: int) -> None:
    with gzip.open(path, "rb") as source, open(dest, "xb") as out:
        _copy_capped(source, out, cap)


class Plugin(ImportPlugin):
    NAME = "image_decompression"
    CHANGES_DATA = True

    def run(self, staged_size: int) -> int:
        image = self.env.images.get_image(self.plan.image_id)
        if image.container_format == "compressed":
            return staged_size  # meant to be stored compressed
        with open(self.staged, "rb") as fh:
            found = kind(fh.read(HEAD))
        if found is None:
            return staged_size
        if found == "lha":
            raise PluginError("Image is an LHA archive; glancelite cannot decompress LHA (zip and gzip only).")
        cap = self.env.settings.image_size_cap
        try:
            (unzip if found == "zip" else gunzip)(self.staged, self.scratch, cap)
        except (zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise PluginError(f"Image decompression ({found}) failed: {exc}") from exc
        size = self.replace_staged()
        LOG.info("image %s decompressed (%s): %d bytes", image.id, found, size)
        return size
