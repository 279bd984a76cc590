"""store/cleanup.py: removals a failed add could not do, retried until the backend answers."""

from __future__ import annotations

import threading
import time

from glancelite.store import base
from glancelite.store.cleanup import PendingRemovals


class Flaky:
    """A removal that fails ``failures`` times (the backend away), then succeeds."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, 0
        self.done = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise base.StoreUnavailable("backend away")
        self.done.set()


def test_retried_in_the_background_until_it_succeeds():
    removals = PendingRemovals("s", delays=(0.01,))
    removal = Flaky(3)
    removals.defer("img", "partial img", removal)
    assert removal.done.wait(5)
    assert removal.calls == 4
    end = time.monotonic() + 5
    while removals.pending() and time.monotonic() < end:
        time.sleep(0.01)
    assert removals.pending() == []


def test_settle_runs_the_pending_removal_of_one_image_now():
    removals = PendingRemovals("s", delays=(60.0,))  # the background attempt would come much later
    removals.defer("img", "partial img", Flaky(1))
    assert removals.settle("img") is False  # failed once more: still pending
    assert removals.pending() == ["partial img"]
    assert removals.settle("img") is True
    assert removals.pending() == []
    assert removals.settle("other") is True  # nothing pending for it


def test_gives_up_after_its_time_leaving_it_to_the_audit():
    now = [0.0]
    removals = PendingRemovals("s", delays=(0.01,), give_up_after=10, clock=lambda: now[0])
    removal = Flaky(10**9)
    removals.defer("img", "partial img", removal)
    while removal.calls < 2:
        time.sleep(0.01)
    now[0] = 11.0
    end = time.monotonic() + 5
    while removals.pending() and time.monotonic() < end:
        time.sleep(0.01)
    assert removals.pending() == []
    calls = removal.calls
    time.sleep(0.1)
    assert removal.calls == calls  # no more attempts


def test_data_already_gone_counts_as_removed():
    removals = PendingRemovals("s", delays=(60.0,))

    def gone() -> None:
        raise base.StoreNotFound("no such object")

    removals.defer("img", "partial img", gone)
    assert removals.settle("img") is True
    assert removals.pending() == []
