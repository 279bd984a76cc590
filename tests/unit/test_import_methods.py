"""Every import method has one way to get its bytes into staging."""

from __future__ import annotations

from glancelite.tasks import methods
from glancelite.tasks.plan import Method


def test_each_method_acquires_its_data_once():
    # glance-download is the one method with steps of its own (remote metadata, then the download).
    assert set(methods.ACQUIRE) | {Method.GLANCE_DOWNLOAD} == set(Method)
    assert Method.GLANCE_DOWNLOAD not in methods.ACQUIRE
