"""Every oslo.config option glancelite reads, under Glance's own names, except the store drivers'.

Declarations only: config.py is the one place that registers and reads them. The
options of each store type are declared by its driver (``OPTIONS``, found through
store/registry.py); the common options of every store group are here.
``list_opts()`` feeds oslo-config-generator (etc/glance-api.conf.sample).
"""

from __future__ import annotations

import copy

from oslo_config import cfg
from oslo_db import options as oslo_db_options
from oslo_middleware import cors as cors_middleware
from oslo_middleware import http_proxy_to_wsgi


class GlanceList(cfg.types.List):
    """A list option as Glance declares it (bounds=True, written ``[a, b]``), also read without brackets."""

    def __call__(self, value):
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("[") and value.endswith("]"):
                value = value[1:-1]
        return super().__call__(value)


def glance_list_opt(name: str, *, item_type=None, **kwargs) -> cfg.Opt:
    return cfg.Opt(name, type=GlanceList(item_type=item_type), **kwargs)


DEFAULT_OPTS = [
    cfg.HostAddressOpt("bind_host", default="0.0.0.0", help="Address the API server binds to."),
    cfg.PortOpt("bind_port", default=9292, help="Port the API server binds to."),
    cfg.IntOpt("workers", min=0, help="Number of API worker processes; unset or 0 means the CPU count."),
    cfg.IntOpt(
        "client_socket_timeout",
        default=900,
        min=0,
        help="Seconds an upload or stage may go without a byte from the client before it fails "
        "(the image goes back to queued); 0 waits for ever.",
    ),
    cfg.IntOpt(
        "max_transfers_per_worker",
        default=256,
        min=1,
        help="Image data transfers (PUT /v2/images/{id}/file, PUT /v2/images/{id}/stage, GET "
        "/v2/images/{id}/file) one API worker process serves at once. Each holds a server thread for "
        "as long as its client sends or reads, so a worker runs this many threads plus a few kept for "
        "metadata requests; past it a new transfer is refused at once with 503 and Retry-After while "
        "metadata requests are still served. glancelite option (Glance has no such limit).",
    ),
    cfg.BoolOpt(
        "allow_anonymous_access",
        default=False,
        help="Under keystone, serve a request without a valid token as an anonymous, read-only caller "
        "(no project, no roles: the policy decides what it may read) instead of answering 401.",
    ),
    cfg.DictOpt(
        "enabled_backends",
        help="Store identifiers and their types, 'id:type,...'. When set, glancelite runs multi-store "
        "and adds the reserved stores os_glance_staging_store and os_glance_tasks_store.",
    ),
    glance_list_opt(
        "enabled_import_methods",
        item_type=cfg.types.String(choices=["glance-direct", "web-download", "copy-image", "glance-download"]),
        default=["glance-direct", "web-download", "copy-image"],
        help="Interoperable import methods offered to clients.",
    ),
    cfg.StrOpt(
        "node_staging_uri",
        default="file:///tmp/staging/",
        deprecated_for_removal=True,
        deprecated_reason="Use the reserved store os_glance_staging_store with enabled_backends.",
        help="file:// URI of the staging area when enabled_backends is not set.",
    ),
    cfg.IntOpt("image_size_cap", default=1099511627776, min=1, max=9223372036854775808, help="Largest image in bytes."),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        help="Total bytes one owner may store, with an optional B/KB/MB/GB/TB unit; 0 means unlimited.",
    ),
    cfg.BoolOpt(
        "use_keystone_limits",
        default=False,
        help="Enforce the per-project limits registered in keystone (unified limits, read with the "
        "[oslo_limit] credentials): image_size_total and image_stage_total in MiB, image_count_total and "
        "image_count_uploading; user_storage_quota is then ignored. Register the limits first: a resource "
        "without a registered limit counts as a limit of 0.",
    ),
    cfg.IntOpt("api_limit_max", default=1000, min=0, help="Largest page a listing returns."),
    cfg.IntOpt("limit_param_default", default=25, min=1, help="Page size when a listing names no limit."),
    cfg.IntOpt("image_member_quota", default=128, help="Members per image; negative means unlimited."),
    cfg.IntOpt("image_property_quota", default=128, help="Custom properties per image; negative means unlimited."),
    cfg.IntOpt("image_tag_quota", default=128, help="Tags per image; negative means unlimited."),
    cfg.IntOpt("image_location_quota", default=10, help="Locations per image; negative means unlimited."),
    cfg.StrOpt("worker_self_reference_url", help="URL other workers use to reach this one."),
    cfg.StrOpt("public_endpoint", help="Base URL written into the versions document and links."),
    cfg.StrOpt(
        "hashing_algorithm",
        default="sha512",
        help="hashlib algorithm for os_hash_value (the multihash).",
    ),
    cfg.BoolOpt(
        "do_secure_hash",
        default=True,
        help="Compute checksum and os_hash_value of data added by the location API (v2.17).",
    ),
    cfg.IntOpt(
        "http_retries",
        default=3,
        min=0,
        help="Attempts to read a location's data again when hash calculation fails on an I/O error.",
    ),
    cfg.BoolOpt("show_image_direct_url", default=False, help="Show the best location's URL as direct_url."),
    cfg.BoolOpt("show_multiple_locations", default=False, help="Show and allow editing of locations."),
    cfg.StrOpt("image_cache_dir", help="Directory of the local image cache; enables the cache API."),
    cfg.IntOpt(
        "image_cache_max_size",
        default=10 * 1024**3,
        min=0,
        help="Bytes the image cache may hold before a prune removes the least recently used images.",
    ),
    cfg.IntOpt(
        "image_cache_stall_time",
        default=86400,
        min=0,
        help="Seconds after which an unfinished cache file is removed by a clean.",
    ),
    cfg.IntOpt(
        "cache_prefetcher_interval",
        default=300,
        min=1,
        help="Seconds between runs of the prefetcher that caches the images queued for caching.",
    ),
    cfg.StrOpt(
        "property_protection_file",
        help="INI file of property protections: each section is a regular expression over custom "
        "property names (the first that matches a name decides) with create, read, update and delete "
        "options. Unset: no protections. A file that cannot be found or parsed stops the service.",
    ),
    cfg.StrOpt(
        "property_protection_rule_format",
        default="roles",
        choices=["roles", "policies"],
        help="What the operations in property_protection_file hold: comma-separated role names "
        "('@' anyone, '!' no one), or the name of one policy rule.",
    ),
    cfg.IntOpt(
        "store_capability_refresh_interval",
        default=10,
        min=0,
        help="Seconds between refreshes of a store's live capabilities (glancelite).",
    ),
    cfg.StrOpt(
        "default_publisher_id",
        default="image.localhost",
        help="publisher_id of the notifications this node sends (Glance's; typically image.<host>).",
    ),
    cfg.ListOpt(
        "disabled_notifications",
        default=[],
        help="Notifications not to send: event types (image.create) or groups (image, image.member, "
        "task; also written image.*). Notifications go through oslo.messaging as "
        "[oslo_messaging_notifications] driver and transport_url say; no driver sends none.",
    ),
]

# [database] is oslo.db's group in Glance. glancelite builds its own SQLAlchemy engine (db/engine.py)
# but takes the option definitions it applies from oslo.db, so names, types, defaults and help stay
# Glance's; the rest of oslo.db's options are reported at start as not applicable.
APPLIED_OSLO_DB_OPTIONS = (
    "connection_parameters",
    "max_pool_size",
    "max_overflow",
    "pool_timeout",
    "connection_recycle_time",
    "max_retries",
    "retry_interval",
    "sqlite_synchronous",
    "connection_debug",
    "connection_trace",
)


def _oslo_db_opt(name: str) -> cfg.Opt:
    return next(o for o in oslo_db_options.database_opts if o.name == name)


DATABASE_OPTS = [
    cfg.StrOpt(
        "connection",
        secret=True,
        default="sqlite:///glancelite.sqlite",
        help="SQLAlchemy URL of the database; SQLite by default, PostgreSQL in production.",
    ),
    *(_oslo_db_opt(name) for name in APPLIED_OSLO_DB_OPTIONS),
]

# Options of Glance's [database] (oslo.db, current and past releases) that have no meaning for
# glancelite's SQLite/PostgreSQL engine: MySQL/Galera session settings, read replicas, asyncio
# URLs, oslo.db's retry decorator and its removed options. config.py names each once at start.
DATABASE_NOT_APPLICABLE = frozenset(
    {
        "backend",
        "slave_connection",
        "asyncio_connection",
        "asyncio_slave_connection",
        "synchronous_reader",
        "mysql_sql_mode",
        "mysql_wsrep_sync_wait",
        "mysql_enable_ndb",
        "use_db_reconnect",
        "db_retry_interval",
        "db_inc_retry_interval",
        "db_max_retry_interval",
        "db_max_retries",
        "min_pool_size",
        "idle_timeout",
        "sqlite_db",
        "use_tpool",
    }
)

GLANCE_STORE_OPTS = [
    cfg.StrOpt("default_backend", help="Store id that receives data when a request names none (multi-store)."),
    cfg.ListOpt("stores", default=["file", "http"], help="Store types enabled without enabled_backends (legacy)."),
    cfg.StrOpt("default_store", default="file", help="Store type that receives data without enabled_backends."),
    cfg.StrOpt(
        "filesystem_store_datadir",
        default="/var/lib/glance/images",
        help="Data directory of the file store without enabled_backends.",
    ),
]

TASK_OPTS = [
    cfg.IntOpt("task_time_to_live", default=48, help="Hours a finished task stays visible."),
    cfg.StrOpt(
        "work_dir",
        deprecated_for_removal=True,
        deprecated_reason="Use the reserved store os_glance_tasks_store with enabled_backends.",
        help="Directory for import working files when enabled_backends is not set.",
    ),
]

TASKFLOW_OPTS = [
    cfg.StrOpt("engine_mode", default="parallel", choices=["serial", "parallel"], help="taskflow engine mode."),
    cfg.IntOpt("max_workers", default=10, min=1, help="Threads of the one import executor."),
]

IMPORT_FILTERING_OPTS = [
    glance_list_opt("allowed_schemes", default=["http", "https"], help="URI schemes web-download may use."),
    glance_list_opt("disallowed_schemes", default=[], help="URI schemes web-download may not use."),
    glance_list_opt("allowed_hosts", default=[], help="Hosts web-download may use; empty means any public host."),
    glance_list_opt("disallowed_hosts", default=[], help="Hosts web-download may not use."),
    glance_list_opt(
        "allowed_ports",
        item_type=cfg.types.Integer(min=1, max=65535),
        default=[80, 443],
        help="Ports web-download may use.",
    ),
    glance_list_opt(
        "disallowed_ports",
        item_type=cfg.types.Integer(min=1, max=65535),
        default=[],
        help="Ports web-download may not use.",
    ),
]

GLANCE_DOWNLOAD_PROPERTIES_OPTS = [
    glance_list_opt(
        "extra_properties",
        default=["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"],
        help="glance-download copies the remote image's properties whose names start with one of these "
        "(os_glance* never), besides disk_format and container_format.",
    ),
]

IMAGE_IMPORT_OPTS = [
    glance_list_opt(
        "image_import_plugins",
        item_type=cfg.types.String(quotes=True),
        default=[],
        sample_default="[no_op]",
        help="Import plugins run, in this order, on the staged data of every interoperable import "
        "except copy-image, after it was verified and before it is copied into the stores: no_op, "
        "inject_image_metadata, image_conversion, image_decompression. An unknown name stops the service.",
    ),
    cfg.IntOpt(
        "max_parallel_stores",
        default=1,
        min=1,
        help="How many stores one import copies the staged data into at the same time; 1 copies into "
        "one store after the other.",
    ),
    cfg.FloatOpt(
        "import_progress_interval",
        default=1.0,
        min=0.0,
        max=5.0,
        help="Seconds between the writes of a running import's progress (bytes done and total per "
        "store, in its task's result and message); a write also waits for 1% of the data to move. "
        "0 writes whenever 1% moved. A store starting, finishing or failing is written at once, and "
        "the task at least every 5 seconds while data moves (its heartbeat).",
    ),
]

INJECT_METADATA_OPTS = [
    glance_list_opt(
        "ignore_user_roles",
        default=["admin"],
        help="inject_image_metadata injects nothing when the importing user has one of these roles.",
    ),
    cfg.DictOpt(
        "inject",
        default={},
        help="inject_image_metadata: properties set on the imported image, 'k1:v1,k2:v2' "
        "(names starting with os_glance are dropped).",
    ),
]

IMAGE_CONVERSION_OPTS = [
    cfg.StrOpt(
        "output_format",
        default="raw",
        choices=("qcow2", "raw", "vmdk"),
        help="image_conversion converts the staged image to this format with qemu-img and sets its "
        "disk_format; only formats qemu-img reads can be imported while the plugin is on.",
    ),
]

PASTE_DEPLOY_OPTS = [
    cfg.StrOpt(
        "flavor",
        help="'keystone' validates tokens with keystonemiddleware; unset trusts identity headers "
        "(X-Identity-Status: Confirmed) or treats the caller as admin, like Glance's default pipeline.",
    ),
    cfg.StrOpt("config_file", help="Not used: glancelite composes its pipeline in code."),
]

HEALTHCHECK_OPTS = [
    cfg.StrOpt(
        "disable_by_file_path",
        help="While this file exists /healthcheck answers 503 and no new import jobs start.",
    ),
]

METRICS_OPTS = [
    cfg.BoolOpt(
        "enabled",
        default=False,
        help="Serve Prometheus metrics on a listener of their own (never the API's port), from "
        "glancelite-api's gunicorn master, adding up every worker's values.",
    ),
    cfg.HostAddressOpt(
        "bind_host",
        default="127.0.0.1",
        help="Address the metrics listener binds; keep it on a management network.",
    ),
    cfg.PortOpt("bind_port", default=9293, help="Port of the metrics listener; must differ from the API's."),
    cfg.StrOpt("path", default="/metrics", help="The path that answers the metrics; any other answers 404."),
]

# glancelite's own group (Octavia calls the same things jobboard_* in [task_flow]).
JOBBOARD_OPTS = [
    cfg.StrOpt(
        "backend_url",
        help="Redis URL of the taskflow job board every node shares, e.g. redis://127.0.0.1:6379/0 "
        "(redis://:password@host:port/db; rediss:// for TLS). Unset: no job board, each node runs the "
        "imports it accepts in its own executor and nothing else is needed.",
    ),
    cfg.StrOpt(
        "board_name",
        default="glancelite-imports",
        help="Name of the job board (its Redis key namespace); every node of one service uses the same.",
    ),
    cfg.IntOpt(
        "claim_expiry",
        default=30,
        min=5,
        help="Seconds a node's claim on an import job lives without being renewed (a running node "
        "renews it every third of that). After a node dies, another claims its jobs this long later.",
    ),
    cfg.StrOpt(
        "conductor_name",
        help="Name this node's conductors claim jobs under (the process id is appended); defaults to the host name.",
    ),
    cfg.StrOpt(
        "persistence_connection",
        secret=True,
        help="SQLAlchemy URL where taskflow keeps the import flows' state; defaults to [database] "
        "connection (glancelite-manage db sync creates its tables there).",
    ),
    cfg.BoolOpt(
        "shared_staging",
        default=False,
        help="os_glance_staging_store is a directory every node mounts (NFS, CephFS): any node runs "
        "any glance-direct import and none is forwarded to the node that staged the data. Applies "
        "with or without a job board.",
    ),
]

# [cors] and [oslo_middleware]: oslo.middleware's own option objects, which its CORS and
# HTTPProxyToWSGI middleware register again when they are built (the same objects, so no clash).
CORS_OPTS = cors_middleware.OPTS
PROXY_OPTS = http_proxy_to_wsgi.OPTS
# COMPAT: Glance's CORS defaults (its set_cors_middleware_defaults), so a [cors] that names only
# allowed_origin lets a browser client such as Horizon send tokens and checksums as with Glance.
# config.py sets them on the one ConfigOpts it loads; oslo's module-level defaults stay untouched.
CORS_DEFAULTS = {
    "allow_headers": [
        "Content-MD5",
        "X-Image-Meta-Checksum",
        "X-Storage-Token",
        "Accept-Encoding",
        "X-Auth-Token",
        "X-Identity-Status",
        "X-Roles",
        "X-Service-Catalog",
        "X-User-Id",
        "X-Tenant-Id",
        "X-OpenStack-Request-ID",
    ],
    "expose_headers": [
        "X-Image-Meta-Checksum",
        "X-Auth-Token",
        "X-Subject-Token",
        "X-Service-Token",
        "X-OpenStack-Request-ID",
    ],
    "allow_methods": ["GET", "PUT", "POST", "DELETE", "PATCH"],
}


def cors_sample_opts() -> list[cfg.Opt]:
    """The [cors] options as the sample lists them: oslo's, with Glance's defaults."""
    sample = copy.deepcopy(CORS_OPTS)
    cfg.set_defaults(sample, **CORS_DEFAULTS)
    return sample


# Delayed delete ([DEFAULT], Glance's glance/scrubber.py names and defaults): the API reads the
# first three, glancelite-scrubber all of them (wakeup_time and daemon as glance-scrubber.conf has them).
DELAYED_DELETE_OPTS = [
    cfg.BoolOpt(
        "delayed_delete",
        default=False,
        help="Deleting an image with data leaves it pending_delete, its data in the stores, until "
        "glancelite-scrubber removes the data (after scrub_time); until then an operator can bring it back "
        "with glancelite-scrubber --restore. Run the scrubber periodically or the stores fill up.",
    ),
    cfg.IntOpt(
        "scrub_time",
        default=0,
        min=0,
        help="Seconds an image stays pending_delete before the scrubber may remove its data.",
    ),
    cfg.IntOpt(
        "scrub_pool_size",
        default=1,
        min=1,
        help="Images the scrubber deletes in parallel (1: one after the other).",
    ),
    cfg.IntOpt(
        "wakeup_time",
        default=300,
        min=0,
        help="Seconds between two scrubber passes when it runs as a daemon.",
    ),
    cfg.BoolOpt(
        "daemon",
        default=False,
        help="glancelite-scrubber runs as a daemon, a pass every wakeup_time seconds, instead of one pass "
        "(the --daemon/-D switch overrides it).",
    ),
]

# oslo.policy 6 dropped enforce_scope (scope is always checked); glancelite
# keeps the switch Glance operators know. Registered only where oslo.policy
# does not declare it itself.
POLICY_OPTS = [
    cfg.BoolOpt(
        "enforce_scope",
        default=True,
        help="Refuse tokens whose scope (system, domain) the rule does not allow: image, member, task, "
        "cache and metadef rules are project-scoped.",
    ),
]

STORE_COMMON_OPTS = [
    cfg.StrOpt("store_description", help="Description shown in /v2/info/stores."),
    cfg.IntOpt("weight", default=0, help="Stores with a higher weight are listed and read first."),
    cfg.BoolOpt("read_only", default=False, help="Refuse writes and deletes on this store (glancelite)."),
]

IMAGE_FORMAT_OPTS = [
    cfg.ListOpt(
        "disk_formats",
        default=["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"],
        help="The disk_format values images may have (the image schema's enum).",
    ),
    cfg.ListOpt(
        "container_formats",
        default=["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"],
        help="The container_format values images may have (the image schema's enum).",
    ),
    cfg.BoolOpt(
        "require_image_format_match",
        default=True,
        help="Refuse image data whose format does not match the image's disk_format.",
    ),
    cfg.ListOpt(
        "vmdk_allowed_types",
        default=["streamOptimized", "monolithicSparse"],
        help="VMDK createType values accepted in uploads and imports; others are refused. "
        "oslo.utils' inspector accepts only monolithicSparse and streamOptimized, so this can only narrow them.",
    ),
    cfg.ListOpt(
        "gpt_safety_checks_nonfatal",
        default=[],
        help='Names of GPT safety checks (oslo.utils\' format inspector; today "mbr") whose failure, on '
        "data detected as gpt (raw disk images with a partition table), is logged instead of refusing the "
        "image. GPT depends on the loosely defined MBR, so working disks may fail the strict checks; "
        "relaxing them is not recommended.",
    ),
]


def log_opts() -> list[cfg.Opt]:
    """oslo.log's own [DEFAULT] options (debug, log_file, use_json, ...), the four lists
    oslo_log.log.register_options registers (config.py calls it); listed here for the sample."""
    from oslo_log import _options as oslo_log_options  # where oslo.log declares them

    return [
        *oslo_log_options.common_cli_opts,
        *oslo_log_options.logging_cli_opts,
        *oslo_log_options.generic_log_opts,
        *oslo_log_options.log_opts,
    ]


# The reserved stores glancelite injects in multi-store mode.
RESERVED_STORES = ("os_glance_staging_store", "os_glance_tasks_store")
RESERVED_PREFIX = "os_glance_"


def list_opts():
    """oslo-config-generator entry point: (group, options) pairs.

    The store group lists the options every registered driver type declares (the
    built-in ones and those of installed ``glancelite.store.drivers`` entry points).
    """
    # config reads the driver registry and imports oslo.messaging; opts stays a leaf
    from glancelite.config import messaging_opts, store_group_opts

    return [
        ("DEFAULT", DEFAULT_OPTS + log_opts()),
        ("DEFAULT", DELAYED_DELETE_OPTS),
        ("database", DATABASE_OPTS),
        ("glance_store", GLANCE_STORE_OPTS),
        ("task", TASK_OPTS),
        ("taskflow_executor", TASKFLOW_OPTS),
        ("import_filtering_opts", IMPORT_FILTERING_OPTS),
        ("glance_download_properties", GLANCE_DOWNLOAD_PROPERTIES_OPTS),
        ("image_import_opts", IMAGE_IMPORT_OPTS),
        ("inject_metadata_properties", INJECT_METADATA_OPTS),
        ("image_conversion", IMAGE_CONVERSION_OPTS),
        ("paste_deploy", PASTE_DEPLOY_OPTS),
        ("healthcheck", HEALTHCHECK_OPTS),
        ("metrics", METRICS_OPTS),
        ("taskflow_jobboard", JOBBOARD_OPTS),
        ("image_format", IMAGE_FORMAT_OPTS),
        ("oslo_policy", POLICY_OPTS),
        ("cors", cors_sample_opts()),
        ("oslo_middleware", PROXY_OPTS),
        # oslo.messaging's own declarations ([DEFAULT] transport_url, control_exchange; the driver options).
        *messaging_opts(sample=True),
        # Each store id in enabled_backends is a group holding these.
        ("<store id>", store_group_opts()),
    ]
