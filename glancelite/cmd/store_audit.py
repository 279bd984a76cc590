"""``glancelite-manage store audit``: the report an operator reads, the age option, the exit code.

    glancelite-manage --config-file glance-api.conf store audit [--remove-orphans-older-than AGE]

One line per store, one per finding, one per removal, then a summary line. Exit 0: nothing
found (or everything found was removed); 1: findings remain; 2: a store could not be
audited, a removal failed, or the audit could not run. AGE is seconds, or a number with
a unit: ``90s``, ``30m``, ``12h``, ``7d``. Progress goes to stderr, only on a terminal.
"""

from __future__ import annotations

import re
import sys
import time
import urllib.parse
from typing import TextIO

from glancelite.services.store_audit import AuditReport
from glancelite.services.store_comparison import Finding, Kind

CLEAN, FINDINGS, FAILED = 0, 1, 2
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)


class BadAge(ValueError):
    pass


def parse_age(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``30m``, ``12h`` or ``7d``."""
    match = _AGE.match(text or "")
    if not match:
        raise BadAge(f"Invalid age {text!r}: give seconds or a number with a unit s, m, h or d (e.g. 7d).")
    return int(match[1]) * _UNITS[match[2].lower()]


class Progress:
    """``auditing store X: N objects`` rewritten in place on a terminal, at most every ``interval`` s."""

    def __init__(self, stream: TextIO, interval: float = 0.5, clock=time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self._last = 0.0
        self._shown = False

    def __call__(self, store_id: str, count: int) -> None:
        now = self.clock()
        if now - self._last < self.interval:
            return
        self._last = now
        self.stream.write(f"\r\033[Kauditing store {store_id}: {count} objects listed")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def progress_for(stream: TextIO) -> Progress | None:
    return Progress(stream) if stream.isatty() else None


def render(report: AuditReport, out: TextIO) -> int:
    """Print the report; the exit code."""
    for store in report.stores:
        label = f"store {store.store_id} ({store.type}{', reserved' if store.reserved else ''})"
        if store.error:
            print(f"{label}: ERROR: {store.error}", file=out)
        elif store.skipped:
            print(f"{label}: skipped: {store.skipped}", file=out)
        else:
            print(f"{label}: {store.objects} objects, {store.referenced} referenced", file=out)
    for finding in report.findings:
        print(_finding_line(finding), file=out)
    for removal in report.removals:
        verdict = "removed" if removal.error is None else "not-removed"
        what = redact(removal.finding.url)
        if removal.finding.upload_id:
            what += f" upload={removal.finding.upload_id}"  # removed: the upload was aborted
        line = f"{verdict:<11} {removal.finding.store_id} {what} ({removal.finding.kind}"
        line += f", age={_seconds(removal.finding.age)})" if removal.error is None else f": {removal.error})"
        print(line, file=out)
    print(summary(report), file=out)
    if report.failed:
        return FAILED
    return FINDINGS if report.remaining else CLEAN


def summary(report: AuditReport) -> str:
    """One line of ``name=count`` pairs, for people and for scripts alike."""
    stores = (
        f"audited={sum(1 for s in report.stores if not s.skipped and not s.error)}",
        f"skipped={sum(1 for s in report.stores if s.skipped)}",
        f"failed={sum(1 for s in report.stores if s.error)}",
    )
    found = (f"{kind}={report.count(kind)}" for kind in Kind)
    removed = (f"removed={len(report.removed)}", f"not-removed={sum(1 for r in report.removals if r.error)}")
    return f"summary: stores {' '.join(stores)}; {' '.join(found)}; {' '.join(removed)}"


def _finding_line(finding: Finding) -> str:
    parts = [f"{finding.kind:<11}", finding.store_id or "-", redact(finding.url)]
    if finding.image_id:
        parts.append(f"image={finding.image_id}")
    if finding.upload_id:
        parts.append(f"upload={finding.upload_id}")
    if finding.size is not None:
        parts.append(f"size={finding.size}")
    if finding.expected is not None and finding.kind is Kind.WRONG_SIZE:
        parts.append(f"expected={finding.expected}")
    if finding.age is not None:
        parts.append(f"age={_seconds(finding.age)}")
    if finding.reason:
        parts.append(f"({finding.reason})")
    return " ".join(parts)


def redact(url: str) -> str:
    """A location without any ``user:secret@`` part (legacy Glance s3 and swift locations carry keys)."""
    split = urllib.parse.urlsplit(url)
    if "@" not in split.netloc:
        return url
    return split._replace(netloc=split.netloc.rpartition("@")[2]).geturl()


def _seconds(age: float | None) -> str:
    """``45s``, ``12m5s``, ``3h20m``, ``9d4h``: the units ``--remove-orphans-older-than`` takes."""
    if age is None:
        return "unknown"
    seconds = int(age)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if seconds >= size:
            return f"{seconds // size}{unit}{seconds % size // smaller_size}{smaller}"
    return f"{seconds}s"


def run(loaded, remove_older_than: str | None, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from glancelite.app import build_store_audit

    age = parse_age(remove_older_than) if remove_older_than is not None else None
    services = build_store_audit(loaded.settings)
    progress = progress_for(err)
    try:
        report = services.audit.run(remove_older_than=age, progress=progress)
    finally:
        if progress:
            progress.done()
        services.close()
    return render(report, out)
