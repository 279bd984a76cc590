"""The shape of the import flow: where the plugins go, and max_parallel_stores."""

from __future__ import annotations

import types

import pytest
from taskflow.patterns import linear_flow, unordered_flow

from glancelite import errors
from glancelite.settings import Settings
from glancelite.tasks import import_flow, steps
from glancelite.tasks.plan import ImportPlan, Method
from glancelite.tasks.steps import ImportEnv


def build(method=Method.GLANCE_DIRECT, stores=("a",), must_succeed=True, **settings):
    env = ImportEnv(
        settings=Settings(**settings),
        images=None,
        locations=None,
        tasks=None,
        members=None,
        stores=None,
        staging=None,
        work=None,
        ingest=None,
    )
    plan = ImportPlan(
        task_id="t", image_id="i", method=method, stores=tuple(stores), all_stores_must_succeed=must_succeed
    )
    return import_flow.build(env, plan)


def names(flow) -> list[str]:
    return [getattr(item, "name", "") for item in flow]


def test_plugins_run_in_order_between_verification_and_stores():
    flow = build(image_import_plugins=("image_decompression", "no_op", "image_conversion"))
    assert names(flow) == [
        "lock-i",
        "acquire-i",
        "verify-i",
        "image_decompression-i",
        "no_op-i",
        "image_conversion-i",
        "verify-format-i",
        "import-i-a",
        "unstage-i",
        "complete-i",
    ]


def test_copy_image_runs_no_plugin():
    flow = build(Method.COPY_IMAGE, image_import_plugins=("no_op",))
    assert not any(n.startswith(("no_op", "verify-format")) for n in names(flow))


def test_sequential_stores_by_default():
    flow = build(stores=("a", "b", "c"))
    store_steps = [item for item in flow if isinstance(item, steps.ImportToStore)]
    assert [s.store_id for s in store_steps] == ["a", "b", "c"]
    assert [s.activate for s in store_steps] == [False, False, True]


def test_parallel_stores_bounded_then_activated():
    flow = build(stores=("a", "b", "c"), max_parallel_stores=2)
    (group,) = [item for item in flow if isinstance(item, unordered_flow.Flow)]
    chains = list(group)
    assert len(chains) == 2 and all(isinstance(c, linear_flow.Flow) for c in chains)
    assert [[s.store_id for s in chain] for chain in chains] == [["a", "c"], ["b"]]
    assert not any(s.activate for chain in chains for s in chain)
    assert any(isinstance(item, steps.ActivateImage) for item in flow)


def test_parallel_partial_success_activates_each_and_one_store_stays_sequential():
    flow = build(stores=("a", "b"), must_succeed=False, max_parallel_stores=4)
    (group,) = [item for item in flow if isinstance(item, unordered_flow.Flow)]
    assert all(s.activate for chain in group for s in chain)
    assert not any(isinstance(item, steps.ActivateImage) for item in flow)
    assert not any(isinstance(item, unordered_flow.Flow) for item in build(max_parallel_stores=4))


class Recorded:
    """Records the calls CompleteTask makes, in order (the logic of the step; the cluster and
    functional tiers run it on real databases and stores)."""

    def __init__(self, task_status="processing"):
        self.calls: list[str] = []
        self.task_status = task_status

    def update_task(self, task_id, **values):
        self.calls.append(f"task {values['status']}")
        if values["expected_status"] != self.task_status:
            raise errors.Conflict("the task moved on")
        return types.SimpleNamespace(id=task_id, status=values["status"])

    def get_task(self, task_id):
        return types.SimpleNamespace(id=task_id, status=self.task_status)

    def get_image(self, image_id):
        return types.SimpleNamespace(id=image_id, status="active")

    def release(self, task_id):
        self.calls.append("working files released")

    def release_property_lock(self, image_id, prop, task_id):
        self.calls.append("lock released")

    def task(self, event, task):
        self.calls.append(event)


def complete_task(recorded: Recorded) -> None:
    env = types.SimpleNamespace(settings=Settings(), images=recorded, tasks=recorded, work=recorded, events=recorded)
    plan = ImportPlan(task_id="t", image_id="i", method=Method.GLANCE_DIRECT, stores=("a",))
    steps.CompleteTask(env, plan).execute()


def test_a_succeeded_task_has_released_its_working_files_and_the_lock_at_once():
    """Not after taskflow saves the flow's end: the store audit once found a succeeded task's
    working file still there."""
    recorded = Recorded()
    complete_task(recorded)
    assert recorded.calls == ["task success", "working files released", "lock released", "task.success"]


def test_a_resumed_complete_step_of_a_succeeded_task_is_done_not_failed():
    recorded = Recorded(task_status="success")
    complete_task(recorded)  # no Conflict: failing would revert the stores' copies
    assert recorded.calls == ["task success", "working files released", "lock released"]
    with pytest.raises(errors.Conflict):
        complete_task(Recorded(task_status="failure"))
