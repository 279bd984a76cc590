"""PacedBody: large blocks for a client that keeps up, small ones for a client that trickles."""

from __future__ import annotations

import io

from glancelite.api.paced_body import LARGEST_BLOCK, SLOW_READ_SECONDS, SMALLEST_BLOCK, PacedBody
from tests.support.payloads import raw_bytes


class Source(io.BytesIO):
    """A body whose reads take ``seconds_per_read`` on a fake clock; records the sizes asked."""

    def __init__(self, data: bytes, clock: list[float], seconds_per_read: float):
        super().__init__(data)
        self.clock = clock
        self.seconds_per_read = seconds_per_read
        self.asked: list[int] = []

    def read(self, size=-1):
        self.asked.append(size)
        self.clock[0] += self.seconds_per_read
        return super().read(size)


def _read_all(body: PacedBody, size: int) -> bytes:
    parts = []
    while chunk := body.read(size):
        parts.append(chunk)
    return b"".join(parts)


def test_a_client_that_keeps_up_gets_the_blocks_asked_for_after_a_few_reads():
    clock = [0.0]
    data = raw_bytes(40 * 1024 * 1024)
    source = Source(data, clock, seconds_per_read=0.001)
    body = PacedBody(source, clock=lambda: clock[0])
    assert _read_all(body, 4 * 1024 * 1024) == data
    assert source.asked[0] == SMALLEST_BLOCK
    assert source.asked[:5] == [SMALLEST_BLOCK * 2**i for i in range(5)]
    assert max(source.asked) == 4 * 1024 * 1024  # never more than the caller asked for
    assert source.asked.count(4 * 1024 * 1024) >= 8


def test_a_trickling_client_is_read_in_the_smallest_blocks():
    clock = [0.0]
    data = raw_bytes(1024 * 1024)
    source = Source(data, clock, seconds_per_read=SLOW_READ_SECONDS * 4)
    body = PacedBody(source, clock=lambda: clock[0])
    assert _read_all(body, 1024 * 1024) == data
    assert set(source.asked) == {SMALLEST_BLOCK}


def test_a_client_that_slows_down_gets_smaller_blocks_again():
    clock = [0.0]
    source = Source(raw_bytes(64 * 1024 * 1024), clock, seconds_per_read=0.001)
    body = PacedBody(source, clock=lambda: clock[0])
    for _ in range(6):
        body.read(LARGEST_BLOCK)
    grown = source.asked[-1]
    assert grown > SMALLEST_BLOCK
    source.seconds_per_read = SLOW_READ_SECONDS * 2
    for _ in range(3):
        body.read(LARGEST_BLOCK)
    # The first slow read was asked at the grown size; each one after it halves the block.
    assert source.asked[-3:] == [grown * 2, grown, grown // 2]


def test_read_without_a_size_reads_one_block():
    clock = [0.0]
    source = Source(b"x" * (SMALLEST_BLOCK * 3), clock, seconds_per_read=0.0)
    assert PacedBody(source, clock=lambda: clock[0]).read() == b"x" * SMALLEST_BLOCK
