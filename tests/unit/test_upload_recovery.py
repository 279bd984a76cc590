"""Start-up recovery of uploads whose process died, and that no recovery step stops a worker's start."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import types

from glancelite import app, errors
from glancelite.services.image_data import UPLOAD_OWNER, ImageDataService


def _dead_owner() -> dict:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {"host": socket.gethostname(), "pid": child.pid, "start": None}


class _Images:
    def __init__(self, images):
        self.images, self.queued = images, []

    def images_with_property(self, name, *, status):
        assert (name, status) == (UPLOAD_OWNER, "saving")
        return self.images

    def back_to_queued(self, image_id, statuses, *, properties_removed):
        self.queued.append(image_id)


def _image(image_id: str, properties: dict) -> types.SimpleNamespace:
    return types.SimpleNamespace(id=image_id, properties=properties)


def test_an_upload_that_ended_between_the_two_reads_is_left_alone():
    """On PostgreSQL the image and its properties are read by two statements, each seeing what was
    committed when it ran: an upload that ended in between shows up saving without its owner. That
    KeyError failed a worker's boot, and gunicorn then stopped the whole service."""
    images = _Images(
        [
            _image("ended-meanwhile", {}),
            _image("garbled", {UPLOAD_OWNER: "not json"}),
            _image("not-an-owner", {UPLOAD_OWNER: json.dumps([1, 2])}),
            _image("dead", {UPLOAD_OWNER: json.dumps(_dead_owner())}),
        ]
    )
    service = ImageDataService.__new__(ImageDataService)
    service.images = images
    assert service.recover_dead_uploads() == ["dead"]
    assert images.queued == ["dead"]


def test_no_recovery_step_stops_a_start(caplog):
    ran = []

    def broken():
        ran.append("imports")
        raise KeyError("a bug in a recovery step")

    def unavailable():
        ran.append("uploads")
        raise errors.Unavailable("database away")

    stores = types.SimpleNamespace(remove_orphaned_partials=lambda: ran.append("partials"))
    app._recover_at_start(
        types.SimpleNamespace(recover=broken), types.SimpleNamespace(recover_dead_uploads=unavailable), stores
    )
    assert ran == ["imports", "uploads", "partials"]
    assert "failed; the worker starts anyway" in caplog.text
    assert "the database is unavailable" in caplog.text
