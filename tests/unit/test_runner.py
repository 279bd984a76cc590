"""The import runner: one executor per process, the stop file, failure and cleanup hooks."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from oslo_context import context as oslo_context
from taskflow import task as tf_task
from taskflow.patterns import linear_flow

from glancelite import errors
from glancelite.context import RequestContext, bind_to_logs, unbind_from_logs
from glancelite.tasks import runner as runner_mod
from glancelite.tasks.plan import ImportPlan, Method


class Recorder(tf_task.Task):
    def __init__(self, name, log, fail=False, gate=None, fail_revert=False):
        super().__init__(name=name)
        self.log, self.fail, self.gate, self.fail_revert = log, fail, gate, fail_revert

    def execute(self):
        if self.gate is not None:
            self.gate.wait(10)
        self.log.append(f"do {self.name}")
        if self.fail:
            raise errors.Invalid(f"{self.name} failed")

    def revert(self, *args, **kwargs):
        self.log.append(f"undo {self.name}")
        if self.fail_revert:
            raise RuntimeError(f"undoing {self.name} failed")


class Flows:
    def __init__(self, fail_at=None, gate=None, fail_revert_of=None, fail_build=False):
        self.log: list[str] = []
        self.fail_at, self.gate, self.fail_revert_of, self.fail_build = fail_at, gate, fail_revert_of, fail_build
        self.done = threading.Event()

    def started(self, plan):
        self.log.append("started")

    def build(self, plan):
        if self.fail_build:
            raise errors.Invalid("no flow for this plan")
        flow = linear_flow.Flow("test")
        for name in ("a", "b", "c"):
            flow.add(
                Recorder(
                    name,
                    self.log,
                    fail=name == self.fail_at,
                    gate=self.gate if name == "a" else None,
                    fail_revert=name == self.fail_revert_of,
                )
            )
        return flow

    def failed(self, plan, exc):
        self.log.append(f"failed: {exc}")

    def finished(self, plan):
        self.log.append("finished")
        self.done.set()

    def ended(self, plan, outcome, seconds):
        assert seconds >= 0
        self.log.append(f"ended: {outcome}")


def plan(task_id="t1"):
    return ImportPlan(task_id=task_id, image_id="i", method=Method.WEB_DOWNLOAD, stores=("fast",))


@pytest.fixture(params=["serial", "parallel"])
def runner(request, tmp_path):
    r = runner_mod.Runner(max_workers=2, engine_mode=request.param, stop_file=str(tmp_path / "stop"))
    yield r
    r.shutdown()


def test_success_runs_steps_in_order(runner):
    flows = Flows()
    runner.submit(plan(), flows).result(10)
    assert flows.log == ["started", "do a", "do b", "do c", "finished", "ended: succeeded"]


def test_failure_reverts_what_ran_then_reports(runner):
    flows = Flows(fail_at="b")
    runner.submit(plan(), flows).result(10)
    assert flows.log[:3] == ["started", "do a", "do b"]
    assert flows.log[3:5] == ["undo b", "undo a"]
    assert flows.log[5].startswith("failed:") and "b failed" in flows.log[5]
    assert flows.log[6:] == ["finished", "ended: reverted"]


def test_a_revert_that_fails_ends_failed(runner):
    """The metrics' outcome: "reverted" only when every step that ran was undone."""
    flows = Flows(fail_at="b", fail_revert_of="a")
    runner.submit(plan(), flows).result(10)
    assert "undo a" in flows.log
    assert flows.log[-2:] == ["finished", "ended: failed"]


def test_a_flow_that_cannot_be_built_ends_failed(runner):
    flows = Flows(fail_build=True)
    runner.submit(plan(), flows).result(10)
    assert flows.log[0] == "started" and flows.log[1].startswith("failed:")
    assert flows.log[-2:] == ["finished", "ended: failed"]


def test_stop_file_refuses_new_jobs_lets_running_finish(runner, tmp_path):
    gate = threading.Event()
    running = Flows(gate=gate)
    future = runner.submit(plan("running"), running)
    (tmp_path / "stop").touch()
    assert runner.draining
    with pytest.raises(errors.Unavailable) as exc:
        runner.submit(plan("new"), Flows())
    assert "Retry-After" in exc.value.headers and "drained" in exc.value.message
    gate.set()
    future.result(10)
    assert running.log[-2:] == ["finished", "ended: succeeded"]
    (tmp_path / "stop").unlink()
    assert not runner.draining
    again = Flows()
    runner.submit(plan("again"), again).result(10)
    assert again.log[-2:] == ["finished", "ended: succeeded"]


def test_shutdown_refuses_and_waits(tmp_path):
    r = runner_mod.Runner(max_workers=1, engine_mode="serial")
    gate = threading.Event()
    flows = Flows(gate=gate)
    r.submit(plan(), flows)
    threading.Timer(0.2, gate.set).start()
    r.shutdown(wait=True)
    assert flows.log[-2] == "finished"
    with pytest.raises(errors.Unavailable):
        r.submit(plan("late"), Flows())


def test_one_runner_per_process():
    first = runner_mod.for_process(max_workers=2, engine_mode="serial", stop_file=None)
    try:
        assert runner_mod.for_process(max_workers=5, engine_mode="parallel", stop_file=None) is first
    finally:
        first.shutdown()
    fresh = runner_mod.for_process(max_workers=2, engine_mode="serial", stop_file=None)
    try:
        assert fresh is not first
    finally:
        fresh.shutdown()


class ContextRecorder(tf_task.Task):
    """Records the log context (oslo.context's thread-local) the step runs under."""

    def __init__(self, name, seen):
        super().__init__(name=name)
        self.seen = seen

    def execute(self):
        current = oslo_context.get_current()
        self.seen.append((threading.current_thread().name, current.request_id if current else None))


class ContextFlows(Flows):
    def build(self, plan):
        flow = linear_flow.Flow("context")
        self.seen: list = []
        for name in ("a", "b"):
            flow.add(ContextRecorder(name, self.seen))
        return flow


def test_steps_log_under_the_context_of_the_request_that_submitted_them(runner):
    request = RequestContext(project_id="p", user_id="u", request_id="req-import-1")
    bind_to_logs(request)
    try:
        flows = ContextFlows()
        runner.submit(plan(), flows).result(10)
    finally:
        unbind_from_logs()
    assert [rid for _thread, rid in flows.seen] == ["req-import-1", "req-import-1"]
    assert all(thread != threading.current_thread().name for thread, _rid in flows.seen)
    # The executor's threads do not keep it for the next job, submitted outside any request.
    later = ContextFlows()
    runner.submit(plan("t2"), later).result(10)
    assert [rid for _thread, rid in later.seen] == [None, None]


class FlowsDuringOutage(Flows):
    """Recording the failure meets the database gone ``outage`` times, then works."""

    def __init__(self, outage: int):
        super().__init__(fail_at="b")
        self.outage = outage

    def failed(self, plan, exc):
        if self.outage:
            self.outage -= 1
            self.log.append("failed: database away")
            raise errors.Unavailable("The database is unavailable.")
        super().failed(plan, exc)


def test_bookkeeping_is_retried_until_the_database_answers(runner, monkeypatch):
    """A task whose failure cannot be recorded is not left processing with its image locked."""
    monkeypatch.setattr(runner_mod, "SETTLE_RETRY_FIRST", 0.01)
    flows = FlowsDuringOutage(outage=2)
    runner.submit(plan(), flows).result(10)
    assert flows.done.wait(10)
    settling = [entry for entry in flows.log[5:] if not entry.startswith("ended:")]
    assert settling == ["failed: database away", "failed: database away", "failed: b failed", "finished"]
    assert [entry for entry in flows.log if entry.startswith("ended:")] == ["ended: reverted"]  # counted once


def test_drain_process_runner_lets_running_imports_finish():
    """gunicorn's worker_exit hook: running imports finish while executors still take work."""
    process_runner = runner_mod.for_process(max_workers=1, engine_mode="parallel", stop_file=None)
    gate = threading.Event()
    flows = Flows(gate=gate)
    process_runner.submit(plan(), flows)
    threading.Timer(0.2, gate.set).start()
    runner_mod.drain_process_runner()
    assert flows.log[-2:] == ["finished", "ended: succeeded"]
    with pytest.raises(errors.Unavailable):
        process_runner.submit(plan("late"), Flows())


class _StorageAway(Exception):
    """Stands for taskflow's StorageFailure: the flow's persisted state cannot be written."""


def test_a_transient_failure_is_left_unsettled_for_a_later_claim():
    """The job board's conductor: the task is neither failed nor cleaned up, so the job resumes."""
    flows = Flows()

    def load():
        raise _StorageAway("persistence away")

    with pytest.raises(_StorageAway):
        runner_mod.execute(plan(), flows, load, transient=lambda exc: isinstance(exc, _StorageAway))
    assert flows.log == ["started"]


def test_a_job_tracked_by_the_conductor_counts_as_running_and_stops_with_the_runner(tmp_path):
    runner = runner_mod.Runner(max_workers=1, stop_file=str(tmp_path / "stop"))
    gate, stopped = threading.Event(), []
    runner.before_shutdown.append(lambda: stopped.append("conductor stops claiming"))
    future = runner.track("t9", gate.wait, 10)
    assert runner.running() == ["t9"]
    (tmp_path / "stop").touch()
    with pytest.raises(errors.Unavailable):
        runner.track("t10", gate.wait, 10)  # a draining runner takes no job from the conductor either
    gate.set()
    future.result(10)
    runner.shutdown()
    assert stopped == ["conductor stops claiming"]
    assert runner.running() == []


# A fresh interpreter, as a worker is before its first import: this test process has eventlet already.
FIRST_JOB_FROM_A_REQUEST_THREAD = """
import os, sys, threading
from taskflow import task
from taskflow.patterns import linear_flow
from glancelite.tasks.runner import Runner

class Step(task.Task):
    def execute(self):
        pass

def request():
    runner = Runner(max_workers=2)
    runner.run_flow(linear_flow.Flow("f").add(Step("s")))
    runner.shutdown()

thread = threading.Thread(target=request)
thread.start()
thread.join(60)
print(thread.is_alive(), "eventlet" in sys.modules, flush=True)
os._exit(0)  # a thread that never counts as ended would hang a normal exit
"""


def test_the_first_job_loads_taskflow_in_a_request_thread_without_eventlet():
    """eventlet imported from a request thread leaves that thread never ending, so the gunicorn
    worker hung at exit until it was killed (the structured logging test's stop() == -9)."""
    out = subprocess.run(
        [sys.executable, "-c", FIRST_JOB_FROM_A_REQUEST_THREAD], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    thread_alive, eventlet_loaded = out.stdout.split()
    assert (thread_alive, eventlet_loaded) == ("False", "False")
