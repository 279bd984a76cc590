"""The one interface of an import plugin."""

from __future__ import annotations

import contextlib
import os

from taskflow import task as tf_task

from glancelite import errors
from glancelite.tasks.plan import ImportPlan
from glancelite.tasks.steps import ImportEnv


class PluginError(errors.Invalid):
    """A plugin refused or failed to process the staged data: the import fails and is reverted."""


class ImportPlugin(tf_task.Task):
    """One step of an import between "verify staged data" and "import into the stores".

    Subclasses set ``NAME`` (the name in image_import_plugins) and implement
    ``run()``. A plugin that rewrites the data sets ``CHANGES_DATA``: its
    ``run()`` returns the new staged size (taskflow hands it on as
    ``staged_size``), and it writes its output to ``scratch`` (in the tasks
    store) before ``replace_staged`` swaps it in. ``undo()`` restores what
    ``run()`` changed on the image; the scratch file is always removed on
    revert. Staged data, status and store bookkeeping are reverted by the
    flow's own steps.
    """

    NAME = ""
    CHANGES_DATA = False

    def __init__(self, env: ImportEnv, plan: ImportPlan):
        super().__init__(name=f"{self.NAME}-{plan.image_id}", provides="staged_size" if self.CHANGES_DATA else None)
        self.env, self.plan = env, plan

    @property
    def staged(self) -> str:
        return self.env.staging.path(self.plan.image_id)

    @property
    def scratch(self) -> str:
        return self.env.work.scratch_path(self.plan.task_id)

    def execute(self, staged_size):
        try:
            result = self.run(staged_size)
        finally:
            self._remove_scratch()
        return result if self.CHANGES_DATA else None

    def run(self, staged_size: int) -> int | None:
        raise NotImplementedError

    def undo(self) -> None:
        """Restore the image attributes ``run`` changed (nothing by default)."""

    def revert(self, *args, **kwargs):
        self._remove_scratch()
        with contextlib.suppress(errors.NotFound):
            self.undo()

    def replace_staged(self, **values) -> int:
        """The scratch file becomes the staged data; the image gets its size and ``values``."""
        size = self.env.staging.replace(self.plan.image_id, self.scratch)
        self.env.images.update_image(self.plan.image_id, values={"size": size, **values})
        return size

    def _remove_scratch(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.scratch)
