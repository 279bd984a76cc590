"""Glance 33's glance-api option groups and what glancelite does with each: the one table.

The groups are those of Glance's own sample (its ``etc/oslo-config-generator/glance-api.conf``
namespaces and ``glance-image-import.conf``). ``config`` reports a not-applicable or not-yet
group found in the files in one line; the README's table is printed from this one
(``python -m glancelite.option_groups``), and a unit test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import enum


class Status(enum.Enum):
    TAKEN = "taken"
    NOT_APPLICABLE = "not applicable"
    NOT_YET = "not yet"


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    status: Status
    # TAKEN: who reads the group; otherwise why glancelite does not.
    detail: str

    @property
    def plain_detail(self) -> str:
        """``detail`` for a log line: without the README's literal markup."""
        return self.detail.replace("``", "")


_GLANCELITE = "glancelite"
_STORE_GROUP = "glancelite, as the group of a store of that id in ``enabled_backends`` (any id names one)"
_CASTELLAN = (
    "castellan's key manager, with which Glance verifies image signatures (``img_signature_*``) and "
    "deletes an image's ``cinder_encryption_key_id`` key; glancelite does neither yet"
)

GROUPS: tuple[Group, ...] = (
    Group(
        "DEFAULT",
        Status.TAKEN,
        "glancelite; oslo.log (logging), oslo.messaging (``transport_url``, ``control_exchange``)",
    ),
    Group("barbican", Status.NOT_YET, _CASTELLAN),
    Group("barbican_service_user", Status.NOT_YET, _CASTELLAN),
    Group("cinder", Status.NOT_APPLICABLE, "glancelite has no cinder store (Block Storage volumes as image storage)"),
    Group("cors", Status.TAKEN, "oslo.middleware's CORS, with Glance's defaults"),
    Group(
        "database",
        Status.TAKEN,
        "glancelite, with oslo.db's option definitions; the options that do not apply are reported by name "
        '(README, "Database options")',
    ),
    Group("file", Status.TAKEN, _STORE_GROUP),
    Group("glance_download_properties", Status.TAKEN, _GLANCELITE),
    Group("glance_store", Status.TAKEN, _GLANCELITE),
    Group("healthcheck", Status.TAKEN, "glancelite (``disable_by_file_path``) for oslo.middleware's healthcheck"),
    Group("http", Status.TAKEN, _STORE_GROUP),
    Group("image_conversion", Status.TAKEN, _GLANCELITE),
    Group("image_format", Status.TAKEN, _GLANCELITE),
    Group("image_import_opts", Status.TAKEN, _GLANCELITE),
    Group("import_filtering_opts", Status.TAKEN, _GLANCELITE),
    Group("inject_metadata_properties", Status.TAKEN, _GLANCELITE),
    Group("key_manager", Status.NOT_YET, _CASTELLAN),
    Group(
        "keystone_authtoken",
        Status.TAKEN,
        "keystonemiddleware's auth_token; keystoneauth (the ``auth_type`` plugin's options)",
    ),
    Group(
        "metrics", Status.TAKEN, "glancelite's own group, not Glance's: the Prometheus exporter (README, \"Metrics\")"
    ),
    Group(
        "os_brick",
        Status.NOT_APPLICABLE,
        "os-brick attaches volumes for Glance's cinder store, which glancelite does not have",
    ),
    Group("os_glance_staging_store", Status.TAKEN, "glancelite (the reserved staging store)"),
    Group("os_glance_tasks_store", Status.TAKEN, "glancelite (the reserved tasks store)"),
    Group(
        "oslo_concurrency",
        Status.NOT_APPLICABLE,
        "glancelite takes no oslo.concurrency file locks, so ``lock_path`` has no use (Glance locks its "
        "cache clean and prune; glancelite's cache claims an image with an exclusive create)",
    ),
    Group("oslo_limit", Status.TAKEN, "oslo.limit; keystoneauth (the ``auth_type`` plugin's options)"),
    Group("oslo_messaging_kafka", Status.TAKEN, "oslo.messaging (when the files configure notifications)"),
    Group("oslo_messaging_notifications", Status.TAKEN, "oslo.messaging (when the files configure notifications)"),
    Group("oslo_messaging_rabbit", Status.TAKEN, "oslo.messaging (when the files configure notifications)"),
    Group("oslo_middleware", Status.TAKEN, "oslo.middleware's HTTPProxyToWSGI"),
    Group("oslo_policy", Status.TAKEN, "oslo.policy; glancelite (``enforce_scope``)"),
    Group(
        "oslo_reports",
        Status.NOT_APPLICABLE,
        "Guru Meditation reports: Glance lists oslo.reports' options, but its glance-api sets up no report either",
    ),
    Group("paste_deploy", Status.TAKEN, _GLANCELITE),
    Group(
        "profiler",
        Status.NOT_APPLICABLE,
        "osprofiler traces Glance's paste pipeline and DB API; glancelite has neither and emits no osprofiler traces",
    ),
    Group("rbd", Status.TAKEN, _STORE_GROUP),
    Group("s3", Status.TAKEN, _STORE_GROUP),
    Group("swift", Status.TAKEN, _STORE_GROUP),
    Group("task", Status.TAKEN, _GLANCELITE),
    Group("taskflow_executor", Status.TAKEN, _GLANCELITE),
    Group(
        "taskflow_jobboard",
        Status.TAKEN,
        "glancelite's own group, not Glance's: import jobs on a taskflow job board (README, \"Running several nodes\")",
    ),
    Group("vault", Status.NOT_YET, _CASTELLAN),
    Group("vmware", Status.NOT_APPLICABLE, "glancelite has no VMware datastore store"),
    Group(
        "wsgi",
        Status.NOT_APPLICABLE,
        "``task_pool_threads`` sizes Glance's per-worker task pool (glancelite runs imports in "
        "``[taskflow_executor] max_workers`` threads); ``python_interpreter`` stands in for "
        "``sys.executable`` under uWSGI, and glancelite runs under gunicorn, where that is its Python",
    ),
)

BY_NAME: dict[str, Group] = {g.name: g for g in GROUPS}


def rst_table() -> str:
    """The README's table: an RST simple table, one row per group (the last column may run on)."""
    rows = [(f"``[{g.name}]``", g.status.value, g.detail) for g in GROUPS]
    widths = [max(len(r[i]) for r in [*rows, ("Group", "Status", "")]) for i in (0, 1)]
    rule = f"{'=' * widths[0]} {'=' * widths[1]} {'=' * 40}"
    header = f"{'Group':<{widths[0]}} {'Status':<{widths[1]}} Read by, or why not"
    body = [f"{name:<{widths[0]}} {status:<{widths[1]}} {detail}" for name, status, detail in rows]
    return "\n".join([rule, header, rule, *body, rule]) + "\n"


if __name__ == "__main__":
    print(rst_table(), end="")
