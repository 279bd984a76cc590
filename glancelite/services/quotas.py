"""Keystone unified limits ([DEFAULT] use_keystone_limits), Glance's four image resources.

Limits live in keystone (registered limits for the image service, per-project
overrides); oslo.limit reads them with the credentials of ``[oslo_limit]`` and
compares them with the usage this module counts in the database:

  image_size_total       MiB stored by the project (size x live locations)
  image_stage_total      MiB held in staging (uploading/importing, or copying)
  image_count_total      images owned, not killed/deleted
  image_count_uploading  images saving/uploading/importing, or copying to stores

Glance checks them where consumption starts (create, upload, stage, import) and
answers 413; the storage limits are soft: usage is compared before the data
arrives, so one upload may go over and the next is refused. Each check is a
no-op when the option is off, and ``user_storage_quota`` is ignored when it is
on (config.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from oslo_limit import exception as limit_errors

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db import usage as usage_db
from glancelite.db.repositories import UsageRepository
from glancelite.settings import Settings
from glancelite.tasks.plan import Method

LOG = logging.getLogger(__name__)

SIZE_TOTAL = "image_size_total"
STAGE_TOTAL = "image_stage_total"
COUNT_TOTAL = "image_count_total"
COUNT_UPLOADING = "image_count_uploading"
RESOURCES = (SIZE_TOTAL, STAGE_TOTAL, COUNT_TOTAL, COUNT_UPLOADING)
MiB = 1024 * 1024

# usage callback -> an object with oslo.limit's Enforcer interface (enforce, calculate_usage).
EnforcerFactory = Callable[[Callable[[str | None, list[str]], dict[str, int]]], object]


class LimitExceeded(errors.TooLarge):
    """Over a keystone limit: Glance's LimitExceeded text around oslo.limit's explanation."""

    def __init__(self, detail: str):
        super().__init__(
            "The request returned a 413 Request Entity Too Large. This generally means that rate limiting "
            f"or a quota threshold was breached.\n\nThe response body:\n{detail}"
        )


def usage_in_limit_units(usage: usage_db.OwnerUsage, extra: Mapping[str, int] | None = None) -> dict[str, int]:
    """The four resources in keystone's units (MiB rounded down, counts), ``extra`` added before rounding.

    ``extra`` is what the image being acted on will add once its status changes
    (bytes for the size resources): Glance changes the status first and then
    counts, glancelite counts first, so the numbers (and messages) match.
    """
    extra = extra or {}
    return {
        SIZE_TOTAL: (usage.stored_bytes + extra.get(SIZE_TOTAL, 0)) // MiB,
        STAGE_TOTAL: (usage.staged_bytes + extra.get(STAGE_TOTAL, 0)) // MiB,
        COUNT_TOTAL: usage.images + extra.get(COUNT_TOTAL, 0),
        COUNT_UPLOADING: usage.uploading + extra.get(COUNT_UPLOADING, 0),
    }


class Quotas:
    def __init__(
        self, settings: Settings, usage: UsageRepository | None, enforcer_factory: EnforcerFactory | None = None
    ):
        self.enabled = settings.use_keystone_limits
        self.usage_repo = usage  # None only when off (nothing is counted then)
        self._factory = enforcer_factory
        if self.enabled and enforcer_factory is None:
            self._factory = oslo_limit_enforcer(settings.config_files)

    # -- the hooks (each a no-op without use_keystone_limits) -------------------------

    def check_create(self, context: RequestContext) -> None:
        """POST /v2/images: one more image."""
        self._enforce(context, {COUNT_TOTAL: 1})

    def check_size_total(self, context: RequestContext) -> None:
        """PUT /file and POST /import, before anything else: already over the stored total?"""
        self._enforce(context, {SIZE_TOTAL: 0})

    def check_stage_total(self, context: RequestContext) -> None:
        """PUT /stage, before anything else: already over the staging total?"""
        self._enforce(context, {STAGE_TOTAL: 0})

    def check_uploading(self, context: RequestContext) -> None:
        """PUT /file and PUT /stage, just before the image turns saving/uploading (so it counts)."""
        self._enforce(context, {COUNT_UPLOADING: 0}, extra={COUNT_UPLOADING: 1})

    def check_import(self, context: RequestContext, method: str, image: model.Image) -> None:
        """POST /import, once the request is valid: glance-direct adds the staged size to the stored total;
        the other methods use staging (the image's current size) and count as uploading."""
        size = image.size or 0
        if method == Method.GLANCE_DIRECT:
            self._enforce(context, {SIZE_TOTAL: size // MiB})
            return
        # COMPAT: Glance counts a copied image's size in staging usage and again as the delta.
        copying = size if image.status == model.ImageStatus.ACTIVE else 0
        self._enforce(context, {STAGE_TOTAL: size // MiB}, extra={STAGE_TOTAL: copying})
        self._enforce(context, {COUNT_UPLOADING: 0}, extra={COUNT_UPLOADING: 1})

    def usage(self, context: RequestContext) -> dict[str, dict[str, int]]:
        """GET /v2/info/usage: limit and usage of each resource for the caller's project ({} when off)."""
        if not self.enabled:
            return {}
        enforcer = self._factory(self._callback(None))
        found = enforcer.calculate_usage(context.project_id, list(RESOURCES))
        return {name: {"limit": u.limit, "usage": u.usage} for name, u in found.items()}

    # -- internals -------------------------------------------------------------------

    def _callback(self, extra: Mapping[str, int] | None):
        def callback(project_id: str | None, resource_names) -> dict[str, int]:
            counted = usage_in_limit_units(self.usage_repo.owner_usage(project_id), extra)
            return {name: counted[name] for name in resource_names}

        return callback

    def _enforce(self, context: RequestContext, deltas: dict[str, int], extra: Mapping[str, int] | None = None):
        if not self.enabled:
            return
        # Glance checks the caller's project (context.owner), not the image's owner.
        enforcer = self._factory(self._callback(extra))
        try:
            enforcer.enforce(context.project_id, deltas)
        except limit_errors.ProjectOverLimit as exc:
            LOG.info("project %s over a keystone limit: %s", context.project_id, exc)
            raise LimitExceeded(str(exc)) from None
        except limit_errors.SessionInitError as exc:
            # A server-side configuration problem: a 500 that gets noticed, as in Glance.
            LOG.error("[oslo_limit] cannot reach keystone's limits, check its settings: %s", exc)
            raise


# Limits off, no database: every check passes.
NO_LIMITS = Quotas(Settings(), usage=None)


def oslo_limit_enforcer(config_files: tuple[str, ...]) -> EnforcerFactory:
    """oslo.limit's Enforcer, one per check as Glance makes them (limits are read fresh each time).

    oslo.limit reads ``[oslo_limit]`` from the global cfg.CONF only, so the same
    files are loaded into it here, for oslo.limit alone; glancelite's own code never
    reads cfg.CONF.
    """
    from oslo_config import cfg
    from oslo_limit import limit

    cfg.CONF(args=[], project="glance", default_config_files=list(config_files), default_config_dirs=[])
    return lambda callback: limit.Enforcer(callback, cache=False)
