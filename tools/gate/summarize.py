"""Summarize the last tempest run: per-class counts, and each failure with its error line.

Run with .venv-gate's python, reading ``stestr last --subunit`` on stdin:

    stestr last --subunit | .venv-gate/bin/python tools/gate/summarize.py > summary.txt
"""

from __future__ import annotations

import collections
import re
import sys

import subunit
import testtools

# tempest ids carry attributes: "...test_name[id-...,negative]"
ATTRS = re.compile(r"\[.*\]$")
EXCEPTION_LINE = re.compile(
    r"^[\w.]+(Error|Exception|Failure|Timeout|Mismatch|Unauthorized|Forbidden|NotFound|BadRequest|Conflict|ServerFault)\b"
)


def load(stream) -> list[dict]:
    tests: list[dict] = []
    case = subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout")
    result = testtools.StreamToDict(tests.append)
    result.startTestRun()
    try:
        case.run(result)
    finally:
        result.stopTestRun()
    return tests


def error_line(test: dict) -> str:
    """The exception line of a failure's traceback (or the skip reason)."""
    for name in ("traceback", "reason"):
        detail = test["details"].get(name)
        if detail is None:
            continue
        text = detail.as_text().strip()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # The last line naming an exception (tempest adds the response body on a
        # "Details:" line after it), else the last line.
        for i in range(len(lines) - 1, -1, -1):
            if EXCEPTION_LINE.match(lines[i]):
                details = next((ln.strip() for ln in lines[i + 1 : i + 3] if ln.startswith("Details:")), "")
                return f"{lines[i]} {details}".strip()[:400]
        return (lines[-1] if lines else "")[:400]
    return ""


def main() -> int:
    tests = [t for t in load(sys.stdin.buffer) if t["id"] and not t["id"].startswith("process-returncode")]
    by_class: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    problems: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    skips: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for test in tests:
        test_id = ATTRS.sub("", test["id"])
        cls, _, method = test_id.rpartition(".")
        # setUpClass failures/skips are reported as "setUpClass (module.Class)"
        if method.startswith("setUpClass") or "setUpClass" in test_id:
            cls, method = test_id, "setUpClass"
        by_class[cls][test["status"]] += 1
        if test["status"] in ("fail", "uxsuccess"):
            problems[cls].append((method, error_line(test)))
        elif test["status"] == "skip":
            skips[cls].append((method, error_line(test)))
    totals = collections.Counter(t["status"] for t in tests)
    print(f"{totals['success']} passed, {totals['fail']} failed, {totals['skip']} skipped ({len(tests)} results)")
    print("\n== per class (success/fail/skip)")
    for cls in sorted(by_class):
        c = by_class[cls]
        print(f"{c['success']:3d} {c['fail']:3d} {c['skip']:3d}  {cls}")
    print("\n== failures")
    for cls in sorted(problems):
        print(cls)
        for method, line in problems[cls]:
            print(f"    {method}: {line}")
    print("\n== skips")
    for cls in sorted(skips):
        for method, line in skips[cls]:
            print(f"    {cls}.{method}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
