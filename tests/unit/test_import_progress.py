"""tasks/progress.py: what an import writes to its task, and how often (a fake clock, a list as the task)."""

from __future__ import annotations

import threading

import pytest

from glancelite import errors
from glancelite.tasks.progress import HEARTBEAT_SECONDS, MIB, RESULT_KEY, ImportProgress


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Later:
    """Trailing writes the tracker asked for: (delay, fn), run by the test when it wants."""

    def __init__(self):
        self.pending: list[tuple[float, object]] = []

    def __call__(self, delay, fn):
        self.pending.append((delay, fn))
        return self

    def cancel(self):
        self.pending.clear()

    def run(self):
        pending, self.pending = self.pending, []
        for _delay, fn in pending:
            fn()


def tracker(stores=("fast",), interval=1.0, later=None):
    clock = Clock()
    writes: list[tuple[str, dict]] = []
    progress = ImportProgress(
        lambda message, result: writes.append((message, result)),
        stores,
        interval=interval,
        clock=clock,
        later=later or Later(),
    )
    return progress, clock, writes


def store_view(result, store_id):
    return result[RESULT_KEY]["stores"][store_id]


def test_a_store_copy_is_written_when_it_starts_and_ends():
    progress, _clock, writes = tracker()
    assert store_view(progress.result(), "fast") == {"status": "pending", "bytes_done": 0, "bytes_total": None}
    meter = progress.store_started("fast", 10 * MIB)
    assert store_view(writes[-1][1], "fast") == {"status": "importing", "bytes_done": 0, "bytes_total": 10 * MIB}
    assert writes[-1][0] == "Copied 0 of 10 MiB into fast"
    meter.add(10 * MIB)
    progress.store_ended("fast", ok=True)
    assert store_view(writes[-1][1], "fast") == {"status": "done", "bytes_done": 10 * MIB, "bytes_total": 10 * MIB}
    assert "source" not in writes[-1][1][RESULT_KEY]  # glance-direct: nothing was acquired


def test_time_throttle_holds_back_writes_until_the_interval_passed():
    progress, clock, writes = tracker(interval=1.0)
    meter = progress.store_started("fast", 100 * MIB)
    before = len(writes)
    for _ in range(50):  # 50 % of the data within the same instant: one write at most per interval
        meter.add(MIB)
    assert len(writes) == before
    clock.now += 1.0
    meter.add(MIB)
    assert len(writes) == before + 1
    assert store_view(writes[-1][1], "fast")["bytes_done"] == 51 * MIB


def test_bytes_throttle_holds_back_writes_until_one_percent_moved():
    progress, clock, writes = tracker(interval=0.0)
    meter = progress.store_started("fast", 1000 * MIB)
    before = len(writes)
    for _ in range(9):  # 9 MiB of 1000: below the 1 % step
        clock.now += 0.5
        meter.add(MIB)
    assert len(writes) == before
    clock.now += 0.5
    meter.add(MIB)  # 10 MiB: 1 %
    assert len(writes) == before + 1


def test_heartbeat_writes_a_slow_transfer_every_five_seconds():
    """A transfer too slow for the 1 % step still refreshes the task (import recovery's liveness)."""
    progress, clock, writes = tracker(interval=1.0)
    meter = progress.store_started("fast", 100_000 * MIB)
    before = len(writes)
    clock.now += HEARTBEAT_SECONDS - 0.1
    meter.add(1)
    assert len(writes) == before
    clock.now += 0.1
    meter.add(1)
    assert len(writes) == before + 1 and store_view(writes[-1][1], "fast")["bytes_done"] == 2


def test_values_written_only_grow_and_reach_the_total_across_parallel_stores():
    stores = ("a", "b", "c")
    progress, clock, writes = tracker(stores, interval=0.0)
    total = 64 * MIB

    def copy(store_id):
        meter = progress.store_started(store_id, total)
        for _ in range(total // (64 * 1024)):
            clock.now += 0.001
            meter.add(64 * 1024)
        progress.store_ended(store_id, ok=True)

    threads = [threading.Thread(target=copy, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    order = {"pending": 0, "importing": 1, "done": 2}
    for store_id in stores:
        seen = [store_view(result, store_id) for _message, result in writes]
        done = [v["bytes_done"] for v in seen]
        assert done == sorted(done), store_id
        assert [order[v["status"]] for v in seen] == sorted(order[v["status"]] for v in seen)
        assert seen[-1] == {"status": "done", "bytes_done": total, "bytes_total": total}
    assert len(writes) < 3 * 110  # about one write per 1 % per store, plus the state changes
    assert writes[-1][0] == "3 of 3 stores done"


def test_a_failed_store_is_written_and_named_in_the_message():
    progress, _clock, writes = tracker(("fast", "slow"))
    progress.store_started("fast", MIB).add(MIB)
    progress.store_ended("fast", ok=True)
    progress.store_started("slow", MIB)
    progress.store_ended("slow", ok=False)
    assert store_view(writes[-1][1], "slow")["status"] == "failed"
    assert writes[-1][0] == "1 of 2 stores done; failed: slow"
    progress.mark_failed(["fast"])  # the flow's reverts undid fast's copy
    assert store_view(progress.result(), "fast")["status"] == "failed"


def test_the_source_is_shown_until_a_store_starts():
    progress, clock, writes = tracker(("fast",), interval=0.0)
    source = progress.source_meter("Downloaded", 200 * MIB)
    assert writes[-1] == (
        "Downloaded 0 of 200 MiB",
        {
            RESULT_KEY: {
                "source": {"bytes_done": 0, "bytes_total": 200 * MIB},
                "stores": {"fast": {"status": "pending", "bytes_done": 0, "bytes_total": None}},
            }
        },
    )
    clock.now += 1
    source.add(100 * MIB)
    assert writes[-1][0] == "Downloaded 100 of 200 MiB"
    source.add(100 * MIB)
    progress.store_started("fast", 200 * MIB)
    assert writes[-1][0] == "Copied 0 of 200 MiB into fast"
    assert writes[-1][1][RESULT_KEY]["source"] == {"bytes_done": 200 * MIB, "bytes_total": 200 * MIB}


def test_unknown_source_size_steps_by_64_mib():
    progress, clock, writes = tracker(interval=0.0)
    source = progress.source_meter("Downloaded")
    before = len(writes)
    clock.now += 1
    source.add(63 * MIB)
    assert len(writes) == before
    source.add(MIB)
    assert len(writes) == before + 1 and writes[-1][0] == "Downloaded 64 MiB"


def test_a_lost_task_stops_the_copy_but_not_the_end_of_a_store():
    def lost(message, result):
        raise errors.Conflict("task is failure, not processing")

    progress = ImportProgress(lost, ("fast",), interval=0.0, clock=Clock())
    with pytest.raises(errors.Conflict):
        progress.store_started("fast", MIB)
    progress.store_ended("fast", ok=False)  # does not hide the store's own error


def test_bytes_held_back_by_the_clock_are_written_when_the_interval_is_up():
    """A source that sends a burst and then stalls: the burst still reaches the task."""
    later = Later()
    progress, clock, writes = tracker(interval=1.0, later=later)
    meter = progress.source_meter("Downloaded", 4 * MIB)
    clock.now += 0.3
    meter.add(MIB)
    meter.add(MIB)
    assert writes[-1][0] == "Downloaded 0 of 4 MiB"
    assert [round(delay, 3) for delay, _fn in later.pending] == [0.7]  # one trailing write, not one per chunk
    later.run()
    assert writes[-1][0] == "Downloaded 2 of 4 MiB"
    meter.add(1)  # below the 1 % step: nothing scheduled
    assert later.pending == []
