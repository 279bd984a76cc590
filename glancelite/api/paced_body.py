"""An upload's body read in blocks sized to the pace of its client.

The ingest path asks the server's wsgi.input for large blocks (store/streams.py,
SOURCE_READ_BYTES): a fast upload needs them. gunicorn's body reader does not return
before it holds the whole block, so a client trickling a few KiB/s would keep up to a
block (256 KiB) buffered in its worker for minutes, for every slow transfer in flight.
PacedBody asks for small blocks first and doubles them while each read is answered at
once, halving them again when the client makes a read wait: a fast upload reaches the
large blocks after a handful of reads, a slow one never holds more than SMALLEST_BLOCK.
Short reads are allowed by the reader protocol (only b"" means the end).
"""

from __future__ import annotations

import time

SMALLEST_BLOCK = 64 * 1024
LARGEST_BLOCK = 16 * 1024 * 1024
# A full block read within this many seconds: the client keeps up, the next block may be larger
# (generous, so a loaded machine's scheduling delays do not hold a fast upload to small blocks).
FAST_READ_SECONDS = 0.25
# A read that waited longer than this: the client is the bottleneck.
SLOW_READ_SECONDS = 1.0


class PacedBody:
    def __init__(self, stream, clock=time.monotonic):
        self._stream = stream
        self._clock = clock
        self._block = SMALLEST_BLOCK

    def read(self, size: int = -1) -> bytes:
        want = self._block if size is None or size < 0 else min(size, self._block)
        started = self._clock()
        data = self._stream.read(want)
        elapsed = self._clock() - started
        if len(data) == want and elapsed < FAST_READ_SECONDS:
            self._block = min(self._block * 2, LARGEST_BLOCK)
        elif elapsed > SLOW_READ_SECONDS:
            self._block = max(self._block // 2, SMALLEST_BLOCK)
        return data
