"""Property-based and stateful requests for every operation of doc/openapi.json against the real server.

Checks on every response: no 5xx (no outage is staged here, so a 503 is a failure too); status code,
content type, headers and body conform to the description; no body carries a traceback, SQL, a
database driver's message or a server filesystem path (tests/fuzz/hooks.py; GET
/v2/info/stores/detail, admin-only, shows the stores' directories by design).

Bounded for CI: GLANCELITE_FUZZ_EXAMPLES examples per operation (default 15, plus schemathesis's
explicit coverage cases), GLANCELITE_FUZZ_STEPS stateful scenarios (default 30) within
GLANCELITE_FUZZ_SECONDS (default 60). The seed is fixed (GLANCELITE_FUZZ_SEED) so a failure replays.
README "OpenAPI and fuzzing" has the long run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hypothesis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN
from tests.fuzz.hooks import no_leaked_internals

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "doc" / "openapi.json"
IDENTITY = {**ADMIN, "Accept": "application/json"}
EXAMPLES = int(os.environ.get("GLANCELITE_FUZZ_EXAMPLES", "15"))
STEPS = int(os.environ.get("GLANCELITE_FUZZ_STEPS", "30"))
SECONDS = int(os.environ.get("GLANCELITE_FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("GLANCELITE_FUZZ_SEED", "1313"))

# The committed description (tests/api/test_openapi.py proves it is the one the server serves),
# loaded at collection so that every operation is a test of its own.
schema = schemathesis.openapi.from_path(str(DESCRIPTION))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    no_leaked_internals,
]


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
@hypothesis.seed(SEED)
def test_every_operation(case, fuzzed_service):
    case.call_and_validate(base_url=fuzzed_service.url, headers=IDENTITY, checks=CHECKS, timeout=30)


def test_stateful_sequences(fuzzed_service, tmp_path):
    """Create, upload, stage, import, patch, share, delete: the description's links, followed.

    Run by schemathesis's own engine (its CLI), which copes with a state machine whose next steps
    depend on the server's answers; besides the checks above, a deleted resource must stay gone
    (use_after_free, except where DELETE empties a collection: schemathesis.toml) and a created
    one must be readable (ensure_resource_availability).
    """
    checks = [check.__name__ for check in CHECKS] + ["use_after_free", "ensure_resource_availability"]
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        str(DESCRIPTION),
        "--url",
        fuzzed_service.url,
        *(arg for name, value in IDENTITY.items() for arg in ("-H", f"{name}: {value}")),
        "--phases",
        "stateful",
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(STEPS),
        "--max-time",
        str(SECONDS),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report-dir",
        str(tmp_path),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(ROOT)}
    # cwd: schemathesis keeps its crash cache under .schemathesis in the working directory.
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "Stateful" in run.stdout, run.stdout[-5000:]
