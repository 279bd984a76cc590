"""Random image data that every format inspector takes for plain raw.

``os.urandom`` data has the boot-sector signature 0x55AA at bytes 510-511 once in 65,536
draws: the GPT inspector then claims it and its MBR safety check refuses the upload, so a
test uploading random "raw" data failed that often, at random.
"""

from __future__ import annotations

import os

_BOOT_SIGNATURE = slice(510, 512)


def raw_bytes(size: int) -> bytes:
    """``size`` random bytes without a boot-sector signature (otherwise as ``os.urandom``)."""
    data = os.urandom(size)
    if data[_BOOT_SIGNATURE] == b"\x55\xaa":
        data = data[:510] + b"\0\0" + data[512:]
    return data
