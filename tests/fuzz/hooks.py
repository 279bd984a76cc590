"""schemathesis hooks for the fuzz tier: loaded by tests/fuzz/test_fuzz_api.py, and by the
schemathesis CLI through SCHEMATHESIS_HOOKS=tests.fuzz.hooks (the stateful run, the long run)."""

from __future__ import annotations

import re

import schemathesis

from glancelite.api import patch

# Image PATCH bodies are JSON under Glance's json-patch media types.
for _media in patch.MEDIA_TYPES:
    schemathesis.serializer.alias(_media, "application/json")

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


@schemathesis.check
def no_leaked_internals(ctx, response, case) -> None:
    """No traceback, SQL, driver message or filesystem path in a text body."""
    content_type = ",".join(response.headers.get("content-type", []) or response.headers.get("Content-Type", []))
    if (case.method.upper(), case.path) in LEAK_EXEMPT or not content_type.startswith(TEXT_TYPES):
        return
    text = response.content.decode("utf-8", "replace")
    found = LEAKS.search(text)
    if found:
        raise AssertionError(f"{case.method} {case.path} answered {response.status_code} leaking {found.group(0)!r}")
