"""etc/glance-api.conf.sample is generated, never edited: regenerate it and compare."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "etc" / "glance-api.conf.sample"
REGENERATE = "oslo-config-generator --namespace glancelite --output-file etc/glance-api.conf.sample"


def test_sample_config_is_current(tmp_path):
    fresh = tmp_path / "glance-api.conf.sample"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "oslo-config-generator"),
            "--namespace",
            "glancelite",
            "--output-file",
            str(fresh),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    expected = fresh.read_text().splitlines(keepends=True)
    committed = SAMPLE.read_text().splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(committed, expected, "committed", "generated", n=1))
    assert not diff, (
        f"etc/glance-api.conf.sample is stale; regenerate with `{REGENERATE}` (or tox -e genconfig):\n{diff[:3000]}"
    )


def test_sample_names_glance_options():
    text = SAMPLE.read_text()
    for line in ("#bind_port = 9292", "#enabled_backends", "[glance_store]", "#default_backend", "[database]"):
        assert line in text
