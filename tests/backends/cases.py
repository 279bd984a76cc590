"""s3 (moto, radosgw), swift (Swift AIO, radosgw) and rbd (Ceph) as store conformance cases.

Servers start on first use (tests/backends/servers.py); a case whose server
cannot start skips with the reason, or fails when CI=true.
"""

from __future__ import annotations

import uuid

from tests.backends.factories import (
    LARGE,
    make_rbd,
    make_s3,
    make_swift,
    rbd_leftovers,
    rbd_missing,
    s3_leftovers,
    swift_leftovers,
)
from tests.store.conftest import DriverCase

CASES = [
    DriverCase(
        "s3-moto",
        make_s3("moto"),
        leftovers=s3_leftovers,
        large_size=LARGE,
        missing_url=lambda d: d.url_of(str(uuid.uuid4())),
    ),
    DriverCase(
        "s3-rgw",
        make_s3("rgw"),
        leftovers=s3_leftovers,
        large_size=LARGE,
        missing_url=lambda d: d.url_of(str(uuid.uuid4())),
    ),
    DriverCase(
        "swift-aio",
        make_swift("aio"),
        leftovers=swift_leftovers,
        large_size=LARGE,
        missing_url=lambda d: d.url_of(str(uuid.uuid4())),
    ),
    DriverCase(
        "swift-rgw",
        make_swift("rgw"),
        leftovers=swift_leftovers,
        large_size=LARGE,
        missing_url=lambda d: d.url_of(str(uuid.uuid4())),
    ),
    DriverCase("rbd", make_rbd, leftovers=rbd_leftovers, large_size=LARGE, missing_url=rbd_missing),
]
