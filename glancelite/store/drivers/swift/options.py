"""The swift store's options (glance_store's names and defaults), both tenancy modes.

A module of its own, importable without python-swiftclient: config.py and the sample
generator read it on any machine; only building a swift store imports the drivers.
"""

from __future__ import annotations

from oslo_config import cfg

OPTIONS: list[cfg.Opt] = [
    cfg.StrOpt("swift_store_auth_address", help="Auth URL (tempauth v1 or keystone)."),
    cfg.StrOpt("swift_store_user", help="'project:user' or 'account:user'."),
    cfg.StrOpt("swift_store_key", secret=True, help="Password of swift_store_user."),
    cfg.StrOpt("swift_store_auth_version", default="3", help="Auth version: 1 (tempauth), 2 or 3."),
    cfg.StrOpt("swift_store_config_file", help="INI file of credential references."),
    cfg.StrOpt("default_swift_reference", default="ref1", help="Reference in swift_store_config_file."),
    cfg.StrOpt("swift_store_container", default="glance", help="Container of the images."),
    cfg.BoolOpt("swift_store_create_container_on_put", default=False, help="Create the container when missing."),
    cfg.IntOpt("swift_store_large_object_size", default=5120, min=1, help="MiB above which images are segmented."),
    cfg.IntOpt("swift_store_large_object_chunk_size", default=200, min=1, help="Segment size in MiB."),
    cfg.BoolOpt("swift_store_auth_insecure", default=False, help="Skip TLS verification."),
    cfg.StrOpt("swift_store_cacert", help="CA bundle."),
    cfg.StrOpt("swift_store_region", help="Region in the catalog."),
    cfg.StrOpt("swift_store_endpoint", help="Storage URL overriding the catalog."),
    cfg.IntOpt("swift_store_retry_get_count", default=0, min=0, help="Resumes of an interrupted download."),
    cfg.IntOpt("swift_store_expire_soon_interval", default=60, min=0, help="Seconds before expiry to refresh a token."),
    cfg.BoolOpt(
        "swift_store_multi_tenant",
        default=False,
        help="Store each image in the caller's own Swift account, in a container of its own.",
    ),
    cfg.StrOpt(
        "swift_store_endpoint_type",
        default="publicURL",
        choices=["publicURL", "adminURL", "internalURL"],
        help="Multi-tenant: catalog interface of the storage URL.",
    ),
    cfg.StrOpt("swift_store_service_type", default="object-store", help="Multi-tenant: catalog service type."),
    cfg.ListOpt(
        "swift_store_admin_tenants", default=[], help="Multi-tenant: projects given the write ACL of every image."
    ),
]
