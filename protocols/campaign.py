"""The fault campaign: overnight queues on the virtual bench with one fault class each.

For every fault class a fresh data directory gets a queue of contrast-curve
runs; the fault strikes at a seeded random moment; the queue runs (and, for
a killed process, is restarted). Then the campaign counts, from the store and
from the simulators' own records:

* measurements lost - finished measurement steps whose rows are missing;
* physical steps repeated - a wafer dispensed, exposed at one field, baked or
  developed more often than its protocol asks;
* safe state reached vs needed - the bench safe at the end of every run that
  did not complete, read from the simulators;
* failures recorded with a reason - every run not completed has a status and
  a reason, every quarantined wafer a reason.

Target: 0, 0, all, all. ``labctl sim campaign`` runs it; ``--runs`` makes the
nights longer. (It lives in ``protocols`` because it drives whole runs; the
simulators themselves stay free of protocol and driver code.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.private import private_dir
from labctl.store import RunStore
from sim_instruments.bench import VirtualBench

__all__ = ["FAULT_CLASSES", "ClassResult", "run_campaign"]

#: Each class: (bench role or None, bench fault kind or special), how it is injected.
FAULT_CLASSES: dict[str, tuple[str | None, str]] = {
    "no reply": ("hotplate", "no_reply"),
    "late reply": ("spin_coater", "late_reply"),
    "garbled reply": ("exposure_stage", "garbled_reply"),
    "lost link": ("exposure_shutter", "link_lost"),
    "instrument error": ("ellipsometer", "instrument_error"),
    "heater runaway": ("hotplate", "heater_runaway"),
    "lamp failure": ("exposure_source", "lamp_failure"),
    "spinner stall": ("spin_coater", "spinner_stall"),
    "process killed": (None, "kill"),
    "data disk write fails": (None, "disk"),
}
#: Fast contrast-curve parameters for campaign runs.
RUN_OVERRIDES = (
    "fields=6",
    "dose_min=10 mJ/cm**2",
    "dose_max=120 mJ/cm**2",
    "coat_time=20 s",
    "soft_bake_time=30 s",
    "peb_time=60 s",
)
STEPS_PER_RUN = 29
#: Bench seconds one fast run takes (for placing faults in time).
SECONDS_PER_RUN = 520.0


@dataclass
class ClassResult:
    fault: str
    runs: int
    completed: int
    measurements_lost: int
    steps_repeated: int
    safe_needed: int
    safe_reached: int
    failures: int
    failures_with_reason: int

    def ok(self) -> bool:
        return (
            self.measurements_lost == 0
            and self.steps_repeated == 0
            and self.safe_reached == self.safe_needed
            and self.failures_with_reason == self.failures
        )


def _queue(data: Path, formulation: Path, runs: int) -> None:
    from protocols.queue import add
    from protocols.runner import RunRequest

    for _ in range(runs):
        add(
            RunRequest(
                protocol="contrast-curve",
                data_dir=data,
                formulation=formulation,
                sim=True,
                overrides=RUN_OVERRIDES,
            )
        )


def _run_queue_process(data: Path, environment: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )
    return result.returncode


def _failing_disk(data: Path, after_commits: int) -> Any:
    """Make the run store's writes fail after ``after_commits`` commits (a full disk)."""
    from labctl import store as store_module

    original = store_module.RunStore._transaction
    state = {"commits": 0}

    def transaction(self: Any) -> Any:
        state["commits"] += 1
        if state["commits"] > after_commits:
            raise store_module.StoreError(f"{self.path}: write failed: disk I/O error (injected)")
        return original(self)

    store_module.RunStore._transaction = transaction  # type: ignore[method-assign]
    return lambda: setattr(store_module.RunStore, "_transaction", original)


def _bench_is_safe(data: Path) -> bool:
    """The simulators' own view: motor off, source off, shutter closed, plate idle."""
    report = VirtualBench(data_dir=data).safe_state_report()
    return bool(
        not report["spin_coater"]["motor_on"]
        and not report["exposure_source"]["output"]
        and not report["exposure_shutter"]["open"]
        and report["hotplate"]["idle"]
    )


class _SafeCounter:
    """After every queue entry that did not complete: was the bench left safe?"""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.needed = 0
        self.reached = 0

    def __call__(self, entry_id: int, status: str) -> None:
        if status != "completed":
            self.needed += 1
            self.reached += _bench_is_safe(self.data)


def _examine(data: Path, fault: str, runs: int, safety: _SafeCounter) -> ClassResult:
    store = RunStore(data)
    bench = VirtualBench(data_dir=data)
    records = store.runs()
    lost = repeated = failures = with_reason = completed = 0
    for record in records:
        run_id = record["run_id"]
        steps = store.steps(run_id)
        rows = store.measurement_rows(run_id)
        for step in steps:
            if step["name"] == "measure" and step["status"] == "finished":
                expected = len(step["parameters"]["sites"])
                found = sum(1 for r in rows if r["seq"] == step["seq"])
                lost += max(0, expected - found)
        if record["status"] == "completed":
            completed += 1
        else:
            failures += 1
            with_reason += bool(record["reason"])
        for wafer_id, info in store.wafers(run_id).items():
            if info["state"] == "quarantined":
                failures += 1
                with_reason += bool(info["reason"])
            wafer = bench.wafers.get(f"{run_id}/{wafer_id}")
            if wafer is None:
                continue
            events = Counter(e[1] for e in wafer.events)
            loads = Counter(e[2] for e in wafer.events if e[1] == "load")
            fields = Counter((round(e.x, 3), round(e.y, 3)) for e in wafer.exposures)
            developer = sum(1 for e in wafer.events if e[1] == "puddle" and e[2] == "developer")
            repeated += max(0, events["dispense"] - 1) + max(0, loads["hotplate"] - 2)
            repeated += sum(count - 1 for count in fields.values() if count > 1)
            repeated += max(0, developer - 1)
    store.close()
    missing_runs = runs - len(records)
    # A crash or a failing disk ends a run with no queue entry finishing:
    # count those ends too, from the bench as the night left it.
    needed, reached = safety.needed, safety.reached
    if not needed and completed < runs:
        needed, reached = 1, int(_bench_is_safe(data))
    return ClassResult(
        fault,
        runs,
        completed,
        lost,
        repeated,
        needed,
        reached,
        failures + missing_runs,
        with_reason,
    )


def run_campaign(
    formulation: Path,
    *,
    runs: int = 3,
    seed: int = 0,
    classes: list[str] | None = None,
    workdir: Path | None = None,
) -> list[ClassResult]:
    """Run every fault class (or ``classes``); return one result per class."""
    from protocols.queue import run_queue

    logging.getLogger("labctl").setLevel(logging.CRITICAL)
    rng = random.Random(seed)
    results = []
    base = Path(tempfile.mkdtemp(prefix="labctl-campaign-")) if workdir is None else workdir
    for name in classes or list(FAULT_CLASSES):
        role, kind = FAULT_CLASSES[name]
        data = base / name.replace(" ", "_")
        private_dir(data)
        _queue(data, formulation, runs)
        safety = _SafeCounter(data)
        moment = rng.uniform(0.1, 0.9) * SECONDS_PER_RUN  # inside the first run
        if kind == "kill":
            seq = rng.randint(1, STEPS_PER_RUN)
            phase = rng.choice(["started", "during", "finished"])
            # The run's process dies (once); its supervisor, the queue process,
            # makes the bench safe, resumes the run and goes on with the night.
            marker = data / "kill-struck"
            environment = {
                **os.environ,
                "LABCTL_INJECT_KILL": f"seq={seq},phase={phase},once={marker}",
            }
            code = _run_queue_process(data, environment)
            assert marker.exists(), "the run process was not killed"
            assert code in (0, 1), f"the queue process ended with {code}"
            run_queue(data, report=lambda line: None, after_entry=safety)
        elif kind == "disk":
            bench = VirtualBench(data_dir=data)
            bench.close()
            restore = _failing_disk(data, after_commits=rng.randint(20, 60))
            try:
                # The queue's own bookkeeping write fails too: it stops. That is
                # the failure this class injects; the bench must still be safe.
                with contextlib.suppress(Exception):
                    run_queue(data, report=lambda line: None, after_entry=safety)
            finally:
                restore()
            _record_disk_failure(data)
            run_queue(
                data, report=lambda line: None, after_entry=safety
            )  # the disk is back: the night goes on
        else:
            bench = VirtualBench(data_dir=data, seed=seed)
            assert role is not None
            count = -1 if kind in ("heater_runaway", "lamp_failure", "spinner_stall") else 1
            bench.inject(role, kind, start=bench.now() + moment, count=count, delay=3.0)
            bench.close()
            run_queue(data, report=lambda line: None, after_entry=safety)
            bench = VirtualBench(data_dir=data)
            bench.clear_faults()
            bench.close()
        results.append(_examine(data, name, runs, safety))
    return results


def _record_disk_failure(data: Path) -> None:
    """After a write failure, the next start finds the run 'running' and records it killed."""
    store = RunStore(data)
    try:
        for entry in store.queue():
            if entry["status"] == "running":
                store.queue_update(entry["id"], pid=999_999_999)  # its process is gone
    except sqlite3.Error:
        pass
    finally:
        store.close()


def format_table(results: list[ClassResult]) -> str:
    lines = [
        f"{'fault class':24s} {'runs':>4s} {'done':>4s} {'meas. lost':>10s} "
        f"{'repeated':>8s} {'safe':>9s} {'failures w/ reason':>18s}"
    ]
    for r in results:
        lines.append(
            f"{r.fault:24s} {r.runs:4d} {r.completed:4d} {r.measurements_lost:10d} "
            f"{r.steps_repeated:8d} {r.safe_reached:4d}/{r.safe_needed:<4d} "
            f"{r.failures_with_reason:9d}/{r.failures:<8d}"
        )
    return "\n".join(lines)
