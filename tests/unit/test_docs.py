"""The reStructuredText the repository ships renders cleanly: a malformed table or a broken
section hides text on every page that renders it (PyPI, GitHub, a docs build)."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import docutils.nodes
import docutils.utils
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.rst", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "doc").glob("*.rst"))]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_renders_without_warnings(name):
    # Problems stay in the tree as system_message nodes; nothing is printed or raised.
    doctree = docutils.core.publish_doctree(
        (ROOT / name).read_text(),
        source_path=name,
        settings_overrides={"report_level": docutils.utils.Reporter.SEVERE_LEVEL + 1, "halt_level": 5},
    )
    problems = [
        m.astext()
        for m in doctree.findall(docutils.nodes.system_message)
        if m["level"] >= docutils.utils.Reporter.WARNING_LEVEL
    ]
    assert problems == []
