"""benchmarks/data_path.py --quick as a smoke test: it runs end to end (its own gunicorn-served
API, uploads both ways, concurrent uploads, download, stage + import, copy-image) and every
checksum is right. Its timings are never judged here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_verifies_checksums(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "data_path.py"),
            "--quick",
            "--size-mib",
            "4",
            "--concurrent-mib",
            "1",
            "--uploads",
            "4",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "every checksum verified" in result.stdout
    for target in (
        "upload Content-Length",
        "upload chunked",
        "4 concurrent uploads",
        "download",
        "stage + glance-direct import",
        "copy-image",
    ):
        assert f"{target}: against the" in result.stdout
