"""Glance's notifications (image.*, image.member.*, task.*) sent through oslo.messaging.

Event types, payloads and priorities are Glance's (glance/notifier.py; the admin guide's
"Notifications" page), so Ceilometer and billing consumers read them unchanged. Built once
by the composition root and handed to the services that emit.

Sending never fails nor slows a request: events go into a bounded queue that one daemon
thread per worker drains into oslo.messaging. A broker that is down (the rabbit driver
retries as ``[oslo_messaging_notifications] retry`` says, for ever by default) holds up that
thread only; when the queue is full new events are dropped and the drop is logged. Errors
are logged, never raised (Glance's behaviour).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from glancelite import model
from glancelite.context import RequestContext
from glancelite.services.image_rules import HIDDEN_PROPERTIES
from glancelite.settings import NotificationSettings
from glancelite.store import base, streams
from glancelite.tasks.plan import FAILED_PROPERTY, IMPORTING_PROPERTY

LOG = logging.getLogger(__name__)

INFO = "INFO"
ERROR = "ERROR"
QUEUE_SIZE = 1000  # events a worker holds while the broker is slow or away
CLOSE_WAIT = 5.0  # seconds a stopping worker gives the queue to drain


def isotime(when: datetime | None) -> str | None:
    """Glance's timeutils.isotime: seconds, UTC, a trailing Z."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_payload(image: model.Image) -> dict[str, Any]:
    """Glance's format_image_notification: never the locations (they may hold credentials)."""
    return {
        "id": image.id,
        "name": image.name,
        "status": str(image.status),
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at or image.created_at),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility == model.Visibility.PUBLIC,
        "visibility": str(image.visibility),
        "properties": {k: v for k, v in image.properties.items() if k not in HIDDEN_PROPERTIES},
        "tags": sorted(image.tags),
        "deleted": False,
        "deleted_at": None,
    }


def import_properties(image: model.Image) -> dict[str, list[str]]:
    """Glance adds the import bookkeeping, as lists, to image.prepare and image.upload."""

    def split(value: str | None) -> list[str]:
        return [s for s in (value or "").split(",") if s]

    return {
        IMPORTING_PROPERTY: split(image.properties.get(IMPORTING_PROPERTY)),
        FAILED_PROPERTY: split(image.properties.get(FAILED_PROPERTY)),
    }


def member_payload(member: model.Member) -> dict[str, Any]:
    return {
        "image_id": member.image_id,
        "member_id": member.member_id,
        "status": str(member.status),
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at or member.created_at),
        "deleted": False,
        "deleted_at": None,
    }


def task_payload(task: model.Task) -> dict[str, Any]:
    """Glance leaves out the input (it may hold credentials), the result and the message."""
    return {
        "id": task.id,
        "type": task.type,
        "status": str(task.status),
        "result": None,
        "owner": task.owner,
        "message": None,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at or task.created_at),
        "deleted": False,
        "deleted_at": None,
    }


def is_disabled(event_type: str, disabled: Iterable[str]) -> bool:
    """``[DEFAULT] disabled_notifications``: a type, or a group given as a prefix.

    ``image`` and ``image.*`` both cover every image.* type; ``image.member`` covers
    image.member.* (Glance's documentation lists it as a group; its code compares only
    the first word, so there ``image.member`` disables nothing: the documentation is followed).
    """
    for entry in disabled:
        prefix = entry[:-2] if entry.endswith(".*") else entry
        if event_type == prefix or event_type.startswith(prefix + "."):
            return True
    return False


class Notifier:
    """The events the services report. With ``sender`` None (no driver, or only ``noop``) every
    method returns at once and builds no payload."""

    def __init__(self, sender: QueuedSender | None, *, disabled: tuple[str, ...] = ()):
        self._sender = sender
        self._disabled = disabled

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    def wants(self, event_type: str) -> bool:
        return self._sender is not None and not is_disabled(event_type, self._disabled)

    def _send(self, event_type: str, payload: Any, priority: str = INFO) -> None:
        if self._sender is not None:
            self._sender.put(priority, event_type, payload)

    # -- images ----------------------------------------------------------------------

    def image(self, event_type: str, image: model.Image, *, backend: str | None = None) -> None:
        """image.create/update/prepare/upload/activate; prepare and upload carry the import lists."""
        if not self.wants(event_type):
            return
        payload = image_payload(image)
        if event_type in ("image.prepare", "image.upload"):
            payload.update(import_properties(image))
        if backend and event_type == "image.prepare":
            payload["backend"] = backend
        self._send(event_type, payload)

    def image_deleted(self, image: model.Image) -> None:
        if not self.wants("image.delete"):
            return
        payload = image_payload(image)
        payload.update(status=str(model.ImageStatus.DELETED), deleted=True, deleted_at=_now())
        self._send("image.delete", payload)

    def upload_failed(self, image_id: str, reason: str) -> None:
        """Glance sends image.upload at ERROR with a sentence as the payload when data cannot be saved."""
        if self.wants("image.upload"):
            self._send("image.upload", f"Failed to upload image data for image {image_id}: {reason}", ERROR)

    def counting_send(self, stream: base.DataStream, image: model.Image, context: RequestContext) -> base.DataStream:
        """The download stream, reporting image.send (bytes_sent, who received) once it is closed.

        ERROR instead of INFO when fewer bytes went out than expected (Glance's rule).
        A stream served by sendfile is counted from its file position at close.
        """
        if not self.wants("image.send"):
            return stream
        expected = stream.length if stream.length is not None else image.size

        def report(sent: int) -> None:  # called once (reporting_sent)
            payload = {
                "bytes_sent": sent,
                "image_id": image.id,
                "owner_id": image.owner,
                "receiver_tenant_id": context.project_id,
                "receiver_user_id": context.user_id,
            }
            self._send("image.send", payload, INFO if sent == expected else ERROR)

        return streams.reporting_sent(stream, report)

    # -- members and tasks --------------------------------------------------------------

    def member(self, event_type: str, member: model.Member, *, deleted: bool = False) -> None:
        if not self.wants(event_type):
            return
        payload = member_payload(member)
        if deleted:
            payload.update(deleted=True, deleted_at=_now())
        self._send(event_type, payload)

    def task(self, event_type: str, task: model.Task) -> None:
        if self.wants(event_type):
            self._send(event_type, task_payload(task))

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()


class QueuedSender:
    """One daemon thread per worker sends what the request threads queue, so they never wait on the broker."""

    def __init__(self, oslo_notifier, transport, *, maxsize: int = QUEUE_SIZE):
        self._notifier = oslo_notifier
        self._transport = transport
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dropped = 0
        self._closed = False

    def put(self, priority: str, event_type: str, payload: Any) -> None:
        if self._closed:
            return
        self._start()
        try:
            self._queue.put_nowait((priority, event_type, payload))
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                LOG.warning(
                    "notification %s dropped: %d queued events are waiting for the message broker (%d dropped so far)",
                    event_type,
                    self._queue.maxsize,
                    self._dropped,
                )

    def _start(self) -> None:
        # Started on first use, in the process that sends (a gunicorn worker, after the fork).
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="glancelite-notifier", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            priority, event_type, payload = item
            try:
                # oslo.messaging logs a driver's failure itself and does not raise it.
                if priority == ERROR:
                    self._notifier.error({}, event_type, payload)
                else:
                    self._notifier.info({}, event_type, payload)
            except Exception:
                LOG.exception("notification %s could not be sent", event_type)

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Send what is queued (for up to ``wait`` seconds), then release the transport."""
        self._closed = True
        if self._thread is not None:
            deadline = time.monotonic() + wait
            try:
                self._queue.put(None, timeout=wait)
            except queue.Full:
                LOG.warning("stopping with %d notifications unsent", self._queue.qsize())
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                LOG.warning("stopping while the message broker holds up notifications; unsent ones are lost")
                return  # the sender is stuck in a driver call: cleaning the transport under it would race
        try:
            self._transport.cleanup()
        except Exception:
            LOG.exception("closing the notification transport failed")


def build(settings: NotificationSettings, conf) -> Notifier:
    """The notifier ``settings`` describe; ``conf`` is the oslo configuration oslo.messaging reads
    its transport and driver options from (config.load registered them).

    No driver, or only ``noop``: a notifier that sends nothing and costs nothing. A transport
    that cannot be built (a bad transport_url) is logged and notifications are off.
    """
    if not settings.enabled:
        return Notifier(None)
    oslo_messaging = load_oslo_messaging()
    try:
        transport = oslo_messaging.get_notification_transport(conf)
        oslo_notifier = oslo_messaging.Notifier(transport, publisher_id=settings.publisher_id)
    except Exception as exc:
        LOG.error("notifications are off: the notification transport cannot be set up: %s", exc)
        return Notifier(None)
    return Notifier(QueuedSender(oslo_notifier, transport), disabled=settings.disabled)


def load_oslo_messaging():
    """Import oslo.messaging: only when notifications are configured (it takes a third of a second),
    or for the sample configuration. Its eventlet warnings are silenced in glancelite/__init__.py."""
    import oslo_messaging

    return oslo_messaging
