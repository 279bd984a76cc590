"""One log line per transfer of image data into, out of or away from a store, with its facts as fields.

StoreSet calls ``transfer`` when a write ends, when a read's stream closes and when a delete
returns. The line reads well in a text log ("upload of image X into store fast: 1048576 bytes in
0.012 s") and carries the same facts as the record's ``extra`` dict, which oslo.log's JSON
formatter ([DEFAULT] use_json) writes as the line's ``"extra"`` object::

    "extra": {"operation": "upload", "image_id": "...", "store": "fast", "bytes": 1048576,
              "duration_seconds": 0.012, "outcome": "ok"}

next to ``"context"`` (request id, user, project: glancelite.context binds the caller to the
thread). Operations: upload, download, stage (writes into the staging store), import (an
import's copy into a store, and its read of the staged data; set by tasks/progress.py through
``OPERATION``), read (any other read, such as the format check of staged data) and delete.
"""

from __future__ import annotations

import contextvars
import logging

LOG = logging.getLogger("glancelite.data")

# The operation a transfer belongs to when its caller says so (an import's store copy); otherwise
# StoreSet names it from the direction and the store.
OPERATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("glancelite_data_operation", default=None)


def operation(default: str) -> str:
    return OPERATION.get() or default


def transfer(
    operation: str,
    *,
    image_id: str | None,
    store: str,
    nbytes: int | None,
    seconds: float,
    error: BaseException | None = None,
) -> None:
    outcome = "ok" if error is None else "failed"
    fields = {
        "operation": operation,
        "image_id": image_id,
        "store": store,
        "bytes": nbytes,
        "duration_seconds": round(seconds, 6),
        "outcome": outcome,
    }
    direction = {"upload": "into", "stage": "into", "import": "with", "delete": "from"}.get(operation, "from")
    amount = f"{nbytes} bytes" if nbytes is not None else "data"
    text = f"{operation} of image {image_id or '-'} {direction} store {store}: {amount} in {seconds:.3f} s"
    if error is None:
        LOG.info("%s", text, extra={"extra": fields})
    else:
        fields["error"] = type(error).__name__
        LOG.warning("%s, failed (%s)", text, type(error).__name__, extra={"extra": fields})
