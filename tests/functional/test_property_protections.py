"""Property protections at start-up: a bad [DEFAULT] property_protection_file stops glancelite-api with one line.

The rules themselves, applied to requests, are tests/api/test_property_protections.py.
"""

from __future__ import annotations

import pytest

from tests.functional.test_startup import listening, port_of, run_api
from tests.support.server import manage, write_config

BAD_FILES = {
    "no-section-header": "create = admin\n",
    "bad-regex": "[x_(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
    "missing-operation": "[x_.*]\ncreate = @\nread = @\nupdate = @\n",
    "at-and-bang": "[x_.*]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n",
    "duplicate-section": "[a]\ncreate = @\n[a]\ncreate = @\n",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_protection_file_stops_the_service(tmp_path, case):
    (tmp_path / "pp.conf").write_text(BAD_FILES[case])
    conf = write_config(tmp_path, {"DEFAULT": {"property_protection_file": str(tmp_path / "pp.conf")}})
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("glancelite: invalid configuration: [DEFAULT] property_protection_file: "), lines
    assert not listening(port_of(conf))
    checked = manage(conf, "config", "check", check=False)
    assert checked.returncode == 1 and "[DEFAULT] property_protection_file" in checked.stderr, checked


def test_a_missing_file_or_a_comma_in_policies_format_stops_the_service(tmp_path):
    conf = write_config(tmp_path, {"DEFAULT": {"property_protection_file": str(tmp_path / "nowhere.conf")}})
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "glancelite: invalid configuration: [DEFAULT] property_protection_file: "
        f"cannot find property protection file '{tmp_path / 'nowhere.conf'}'"
    ]
    (tmp_path / "pp.conf").write_text("[x]\ncreate = a,b\nread = @\nupdate = @\ndelete = @\n")
    conf = write_config(
        tmp_path,
        {"DEFAULT": {"property_protection_file": "pp.conf", "property_protection_rule_format": "policies"}},
    )
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1
    assert "[DEFAULT] property_protection_file:" in proc.stderr and "one policy rule" in proc.stderr, proc.stderr


def test_an_unknown_rule_format_stops_the_service(tmp_path):
    (tmp_path / "pp.conf").write_text("[x]\ncreate = @\nread = @\nupdate = @\ndelete = @\n")
    conf = write_config(
        tmp_path,
        {"DEFAULT": {"property_protection_file": "pp.conf", "property_protection_rule_format": "acl"}},
    )
    proc, _ = run_api("--config-file", str(conf))
    assert proc.returncode == 1
    assert proc.stderr.startswith("glancelite: invalid configuration: [DEFAULT] property_protection_rule_format")
