"""Admission of image data transfers: a worker serves at most ``max_transfers_per_worker`` at once.

An upload, stage or download holds a server thread for as long as its client sends or
reads, at whatever pace the client likes. cmd/api.py gives each gunicorn worker that many
threads plus METADATA_THREADS; this middleware keeps transfers to their share, so the
remaining threads always answer metadata requests (and refusals) at once. A transfer past
the limit gets 503 with Retry-After immediately: it never queues behind the others.

A slot is taken once the route is known and given back when the response is over: for a
download that is when the server closes the response body (after sendfile or the last
chunk), not when the handler returns.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from glancelite import errors

# Server threads kept apart from transfers in each worker, for every other request.
METADATA_THREADS = 8
# What a refused client is told to wait before trying again, in seconds.
RETRY_AFTER_SECONDS = 5
# The (method, route template) pairs that move image data.
TRANSFER_ROUTES = frozenset(
    {
        ("PUT", "/v2/images/{image_id}/file"),
        ("GET", "/v2/images/{image_id}/file"),
        ("PUT", "/v2/images/{image_id}/stage"),
    }
)
# Refusing an upload leaves its body unread. What already sits in the socket's receive
# queue is dropped (without waiting for more) and the read side is shut: the server then
# neither waits for the rest of the body (in a thread, or lingering on close in gunicorn's
# main loop) nor resets the connection under a client that stopped sending to read our answer.
_DISCARD_LIMIT = 1 << 20


def server_threads(max_transfers: int) -> int:
    """gunicorn threads per worker for ``max_transfers`` transfers."""
    return max_transfers + METADATA_THREADS


class TransferLimitReached(errors.Unavailable):
    default_message = "The server is busy with other image transfers; try again later."


class _Slot:
    """One admitted transfer; released once, however many times the server closes its body."""

    def __init__(self, slots: threading.BoundedSemaphore):
        self._slots = slots
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._slots.release()


class _ReleasingFile:
    """A file body that gives the slot back when closed; keeps fileno() so gunicorn still uses sendfile."""

    def __init__(self, fh, slot: _Slot):
        self._fh = fh
        self._slot = slot

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)

    def fileno(self) -> int:
        return self._fh.fileno()

    # socket.sendfile (gunicorn's path) leaves the position after the last byte sent through
    # seek, which is how the store's counting file (store/streams.py) learns how much went out:
    # without them a sendfile download counted 0 bytes read and logged 0 bytes.
    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            self._slot.release()


class _ReleasingIterable:
    """An iterable body (a remote store's chunks) that gives the slot back when closed."""

    def __init__(self, body, slot: _Slot):
        self._body = body
        self._slot = slot

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._slot.release()


class TransferAdmission:
    """Falcon middleware: counts the transfers in flight in this worker and refuses those past ``limit``."""

    def __init__(self, limit: int, client_socket_timeout: int = 0):
        self.limit = limit
        self.client_socket_timeout = client_socket_timeout
        self._slots = threading.BoundedSemaphore(limit)

    def process_resource(self, req, resp, resource, params):
        if (req.method, req.uri_template) not in TRANSFER_ROUTES:
            return
        if not self._slots.acquire(blocking=False):
            if req.method == "PUT":
                _stop_reading(req.env.get("gunicorn.socket"))
            raise TransferLimitReached(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        req.context.transfer_slot = _Slot(self._slots)
        if req.method == "GET" and self.client_socket_timeout:
            # A reader that stops reading is cut after client_socket_timeout seconds without
            # progress (sendfile and writes wait that long at most), so it cannot keep its slot
            # for ever. Uploads set the same limit around their body reads. gunicorn makes the
            # socket blocking again before the connection's next request.
            sock = req.env.get("gunicorn.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(self.client_socket_timeout)

    def process_response(self, req, resp, resource, req_succeeded):
        slot = getattr(req.context, "transfer_slot", None)
        if slot is None:
            return
        req.context.transfer_slot = None
        body = resp.stream
        if body is None or resp.text is not None or resp.data is not None:
            # No stream goes out (falcon sends text or data before a stream): nothing will close it.
            slot.release()
        elif hasattr(body, "read"):
            resp.stream = _ReleasingFile(body, slot)
        else:
            resp.stream = _ReleasingIterable(body, slot)


def _stop_reading(sock) -> None:
    """Drop the request body queued on ``sock`` and shut its read side; the response still goes out."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        dropped = 0
        try:
            while dropped < _DISCARD_LIMIT:
                data = sock.recv(65536, socket.MSG_DONTWAIT)
                if not data:
                    break
                dropped += len(data)
        except (BlockingIOError, InterruptedError):
            pass
        sock.shutdown(socket.SHUT_RD)
