"""A worker on the default configuration imports no optional SDK and none of the libraries only imports need.

Each worker's memory is what the gunicorn master imported plus what the worker's load() builds
(issue 12: <= 80 MiB a worker). boto3, swiftclient and rados/rbd belong to stores of their type
only; futurist (which brings eventlet when installed) and taskflow's patterns (networkx) come
with the first image import. A fresh interpreter does what glancelite-api does up to the
first request: import glancelite.cmd.api (the master) and build the application (the worker).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.server import manage, write_config

WORKER_START = """
import json, sys
from glancelite.cmd import api
app = api.GunicornServer(sys.argv[1:], {}).load()
assert callable(app)
print(json.dumps(sorted(sys.modules)))
"""
OPTIONAL_SDKS = ("boto3", "botocore", "swiftclient", "rados", "rbd")
LOADED_ON_FIRST_IMPORT = ("futurist", "eventlet", "networkx", "taskflow.patterns", "taskflow.engines")
JOB_BOARD_ONLY = ("redis", "taskflow.jobs", "taskflow.conductors", "taskflow.persistence")  # [taskflow_jobboard]


def started_worker_modules(conf) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", WORKER_START, str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("multi_store", [False, True], ids=["default-stores", "two-file-stores"])
def test_a_started_worker_has_not_imported_optional_sdks(tmp_path, multi_store):
    conf = write_config(tmp_path, multi_store=multi_store)
    manage(conf, "db", "sync")
    modules = started_worker_modules(conf)
    # The listing is real: what every worker needs is there.
    assert {"falcon", "sqlalchemy", "glancelite.app", "glancelite.store.drivers.file"} <= modules
    assert [m for m in OPTIONAL_SDKS if _loaded(modules, m)] == []
    assert [m for m in LOADED_ON_FIRST_IMPORT if _loaded(modules, m)] == []
    assert [m for m in JOB_BOARD_ONLY if _loaded(modules, m)] == []
