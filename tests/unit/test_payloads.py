"""The test helper's random raw data never looks like a boot sector to the format inspector."""

from __future__ import annotations

import os

import pytest

from glancelite.store import inspection
from tests.support import payloads


def _inspect_as_raw(data: bytes) -> inspection.Verdict:
    checked = inspection.for_image("raw", "bare", inspection.FormatPolicy())
    checked.feed(data)
    return checked.finish()


def test_random_data_with_a_boot_signature_is_mended_and_then_raw(monkeypatch):
    unlucky = os.urandom(510) + b"\x55\xaa" + os.urandom(4096)
    with pytest.raises(inspection.UnsafeImage):  # what os.urandom alone gave once in 65,536 draws
        _inspect_as_raw(unlucky)
    monkeypatch.setattr(payloads.os, "urandom", lambda size: unlucky[:size])
    data = payloads.raw_bytes(len(unlucky))
    assert len(data) == len(unlucky) and data[510:512] == b"\0\0" and data[512:] == unlucky[512:]
    assert _inspect_as_raw(data).format == "raw"
