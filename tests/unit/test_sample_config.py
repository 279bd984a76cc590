"""etc/glance-api.conf.sample is generated, never edited: regenerate it and compare."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

from glancelite import option_groups

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "etc" / "glance-api.conf.sample"
GENERATOR_CONFIG = ROOT / "etc" / "oslo-config-generator" / "glance-api.conf"
REGENERATE = "bash tools/genconfig.sh"


def test_sample_config_is_current(tmp_path):
    """What tools/genconfig.sh writes, from the generator's config file, to a scratch file."""
    fresh = tmp_path / "glance-api.conf.sample"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "oslo-config-generator"),
            "--config-file",
            str(GENERATOR_CONFIG),
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
    assert not diff, f"etc/glance-api.conf.sample is stale; regenerate with `{REGENERATE}`:\n{diff[:3000]}"


def test_sample_names_glance_options():
    text = SAMPLE.read_text()
    for line in ("#bind_port = 9292", "#enabled_backends", "[glance_store]", "#default_backend", "[database]"):
        assert line in text


def test_sample_lists_the_keystone_groups():
    """keystonemiddleware's and oslo.limit's options, as Glance's sample has them."""
    text = SAMPLE.read_text()
    for line in ("[keystone_authtoken]", "#www_authenticate_uri = <None>", "#auth_type = <None>", "[oslo_limit]"):
        assert line in text
    assert "#endpoint_id = <None>" in text


def test_every_group_of_the_sample_is_taken():
    """The sample's groups are the option groups table's taken ones (a store id is any name)."""
    groups = set(re.findall(r"^\[([^\]]+)\]$", SAMPLE.read_text(), re.MULTILINE)) - {"<store id>"}
    taken = {g.name for g in option_groups.GROUPS if g.status is option_groups.Status.TAKEN}
    assert groups - taken == set()
