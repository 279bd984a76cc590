"""Property-based and stateful requests for every operation of doc/openapi.json against the real server.

Checks on every response: no 5xx (no outage is staged here, so a 503 is a failure too), status code,
content type, headers and body conform to the description, and no body carries a traceback, SQL, a
database driver's message or a server filesystem path (GET /v2/info/stores/detail, admin-only, shows
the stores' directories by design).

Bounded for CI by GLANCELITE_FUZZ_EXAMPLES (examples per operation, default 15) and
GLANCELITE_FUZZ_STEPS (stateful steps per run, default 30); the seed is fixed
(GLANCELITE_FUZZ_SEED) so a failure replays. README "OpenAPI and fuzzing" has the long run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import hypothesis
import hypothesis.stateful
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from glancelite.api import patch
from tests.conftest import ADMIN

IDENTITY = {**ADMIN, "Accept": "application/json"}


def openapi_module_root() -> Path:
    return Path(__file__).resolve().parents[2]


# Image PATCH bodies are JSON under Glance's json-patch media types.
for _media in patch.MEDIA_TYPES:
    schemathesis.serializer.alias(_media, "application/json")

EXAMPLES = int(os.environ.get("GLANCELITE_FUZZ_EXAMPLES", "15"))
STEPS = int(os.environ.get("GLANCELITE_FUZZ_STEPS", "30"))
SEED = int(os.environ.get("GLANCELITE_FUZZ_SEED", "1313"))

# The committed description (tests/api/test_openapi.py proves it is the one the server serves): loaded at
# collection so that every operation is a test of its own.
schema = schemathesis.openapi.from_path(str(openapi_module_root() / "doc" / "openapi.json"))

# What must never reach a client: Python tracebacks, SQL, database driver and ORM names, server paths.
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"/|\bsqlalchemy\b|\bpsycopg\b|\bsqlite3?\b|"
    r"OperationalError|IntegrityError|ProgrammingError|DataError|"
    r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b .*\b(FROM|VALUES|SET|WHERE)\b|"
    r"/work/|/tmp/|site-packages|/usr/lib/",
)
TEXT_TYPES = ("application/json", "text/")
# The admin-only store detail shows each store's configuration, directories included.
LEAK_EXEMPT = {("GET", "/v2/info/stores/detail")}


def no_leaked_internals(ctx, response, case) -> None:
    """No traceback, SQL, driver message or filesystem path in a text body."""
    content_type = ",".join(response.headers.get("content-type", []) or response.headers.get("Content-Type", []))
    if (case.method.upper(), case.path) in LEAK_EXEMPT or not content_type.startswith(TEXT_TYPES):
        return
    text = response.content.decode("utf-8", "replace")
    found = LEAKS.search(text)
    if found:
        raise AssertionError(f"{case.method} {case.path} answered {response.status_code} leaking {found.group(0)!r}")


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
    derandomize=False,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
@hypothesis.seed(SEED)
def test_every_operation(case, fuzzed_service):
    case.call_and_validate(base_url=fuzzed_service.url, headers=IDENTITY, checks=CHECKS, timeout=30)


def test_stateful_sequences(api_schema):
    """Create, upload, stage, import, patch, share, delete: the description's links, followed."""

    class Workflow(api_schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=(), **kwargs):
            case.validate_response(response, checks=CHECKS)

    hypothesis.stateful.run_state_machine_as_test(
        Workflow,
        settings=hypothesis.settings(
            max_examples=max(1, STEPS // 10),
            stateful_step_count=10,
            deadline=None,
            derandomize=True,  # a fixed sequence, so a failure replays
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.generate],
        ),
    )
