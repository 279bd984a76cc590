"""s3, swift and rbd on real servers (moto, Swift AIO, Ceph + radosgw): see tests/backends/cases.py."""

from tests.backends.cases import CASES

__all__ = ["CASES"]
