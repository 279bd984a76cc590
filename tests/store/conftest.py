"""The store conformance suite's driver cases.

Every driver joins the suite with a ``DriverCase``. To add one (s3, swift,
rbd...), create ``tests/store/cases_<name>.py`` defining::

    from tests.store.conftest import DriverCase

    def make(tmp_path, store_id):            # -> glancelite.store.base.Driver
        return S3Driver(StoreSettings(id=store_id, type="s3", description=None,
                                      weight=0, options={...}))

    CASES = [DriverCase("s3", make, skip_reason=None if server_up() else "no S3 server on 127.0.0.1:...")]

Nothing else: this conftest imports every ``cases_*.py`` next to it and runs
tests/store/test_conformance.py against each case. A case's flags say what
to expect (``writable``, ``ranged`` come from STATIC_CAPABILITIES;
``duplicate_refused``; ``seed`` for read-only stores; ``leftovers`` to prove
a failed add left nothing behind). ``large_size`` keeps slow backends quick.
"""

from __future__ import annotations

import dataclasses
import importlib
import pathlib
from collections.abc import Callable

import pytest

from glancelite.store.base import Driver


@dataclasses.dataclass
class DriverCase:
    name: str
    # (tmp_path, store_id) -> a configured driver; two ids must give two independent stores.
    make: Callable[[pathlib.Path, str], Driver]
    skip_reason: str | None = None
    # Read-only stores: put ``data`` where the driver can read it, return its URL.
    seed: Callable[[Driver, str, bytes], str] | None = None
    # Names of whatever partial objects/files the store holds (after a failed add: []).
    leftovers: Callable[[Driver], list[str]] | None = None
    duplicate_refused: bool = True
    large_size: int = 32 * 1024 * 1024
    # URL of an object that does not exist in this store.
    missing_url: Callable[[Driver], str] | None = None

    def __str__(self) -> str:
        return self.name


def _load_cases() -> list[DriverCase]:
    cases = []
    for path in sorted(pathlib.Path(__file__).parent.glob("cases_*.py")):
        module = importlib.import_module(f"tests.store.{path.stem}")
        cases.extend(module.CASES)
    return cases


def pytest_generate_tests(metafunc):
    # Cases load at collection, not at import: a case module may import this one.
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", _load_cases(), ids=str, indirect=True)


@pytest.fixture
def case(request) -> DriverCase:
    case: DriverCase = request.param
    if case.skip_reason:
        pytest.skip(case.skip_reason)
    return case


@pytest.fixture
def driver(case, tmp_path) -> Driver:
    drv = case.make(tmp_path, f"{case.name}-a")
    yield drv
    drv.close()
