"""Unattended runs replace a wafer a crash quarantined, and resume takes the same path.

A run killed during the coat resumes with its wafer quarantined (its state is
unknown); unattended, the part of the experiment that wafer carried starts
again on a new wafer from the cassette (``W01`` -> ``W01-r1``), the run
completes, and nothing physical is done twice on any wafer - checked from the
journal and from the virtual bench's own record of what it did to each wafer.
The spare wafers are bounded (``spare_wafers``); an attended run keeps its
quarantine for the operator.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from labctl.analysis import contrast_from_store, result_rows
from labctl.clock import VirtualClock
from labctl.engine import Run, WaferQuarantined
from labctl.store import RunStore
from protocols import steps
from sim_instruments.bench import VirtualBench
from tests.cli import fast_contrast_curve, labctl
from tests.protocols.conftest import BASELINE, FAST

#: Steps of the fast contrast curve: W01 is steps 1-30; a replacement's steps
#: follow the step that quarantined the wafer it replaces.
COAT = 3  # W01's coat
REPLACEMENT_COAT = COAT + 3  # W01-r1: new wafer 4, transfer 5, coat 6
SECOND_REPLACEMENT_MEASURE = REPLACEMENT_COAT + 9  # W01-r2: 7..14, its first measure 15
#: Physical steps a wafer undergoes once at most (exposures once per field).
ONCE_PER_WAFER = ("new wafer", "coat", "soft bake", "post-exposure bake", "develop", "expose")


def kill_at(seq: int, *, once: Path | None = None) -> dict[str, str]:
    """The environment that has the run process SIGKILLed inside step ``seq``."""
    spec = f"seq={seq},phase=during" + (f",once={once}" if once is not None else "")
    return {"LABCTL_INJECT_KILL": spec}


def only_run(data: Path) -> dict[str, Any]:
    store = RunStore(data)
    try:
        (record,) = store.runs()
        return store.run(record["run_id"])
    finally:
        store.close()


def resume(data: Path, run_id: str, environment: dict[str, str] | None = None) -> Any:
    return labctl("resume", run_id, "--data", str(data), environment=environment, timeout=120)


def assert_nothing_physical_twice(data: Path, run_id: str) -> None:
    """From the journal and from the bench: every physical step at most once per wafer."""
    store = RunStore(data)
    try:
        steps = store.steps(run_id)
        rows = store.measurement_rows(run_id)
    finally:
        store.close()
    once = Counter(
        (s["wafer_id"], s["name"], s["parameters"].get("field"))
        for s in steps
        if s["name"] in ONCE_PER_WAFER
    )
    assert max(once.values()) == 1, [k for k, n in once.items() if n > 1]
    measured = Counter((r["wafer_id"], r["label"], r["site"]) for r in rows)
    assert max(measured.values(), default=1) == 1
    bench = VirtualBench(data_dir=data)
    try:
        mine = {k: w for k, w in bench.wafers.items() if k.startswith(f"{run_id}/")}
        assert mine
        for wafer in mine.values():
            events = Counter(e[1] for e in wafer.events)
            assert events["created"] == 1 and events["dispense"] <= 1
            loads = Counter(e[2] for e in wafer.events if e[1] == "load")
            assert loads["spin_coater"] <= 2 and loads["hotplate"] <= 2
            assert loads["exposure_stage"] <= 1
            fields = Counter((round(e.x, 3), round(e.y, 3)) for e in wafer.exposures)
            assert max(fields.values(), default=1) == 1
            developer = [e for e in wafer.events if e[1] == "puddle" and e[2] == "developer"]
            assert len(developer) <= 1
        # The tools are free and the bench safe.
        assert all(holder is None for holder in bench.holders.values()), bench.holders
        report = bench.safe_state_report()
        assert not report["spin_coater"]["motor_on"] and report["hotplate"]["idle"]
    finally:
        bench.close()


def bench_wafers(data: Path, run_id: str) -> list[str]:
    """The wafers the bench made for a run (its own record), by their run-local ids."""
    bench = VirtualBench(data_dir=data)
    try:
        return sorted(k.split("/", 1)[1] for k in bench.wafers if k.startswith(f"{run_id}/"))
    finally:
        bench.close()


def test_a_kill_in_the_coat_of_a_queued_run_completes_on_the_next_wafer(tmp_path: Path) -> None:
    """queue add --sim; queue run; kill -9 in the coat; the queue resumes; the run completes."""
    overrides = [item for value in FAST for item in ("--set", value)]
    added = labctl(
        "queue",
        "add",
        "contrast-curve",
        "--sim",
        "--formulation",
        str(BASELINE),
        "--data",
        str(tmp_path),
        *overrides,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    marker = tmp_path / "struck"
    night = labctl("queue", "run", "--data", str(tmp_path), environment=kill_at(COAT, once=marker))
    output = night.stdout + night.stderr
    assert marker.exists(), output  # the coat was struck
    assert "died of SIGKILL" in output and "Traceback" not in output
    assert night.returncode == 0, output

    record = only_run(tmp_path)  # resumed, never started again
    run_id = record["run_id"]
    assert record["status"] == "completed", record["reason"]
    assert "wafer W01-r1 replaced W01" in record["reason"]
    store = RunStore(tmp_path)
    try:
        wafers = store.wafers(run_id)
        steps = store.steps(run_id)
        events = store.events(run_id)
        rows = store.measurement_rows(run_id)
    finally:
        store.close()
    # The quarantined wafer stays recorded: its state, its reason, its steps.
    assert wafers["W01"]["state"] == "quarantined"
    assert "coat" in wafers["W01"]["reason"] and "never finished" in wafers["W01"]["reason"]
    assert wafers["W01"]["replaces"] is None
    assert [(s["seq"], s["name"], s["status"]) for s in steps if s["wafer_id"] == "W01"] == [
        (1, "new wafer", "finished"),
        (2, "transfer", "finished"),
        (3, "coat", "interrupted"),
    ]
    # The replacement is linked to it, in the wafers table, the journal and an event.
    assert (wafers["W01-r1"]["state"], wafers["W01-r1"]["replaces"]) == ("done", "W01")
    assert (steps[COAT]["name"], steps[COAT]["wafer_id"]) == ("new wafer", "W01-r1")
    assert steps[COAT]["parameters"] == {"replaces": "W01"}
    replaced = [e["message"] for e in events if e["kind"] == "replace"]
    assert len(replaced) == 1 and replaced[0].startswith("wafer W01-r1 replaces W01")
    # The experiment is the replacement's: 6 fields before and after.
    assert {r["wafer_id"] for r in rows} == {"W01-r1"} and len(rows) == 12
    assert_nothing_physical_twice(tmp_path, run_id)
    assert bench_wafers(tmp_path, run_id) == ["W01", "W01-r1"]

    # A second queue run has nothing left to do and changes nothing.
    again = labctl("queue", "run", "--data", str(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert only_run(tmp_path)["status"] == "completed"
    assert bench_wafers(tmp_path, run_id) == ["W01", "W01-r1"]


def test_run_sim_killed_three_times_replays_every_decision_from_the_journal(
    tmp_path: Path,
) -> None:
    """kill in W01's coat, in W01-r1's coat, in W01-r2's measurement: same path each resume."""
    killed = labctl(*fast_contrast_curve(tmp_path), environment=kill_at(COAT))
    assert killed.returncode == 1 and "died of SIGKILL" in killed.stderr, killed.stderr
    run_id = only_run(tmp_path)["run_id"]

    second = resume(tmp_path, run_id, kill_at(REPLACEMENT_COAT))
    assert "died of SIGKILL" in second.stderr, second.stdout + second.stderr
    assert bench_wafers(tmp_path, run_id) == ["W01", "W01-r1"]

    third = resume(tmp_path, run_id, kill_at(SECOND_REPLACEMENT_MEASURE))
    assert "died of SIGKILL" in third.stderr, third.stdout + third.stderr
    store = RunStore(tmp_path)
    try:
        before_last = [(s["seq"], s["name"], s["wafer_id"]) for s in store.steps(run_id)]
    finally:
        store.close()

    last = resume(tmp_path, run_id)
    assert last.returncode == 0, last.stdout + last.stderr
    record = only_run(tmp_path)
    assert record["status"] == "completed", record["reason"]
    assert "wafer W01-r1 replaced W01; wafer W01-r2 replaced W01-r1" in record["reason"]
    store = RunStore(tmp_path)
    try:
        steps = store.steps(run_id)
        wafers = store.wafers(run_id)
        events = store.events(run_id)
        rows = store.measurement_rows(run_id)
    finally:
        store.close()
    # The last resume followed the journal: the same steps, in the same order, on
    # the same wafers as before it, then went on where the journal ended.
    assert [(s["seq"], s["name"], s["wafer_id"]) for s in steps][: len(before_last)] == (
        before_last
    )
    assert {w: (i["state"], i["replaces"]) for w, i in wafers.items()} == {
        "W01": ("quarantined", None),
        "W01-r1": ("quarantined", "W01"),
        "W01-r2": ("done", "W01-r1"),
    }
    assert [s["seq"] for s in steps if s["status"] == "interrupted"] == [COAT, REPLACEMENT_COAT]
    replaced = [e["message"] for e in events if e["kind"] == "replace"]
    assert [m.split(" (")[0] for m in replaced] == [
        "wafer W01-r1 replaces W01",
        "wafer W01-r2 replaces W01-r1",
    ]  # each decided once, however often it was replayed
    assert "spare 2 of 2" in replaced[1]
    assert {r["wafer_id"] for r in rows} == {"W01-r2"} and len(rows) == 12
    assert bench_wafers(tmp_path, run_id) == ["W01", "W01-r1", "W01-r2"]
    assert_nothing_physical_twice(tmp_path, run_id)
    shown = labctl("show", run_id, "--data", str(tmp_path))
    assert "W01-r1: quarantined (replaces W01) (replaced by W01-r2)" in shown.stdout
    assert "W01-r2: done (replaces W01-r1)" in shown.stdout


def test_when_the_spares_run_out_the_run_ends_incomplete_saying_why(tmp_path: Path) -> None:
    arguments = [*fast_contrast_curve(tmp_path), "--set", "spare_wafers=1"]
    killed = labctl(*arguments, environment=kill_at(COAT))
    assert "died of SIGKILL" in killed.stderr, killed.stderr
    run_id = only_run(tmp_path)["run_id"]
    second = resume(tmp_path, run_id, kill_at(REPLACEMENT_COAT))
    assert "died of SIGKILL" in second.stderr, second.stdout + second.stderr

    for _ in range(2):  # and a resume of the incomplete run decides the same
        ended = resume(tmp_path, run_id)
        assert "Traceback" not in ended.stdout + ended.stderr
        record = only_run(tmp_path)
        assert record["status"] == "incomplete", record["reason"]
        assert "W01-r1: step 6 (coat) started and never finished" in record["reason"]
        assert "not replaced: no spare wafer left (spare_wafers = 1, all used)" in record["reason"]
        assert "wafer W01-r1 replaced W01" in record["reason"]
        assert bench_wafers(tmp_path, run_id) == ["W01", "W01-r1"]  # no third wafer
    store = RunStore(tmp_path)
    try:
        steps = store.steps(run_id)
        events = [e for e in store.events(run_id) if e["kind"] == "replace"]
        wafers = store.wafers(run_id)
    finally:
        store.close()
    assert len(steps) == REPLACEMENT_COAT  # nothing after the second quarantine
    assert [w["state"] for w in wafers.values()] == ["quarantined", "quarantined"]
    assert sum("not replaced" in e["message"] for e in events) == 1  # said once
    assert_nothing_physical_twice(tmp_path, run_id)


def test_no_spares_is_the_old_behaviour(tmp_path: Path) -> None:
    arguments = [*fast_contrast_curve(tmp_path), "--set", "spare_wafers=0"]
    killed = labctl(*arguments, environment=kill_at(COAT))
    assert "died of SIGKILL" in killed.stderr, killed.stderr
    run_id = only_run(tmp_path)["run_id"]
    resume(tmp_path, run_id)
    record = only_run(tmp_path)
    assert record["status"] == "incomplete", record["reason"]
    assert "not replaced: no spare wafers (spare_wafers = 0)" in record["reason"]
    assert bench_wafers(tmp_path, run_id) == ["W01"]


def test_the_analysis_uses_the_replacement_not_the_quarantined_wafer(tmp_path: Path) -> None:
    """Killed mid PEB: W01 was measured before exposure; the results are W01-r1's alone."""
    killed = labctl(*fast_contrast_curve(tmp_path), environment=kill_at(23))
    assert "died of SIGKILL" in killed.stderr, killed.stderr
    run_id = only_run(tmp_path)["run_id"]
    assert resume(tmp_path, run_id).returncode == 0
    store = RunStore(tmp_path)
    try:
        everything = store.measurement_rows(run_id)
        used = result_rows(store, run_id)
        result = contrast_from_store(store, run_id)
    finally:
        store.close()
    assert sum(r["wafer_id"] == "W01" for r in everything) == 6  # kept in the store
    assert {r["wafer_id"] for r in used} == {"W01-r1"} and len(used) == 12
    assert len(result.doses) == 6
    out = tmp_path / "report.html"
    report = labctl("report", run_id, "--data", str(tmp_path), "--out", str(out))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "wafer W01-r1 replaced the quarantined wafer W01" in report.stdout
    assert "<td>W01-r1</td><td>done</td><td>W01</td>" in out.read_text(encoding="utf-8")


# -- the engine's decision, without a bench ----------------------------------------------


class _Handler:
    """Creates wafers and says they are in the cassette; attended or not."""

    def __init__(self, attended: bool) -> None:
        self.attended = attended
        self.made: list[str] = []

    def new_wafer(self, wafer_id: str) -> None:
        self.made.append(wafer_id)

    def load(self, wafer_id: str, station: str) -> None:
        raise AssertionError("nothing is loaded here")

    def unload(self, station: str) -> None:
        raise AssertionError("nothing is unloaded here")

    def manual(self, action: str) -> None:
        raise AssertionError("nothing manual here")

    def where(self, wafer_id: str) -> str | None:
        return "cassette" if wafer_id in self.made else None


def _run(store: RunStore, handler: _Handler, spares: int = 2) -> Run:
    return Run(
        store=store,
        run_id="R",
        station=None,
        clock=VirtualClock(),
        handler=handler,
        parameters={"spare_wafers": spares},
    )


def _store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path)
    store.create_run(
        {
            "run_id": "R",
            "protocol": "test",
            "parameters": {},
            "software": {},
            "operator": "test",
            "attended": False,
            "simulated": True,
        }
    )
    return store


def _part(run: Run, bad: set[str], seen: list[str]) -> Any:
    """A wafer's part: a new wafer, then a quarantine for the wafers in ``bad``."""

    def part(wafer: str) -> str:
        seen.append(wafer)
        steps.new_wafer(run, wafer)
        if wafer in bad:
            run.quarantine(wafer, "test: state unknown")
            raise WaferQuarantined(wafer, "test: state unknown")
        return f"result of {wafer}"

    return part


@pytest.mark.parametrize("attended", [True, False])
def test_only_an_unattended_run_replaces_a_wafer(tmp_path: Path, attended: bool) -> None:
    store = _store(tmp_path)
    run = _run(store, _Handler(attended))
    seen: list[str] = []
    done = run.wafer_part("W1", _part(run, {"W1"}, seen))
    if attended:  # today's behaviour: the operator decides about the slot
        assert done is None and seen == ["W1"] and not run.replacements
        assert "W1-r1" not in store.wafers("R")
    else:
        assert done == ("W1-r1", "result of W1-r1") and seen == ["W1", "W1-r1"]
        assert store.wafers("R")["W1-r1"]["replaces"] == "W1"
        assert store.steps("R")[1]["parameters"] == {"replaces": "W1"}
    store.close()


def test_the_journal_decides_over_a_new_decision(tmp_path: Path) -> None:
    """A journal that went on without a replacement (no spare then) keeps that path."""
    store = _store(tmp_path)
    first = _run(store, _Handler(False), spares=0)
    seen: list[str] = []
    assert first.wafer_part("W1", _part(first, {"W1"}, seen)) is None
    assert first.wafer_part("W2", _part(first, set(), seen)) == ("W2", "result of W2")
    # Resumed with spares to give (as if the parameter were read differently now):
    # the journal's next step after W1's is W2's, so W1 is not replaced.
    again = _run(store, _Handler(False), spares=2)
    seen = []
    assert again.wafer_part("W1", _part(again, {"W1"}, seen)) is None
    assert again.wafer_part("W2", _part(again, set(), seen)) == ("W2", "result of W2")
    assert seen == ["W1", "W2"] and not again.replacements
    assert again.unreplaced == {"W1": "the journal went on without a replacement"}
    store.close()


def test_a_replacement_name_never_reuses_a_wafer_id_of_the_run(tmp_path: Path) -> None:
    store = _store(tmp_path)
    run = _run(store, _Handler(False))
    seen: list[str] = []
    # The run's own protocol named a wafer like a replacement, before.
    assert run.wafer_part("W1-r1", _part(run, set(), seen)) == ("W1-r1", "result of W1-r1")
    assert run.wafer_part("W1", _part(run, {"W1"}, seen)) == ("W1-r2", "result of W1-r2")
    assert store.wafers("R")["W1-r2"]["replaces"] == "W1"
    store.close()


def test_spare_wafers_is_a_declared_parameter_of_every_protocol() -> None:
    from protocols.experiments import PROTOCOLS

    for protocol in PROTOCOLS.values():
        (spares,) = [p for p in protocol.parameters if p.name == "spare_wafers"]
        assert (spares.default, spares.low, spares.high) == (2, 0, 8)


def test_a_bad_spare_count_is_refused_before_anything_moves(tmp_path: Path) -> None:
    refused = labctl(*fast_contrast_curve(tmp_path), "--set", "spare_wafers=-1")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "spare_wafers" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bench").exists()


def test_a_store_made_before_the_replaces_column_gets_it_when_opened(tmp_path: Path) -> None:
    import sqlite3

    store = _store(tmp_path)
    store.set_wafer("R", "W1", "quarantined", "test")
    store.close()
    db = sqlite3.connect(tmp_path / RunStore.FILENAME)
    db.executescript(  # the wafers table as schema version 1 first made it
        "CREATE TABLE old (run_id TEXT NOT NULL REFERENCES runs(run_id),"
        " wafer_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,"
        " PRIMARY KEY (run_id, wafer_id));"
        " INSERT INTO old SELECT run_id, wafer_id, state, reason FROM wafers;"
        " DROP TABLE wafers; ALTER TABLE old RENAME TO wafers;"
    )
    db.close()
    store = RunStore(tmp_path)
    try:
        assert store.wafers("R")["W1"] == {
            "run_id": "R",
            "wafer_id": "W1",
            "state": "quarantined",
            "reason": "test",
            "replaces": None,
        }
        store.set_wafer("R", "W1-r1", "pending", replaces="W1")
        assert store.wafers("R")["W1-r1"]["replaces"] == "W1"
    finally:
        store.close()
