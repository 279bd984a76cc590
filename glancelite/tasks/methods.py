"""How each import method gets the image's bytes into staging (the "acquire data" step).

glance-direct: the client staged them already. web-download: fetched through
the URI filter into a work file in the tasks store, stopped at
image_size_cap. copy-image: read from the image's best readable location
into a work file (or, from a file on the same file system, a hard link to
it). A finished work file is linked into staging, so staging never holds
partial data.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType

from taskflow import task as tf_task

from glancelite import errors, uri_filter
from glancelite.store import base
from glancelite.tasks import progress as import_progress
from glancelite.tasks.plan import ImportPlan, Method
from glancelite.tasks.steps import COPY_CHUNK, ImportEnv

LOG = logging.getLogger(__name__)


class AcquireData(tf_task.Task):
    """Put the image's bytes in staging: already there (glance-direct), downloaded, or copied.

    Provides the staged size. Revert: the staged file and any work file are removed.
    """

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"acquire-{plan.image_id}", provides="staged_size")
        self.env, self.plan = env, plan

    def execute(self):
        return ACQUIRE[self.plan.method](self)

    def staged(self) -> int:
        size = self.env.staging.size(self.plan.image_id)
        if size is None:
            raise errors.Conflict(f"Image {self.plan.image_id} has no staged data")
        return size

    def downloaded(self) -> int:
        return self._through_work_file(self._download)

    def copied(self) -> int:
        return self._through_work_file(self._copy_from_store)

    def _through_work_file(self, fill: Callable[[str], None]) -> int:
        """``fill`` writes the task's work file; once complete it is linked into staging."""
        resumed = self.staged_by_an_earlier_run()
        if resumed is not None:
            return resumed
        work_file = self.env.work.download_path(self.plan.task_id)
        fill(work_file)
        return self.env.staging.adopt(self.plan.image_id, work_file)

    def staged_by_an_earlier_run(self) -> int | None:
        """The staged size when this step already ran to its end: a job resumed from the job board
        whose worker died after linking the complete file into staging (a link is all or nothing)
        and before taskflow saved the step. The image's import lock kept every other import out,
        and a queued or active image has no staged data of its own, so the data is this task's."""
        size = self.env.staging.size(self.plan.image_id)
        if size is not None:
            LOG.info("image %s: staging already holds task %s's data; step done", self.plan.image_id, self.plan.task_id)
        return size

    def _download(self, work_file: str) -> None:
        download(self.env, self.plan, self.plan.uri, work_file)

    def _copy_from_store(self, work_file: str) -> None:
        image = self.env.images.get_image(self.plan.image_id)
        progress = import_progress.acquiring(self.env, self.plan, "Copied", image.size)
        locations = self.env.stores.sort_locations(loc for loc in image.locations if loc.status == "active")
        if not locations:
            raise errors.Conflict(f"Image {image.id} has no data to copy")
        last_error: Exception | None = None
        for location in locations:
            try:
                stream = self.env.stores.read(location, context=self.plan.caller)
            except (base.StoreNotFound, base.StoreUnavailable) as exc:
                last_error = exc
                continue
            with stream:
                if self.env.work.link_whole_file(stream, work_file):
                    progress.add(stream.length)
                else:
                    self._write_work_file(stream, work_file, progress)
            return
        raise last_error or errors.Conflict(f"No readable copy of image {image.id}")

    @staticmethod
    def _write_work_file(stream: base.DataStream, work_file: str, progress: import_progress.Meter) -> None:
        with open(work_file, "xb") as out:
            for chunk in stream:
                out.write(chunk)
                progress.add(len(chunk))

    def revert(self, *args, **kwargs):
        self.env.staging.delete(self.plan.image_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.env.work.download_path(self.plan.task_id))


# How each import method puts the image's bytes in staging: the one table, keyed by Method.
# glance-download needs two steps of its own (remote metadata, then the download:
# glance_download.ImportMetadata and DownloadRemote), which the flow builder adds instead.
ACQUIRE: Mapping[Method, Callable[[AcquireData], int]] = MappingProxyType(
    {
        Method.GLANCE_DIRECT: AcquireData.staged,
        Method.WEB_DOWNLOAD: AcquireData.downloaded,
        Method.COPY_IMAGE: AcquireData.copied,
    }
)


def download(
    env: ImportEnv, plan: ImportPlan, uri: str, work_file: str, *, headers: dict[str, str] | None = None
) -> int:
    """Fetch ``uri`` (import filtering, every redirect re-checked) into ``work_file``; bytes written.

    Stops at image_size_cap, and fails when the body is shorter or longer than its Content-Length,
    or when the connection breaks off mid-body.
    """
    cap = env.settings.image_size_cap
    resp = uri_filter.open_checked(uri, env.settings.import_filter, headers=headers)
    try:
        declared = resp.getheader("Content-Length")
        declared_size = int(declared) if declared and declared.isdigit() else None
        progress = import_progress.acquiring(env, plan, "Downloaded", declared_size)
        if declared_size is not None and declared_size > cap:
            raise errors.TooLarge(f"The image at {uri} is {declared_size} bytes; the image size cap is {cap} bytes.")
        if declared_size is not None and resp.will_close:
            # http.client stops reading at Content-Length and drops the rest. The connection
            # ends with this response (the request asked it to close), so read to its end:
            # a source sending more than it announced fails instead of being cut silently.
            resp.length = None
        written = 0
        with open(work_file, "xb") as out:
            while True:
                try:
                    chunk = resp.read(COPY_CHUNK)
                except (http.client.HTTPException, OSError) as exc:
                    raise errors.Invalid(
                        f"{plan.method} of {uri} was cut after {written} bytes: {type(exc).__name__}"
                    ) from exc
                if not chunk:
                    break
                written += len(chunk)
                if written > cap:
                    raise errors.TooLarge(
                        f"The image at {uri} exceeds the image size cap of {cap} bytes; download stopped."
                    )
                out.write(chunk)
                progress.add(len(chunk))
        if declared_size is not None and written != declared_size:
            raise errors.Invalid(f"{plan.method} of {uri} got {written} bytes, the server announced {declared_size}.")
        return written
    finally:
        resp.close()
