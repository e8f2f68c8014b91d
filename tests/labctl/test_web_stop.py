"""A stop asked for from another process (``labctl web``): at the next safe point, recorded.

The request is a ``stop_request`` event of the run in the store; the run's
process reads it at every safe point (protocols.runner.StopRequests). Here
the "other process" writes through its own store connection while the
in-process run goes on (the progress callback runs between the steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.progress import StepProgress
from labctl.store import RunStore
from labctl.web.actions import Actions
from protocols import queue as night
from protocols.runner import STOP_REQUEST, resume
from tests.labctl.web_helpers import sim_request, sim_run
from tests.protocols.test_runs import assert_safe

#: The step during which the stop is asked for (the soft bake's transfer; a wafer on a tool).
ASKED_AT = 6


def _asking(data: Path, outcomes: list[Any], *, at: int = ASKED_AT) -> Any:
    """A progress callback that asks for the stop, as the page does, when step ``at`` starts."""

    def progress(event: StepProgress) -> None:
        if event.seq == at and not event.replayed and not outcomes:
            actions = Actions(data)
            try:
                outcomes.append(actions.stop(event.run_id, who="alice", origin="10.0.0.7"))
            finally:
                actions.close()

    return progress


def test_a_stop_from_another_process_ends_the_run_at_the_next_safe_point(tmp_path: Path) -> None:
    asked: list[Any] = []
    outcome = sim_run(tmp_path, progress=_asking(tmp_path, asked))
    (answer,) = asked
    assert answer.status == 202, answer.body
    assert outcome.status == "aborted"
    assert outcome.reason == "stopped by the operator at a safe point"
    store = RunStore(tmp_path, create=False)
    try:
        steps = store.steps(outcome.run_id)
        events = store.events(outcome.run_id)
        wafers = store.wafers(outcome.run_id)
    finally:
        store.close()
    # The step under way when it was asked finished; the next one never started.
    assert [s["seq"] for s in steps] == list(range(1, ASKED_AT + 1))
    assert all(s["status"] == "finished" for s in steps)
    assert all(w["state"] != "quarantined" for w in wafers.values())
    (request,) = [e for e in events if e["kind"] == STOP_REQUEST]
    assert "alice" in request["message"] and "10.0.0.7" in request["message"]
    kinds = [e["kind"] for e in events]
    assert kinds.index(STOP_REQUEST) < kinds.index("safe_state")
    assert_safe(tmp_path)


def test_a_spent_stop_request_does_not_stop_the_resumed_run(tmp_path: Path) -> None:
    asked: list[Any] = []
    stopped = sim_run(tmp_path, progress=_asking(tmp_path, asked))
    assert stopped.status == "aborted"
    outcome = resume(stopped.run_id, tmp_path)
    assert outcome.status == "completed", outcome.reason
    assert outcome.steps_replayed >= ASKED_AT - 2


def test_a_queued_run_stopped_from_the_page_leaves_its_entry_cancelled_and_retryable(
    tmp_path: Path,
) -> None:
    entry = night.add(sim_request(tmp_path))
    asked: list[Any] = []
    summary = night.run_queue(tmp_path, progress=_asking(tmp_path, asked), report=lambda _: None)
    assert asked[0].status == 202
    assert (summary.done, summary.failed, summary.cancelled) == (0, 0, 1)
    store = RunStore(tmp_path, create=False)
    try:
        record = store.queue_entry(entry)
    finally:
        store.close()
    assert record is not None and record["status"] == "cancelled"
    assert "aborted" in record["reason"]
    assert "pending again" in night.retry(tmp_path, entry)


def test_a_stop_for_a_run_that_is_not_running_changes_nothing(tmp_path: Path) -> None:
    outcome = sim_run(tmp_path)
    actions = Actions(tmp_path)
    try:
        answer = actions.stop(outcome.run_id, who="alice", origin="127.0.0.1")
        nameless = actions.stop(outcome.run_id, who="", origin="127.0.0.1")
        bad = actions.stop(outcome.run_id, who="x" * 300, origin="127.0.0.1")
    finally:
        actions.close()
    assert answer.status == 409 and nameless.status == 409 and bad.status == 400
    store = RunStore(tmp_path, create=False)
    try:
        assert STOP_REQUEST not in [e["kind"] for e in store.events(outcome.run_id)]
    finally:
        store.close()
