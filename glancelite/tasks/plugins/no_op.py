"""no_op: does nothing (Glance's example plugin); shows the plugins run."""

from __future__ import annotations

import logging

from glancelite.tasks.plugins.base import ImportPlugin

LOG = logging.getLogger(__name__)


class Plugin(ImportPlugin):
    NAME = "no_op"

    def run(self, staged_size: int) -> None:
        LOG.debug("no_op import plugin ran for image %s", self.plan.image_id)
