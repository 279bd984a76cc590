"""glancelite-api's start-up checks run in a forked child: the master stays small, the outcome is the same."""

from __future__ import annotations

import os
import sys

import pytest

from glancelite.cmd import common


def test_a_passing_check_returns_and_leaves_nothing_in_this_process():
    heavy = "pydoc_data.topics"  # stands for alembic: a large module only the checks import
    assert heavy not in sys.modules
    parent = os.getpid()

    def check():
        import pydoc_data.topics  # noqa: F401

        assert os.getpid() != parent
        os.environ["GLANCELITE_TEST_CHILD_RAN"] = "1"

    common.in_child_process(check)
    assert heavy not in sys.modules
    assert "GLANCELITE_TEST_CHILD_RAN" not in os.environ


@pytest.mark.parametrize(("outcome", "status"), [(SystemExit(1), 1), (SystemExit(3), 3), (RuntimeError("x"), 1)])
def test_a_failing_check_stops_with_its_status(outcome, status, capfd):
    def check():
        raise outcome

    with pytest.raises(SystemExit) as stopped:
        common.in_child_process(check)
    assert stopped.value.code == status
    if isinstance(outcome, RuntimeError):
        assert "RuntimeError: x" in capfd.readouterr().err


def test_a_message_exit_is_printed(capfd):
    def check():
        raise SystemExit("glancelite: the database is behind this code")

    with pytest.raises(SystemExit) as stopped:
        common.in_child_process(check)
    assert stopped.value.code == 1
    assert "the database is behind this code" in capfd.readouterr().err
