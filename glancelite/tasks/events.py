"""What an import flow reports as it goes (Glance's image.* and task.* notifications).

The tasks layer only says what happened; the services layer's notifier decides whether
and how it is sent (services/notifier.py implements ``ImportEvents``). Reporting never
raises into a flow.
"""

from __future__ import annotations

from typing import Protocol

from glancelite import errors, model


def failure_reason(exc: Exception) -> str:
    """What an image.upload error notification says: our own message, never a driver's text."""
    if isinstance(exc, errors.GlanceliteError):
        return exc.public_message
    return f"internal error ({type(exc).__name__})"


class ImportEvents(Protocol):
    def image(self, event_type: str, image: model.Image, *, backend: str | None = None) -> None:
        """An image event (image.update, image.prepare, image.upload, image.activate)."""

    def upload_failed(self, image_id: str, reason: str) -> None:
        """Data could not be written into a store (image.upload at ERROR)."""

    def task(self, event_type: str, task: model.Task) -> None:
        """A task event (task.processing, task.success, task.failure)."""


class NoEvents:
    """Reports nothing: for an ImportEnv built without a notifier (unit tests)."""

    def image(self, event_type: str, image: model.Image, *, backend: str | None = None) -> None:
        return None

    def upload_failed(self, image_id: str, reason: str) -> None:
        return None

    def task(self, event_type: str, task: model.Task) -> None:
        return None
