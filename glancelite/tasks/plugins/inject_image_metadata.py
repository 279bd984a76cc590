"""inject_image_metadata: set ``[inject_metadata_properties] inject`` on the imported image.

Skipped when the importing user has one of ``ignore_user_roles`` (default
admin). Names starting with ``os_glance`` are dropped. As in Glance, a
later failure of the import does not take the injected properties away.
"""

from __future__ import annotations

import logging

from glancelite.tasks.plugins.base import ImportPlugin

LOG = logging.getLogger(__name__)


class Plugin(ImportPlugin):
    NAME = "inject_image_metadata"

    def run(self, staged_size: int) -> None:
        settings = self.env.settings
        if any(role in settings.inject_ignore_user_roles for role in self.plan.roles):
            return
        properties = {}
        for key, value in settings.inject_properties.items():
            if key.startswith("os_glance"):
                LOG.warning("image %s: not injecting reserved property %s", self.plan.image_id, key)
                continue
            properties[key] = value
        if properties:
            self.env.images.update_image(self.plan.image_id, properties_set=properties)
