"""Settings: frozen dataclasses built once by config.py and passed down.

Nothing here imports oslo; code below the composition root sees only these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    id: str
    type: str
    description: str | None
    weight: int
    # The driver's options from the store's config group (glance_store names).
    options: Mapping[str, Any]
    reserved: bool = False
    read_only: bool = False


@dataclasses.dataclass(frozen=True)
class ImportFilter:
    allowed_schemes: tuple[str, ...] = ("http", "https")
    disallowed_schemes: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    disallowed_hosts: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = (80, 443)
    disallowed_ports: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class NotificationSettings:
    """Glance's notifications: ``[oslo_messaging_notifications] driver`` and ``[DEFAULT]``
    default_publisher_id and disabled_notifications. The transport options stay with oslo.messaging."""

    drivers: tuple[str, ...] = ()
    publisher_id: str = "image.localhost"
    disabled: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        """No driver, or only ``noop``: nothing is sent."""
        return any(d != "noop" for d in self.drivers)


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    """[metrics]: the Prometheus exporter's own listener (glancelite-api's master), off by default."""

    enabled: bool = False
    bind_host: str = "127.0.0.1"
    bind_port: int = 9293
    path: str = "/metrics"


@dataclasses.dataclass(frozen=True)
class JobBoardSettings:
    """[taskflow_jobboard]: import jobs on a taskflow job board shared by every node (README,
    "Running several nodes"). ``backend_url`` None: no board, each node runs its own imports."""

    backend_url: str | None = None
    board_name: str = "glancelite-imports"
    claim_expiry: int = 30
    conductor_name: str = "glancelite"
    # [database] connection unless set: the flows' state beside the images it changes.
    persistence_connection: str | None = None
    # os_glance_staging_store is a directory every node mounts: no forwarding to the stage host.
    shared_staging: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.backend_url)


@dataclasses.dataclass(frozen=True)
class KeystoneSettings:
    """[keystone_authtoken] passed through to keystonemiddleware untouched."""

    options: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class PropertyRule:
    """One section of the property protection file, as written: ``pattern`` is the section name.

    Each operation holds role names (lower case), '@', '!', or one policy rule name;
    empty means no one may do it.
    """

    pattern: str
    create: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    """[database]: the URL and the oslo.db options (Glance's names and defaults) glancelite applies.

    The pool options apply where SQLAlchemy pools connections in a queue (PostgreSQL and a
    SQLite file); ``max_retries``/``retry_interval`` govern the wait for the database when
    glancelite-api starts (-1 waits for ever, 0 does not wait).
    """

    connection: str = "sqlite:///glancelite.sqlite"
    connection_parameters: str = ""  # "a=1&b=2", appended to the URL's query
    max_pool_size: int = 5  # 0: no limit
    max_overflow: int = 50
    pool_timeout: int | None = None  # None: SQLAlchemy's 30 seconds
    connection_recycle_time: int = 3600
    max_retries: int = 10
    retry_interval: int = 10
    sqlite_synchronous: bool = True
    connection_debug: int = 0  # 0 quiet, >= 50 SQL at INFO, 100 also rows at DEBUG
    connection_trace: bool = False


@dataclasses.dataclass(frozen=True)
class Settings:
    config_files: tuple[str, ...] = ()
    bind_host: str = "0.0.0.0"
    bind_port: int = 9292
    workers: int = 1
    database: DatabaseSettings = DatabaseSettings()

    enabled_import_methods: tuple[str, ...] = ("glance-direct", "web-download", "copy-image")
    image_size_cap: int = 1099511627776
    user_storage_quota: int = 0  # bytes; 0 = unlimited
    use_keystone_limits: bool = False  # keystone unified limits ([oslo_limit] read by oslo.limit itself)
    api_limit_max: int = 1000
    limit_param_default: int = 25
    image_member_quota: int = 128
    image_property_quota: int = 128
    image_tag_quota: int = 128
    image_location_quota: int = 10
    worker_self_reference_url: str | None = None
    public_endpoint: str | None = None
    hashing_algorithm: str = "sha512"
    do_secure_hash: bool = True  # location API: hash the data behind an added location
    http_retries: int = 3
    show_image_direct_url: bool = False
    show_multiple_locations: bool = False
    image_cache_dir: str | None = None
    image_cache_max_size: int = 10 * 1024**3
    image_cache_stall_time: int = 86400
    cache_prefetcher_interval: int = 300
    disk_formats: tuple[str, ...] = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
    container_formats: tuple[str, ...] = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
    require_image_format_match: bool = True
    vmdk_allowed_types: tuple[str, ...] = ("streamOptimized", "monolithicSparse")
    gpt_safety_checks_nonfatal: tuple[str, ...] = ()  # GPT safety checks only logged when they fail

    # Stores: one list for multi-store and legacy mode alike (legacy becomes a
    # one-store set with the reserved areas taken from node_staging_uri/work_dir).
    multi_store: bool = False
    stores: tuple[StoreSettings, ...] = ()
    default_store: str = "file"
    staging_store: str = "os_glance_staging_store"
    tasks_store: str = "os_glance_tasks_store"
    store_capability_refresh_interval: int = 10

    task_time_to_live_hours: int = 48
    taskflow_engine_mode: str = "parallel"
    taskflow_max_workers: int = 10
    import_filter: ImportFilter = ImportFilter()
    # [glance_download_properties] extra_properties: name prefixes glance-download copies.
    glance_download_properties: tuple[str, ...] = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
    # [image_import_opts]: import plugins in run order (names checked at start), and how many
    # stores one import writes at the same time.
    image_import_plugins: tuple[str, ...] = ()
    max_parallel_stores: int = 1
    import_progress_interval: float = 1.0  # tasks/progress.py's time throttle
    # [inject_metadata_properties] and [image_conversion]: the plugins' own options.
    inject_ignore_user_roles: tuple[str, ...] = ("admin",)
    inject_properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    image_conversion_output_format: str = "raw"

    auth_flavor: str | None = None
    allow_anonymous_access: bool = False
    client_socket_timeout: int = 900
    max_transfers_per_worker: int = 256
    keystone: KeystoneSettings = KeystoneSettings({})
    healthcheck_disable_file: str | None = None
    # [cors] allowed_origin: empty leaves oslo.middleware's CORS out of the pipeline;
    # [oslo_middleware] enable_proxy_headers_parsing puts HTTPProxyToWSGI in it.
    cors_allowed_origins: tuple[str, ...] = ()
    enable_proxy_headers_parsing: bool = False
    notifications: NotificationSettings = NotificationSettings()
    metrics: MetricsSettings = MetricsSettings()
    jobboard: JobBoardSettings = JobBoardSettings()

    # [DEFAULT] property_protection_file, parsed at start; None when protections are off.
    property_protection_file: str | None = None
    property_protection_rule_format: str = "roles"
    property_rules: tuple[PropertyRule, ...] | None = None

    # Delayed delete: DELETE leaves images with data pending_delete; glancelite-scrubber removes
    # the data once they have been pending scrub_time seconds, scrub_pool_size images at a time.
    delayed_delete: bool = False
    scrub_time: int = 0
    scrub_pool_size: int = 1
    scrubber_wakeup_time: int = 300  # [DEFAULT] wakeup_time: seconds between passes as a daemon
    scrubber_daemon: bool = False  # [DEFAULT] daemon

    def store(self, store_id: str) -> StoreSettings | None:
        return next((s for s in self.stores if s.id == store_id), None)

    @property
    def public_stores(self) -> tuple[StoreSettings, ...]:
        """Stores a client may see or name (never the reserved ones), highest weight first."""
        return tuple(sorted((s for s in self.stores if not s.reserved), key=lambda s: -s.weight))
