"""The rbd store's options (a store group of that type, glance_store's names and defaults).

Kept apart from rbd.py, which imports the Ceph bindings (rados, rbd) at module level:
config.py and the sample generator read these declarations on machines without them,
and only building an rbd store imports the driver itself.
"""

from __future__ import annotations

from oslo_config import cfg

OPTIONS: list[cfg.Opt] = [
    cfg.IntOpt("rbd_store_chunk_size", default=8, min=1, help="Object size in MiB."),
    cfg.StrOpt("rbd_store_pool", default="images", help="RADOS pool of the images."),
    cfg.StrOpt("rbd_store_user", help="cephx user, without 'client.'."),
    cfg.StrOpt("rbd_store_ceph_conf", default="", help="ceph.conf path; empty uses librados' search."),
    cfg.IntOpt("rados_connect_timeout", default=-1, help="Seconds; negative keeps ceph.conf's values."),
    cfg.BoolOpt("rbd_thin_provisioning", default=False, help="Skip all-zero chunks."),
]
