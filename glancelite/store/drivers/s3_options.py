"""The s3 store's options (a store group of that type, glance_store's names and defaults).

Kept apart from s3.py, which imports boto3 at module level: config.py and the sample
generator read these declarations on machines without boto3, and only building an s3
store imports the driver itself.
"""

from __future__ import annotations

from oslo_config import cfg

OPTIONS: list[cfg.Opt] = [
    cfg.StrOpt("s3_store_host", help="Endpoint, with http(s):// or as a bare host (http)."),
    cfg.StrOpt("s3_store_region_name", default="", help="Region."),
    cfg.StrOpt("s3_store_access_key", secret=True, help="Access key."),
    cfg.StrOpt("s3_store_secret_key", secret=True, help="Secret key."),
    cfg.StrOpt("s3_store_bucket", help="Bucket of the images."),
    cfg.BoolOpt("s3_store_create_bucket_on_put", default=False, help="Create the bucket when missing."),
    cfg.StrOpt(
        "s3_store_bucket_url_format", default="auto", choices=["auto", "virtual", "path"], help="Addressing style."
    ),
    cfg.IntOpt("s3_store_large_object_size", default=100, min=0, help="MiB at and above which multipart is used."),
    cfg.IntOpt("s3_store_large_object_chunk_size", default=10, min=5, help="Part size in MiB."),
    cfg.IntOpt("s3_store_thread_pools", default=10, min=1, help="Parallel part uploads."),
    cfg.StrOpt("s3_store_cacert", default="", help="CA bundle; empty uses botocore's."),
]
