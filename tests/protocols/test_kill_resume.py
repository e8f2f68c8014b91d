"""A real process killed with SIGKILL at many points of a run, then resumed.

Checked from the simulators' own records, not the engine's word: no physical
step done twice on any wafer, no finished measurement lost, the interrupted
wafer quarantined - and, the run being unattended (``--sim``), its part done
again on a replacement wafer so the run completes - and the bench in safe
state after the restart.
"""

from __future__ import annotations

import logging
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from labctl.store import RunStore
from protocols.runner import resume
from sim_instruments.bench import VirtualBench
from tests.cli import fast_contrast_curve, labctl

# Step numbers of the fast contrast curve (6 fields). "replaced": the wafer is
# quarantined and its part done again on W01-r1; "completed": done on W01 itself.
KILL_POINTS = [
    (1, "started", "replaced"),  # new wafer journaled, nothing done
    (2, "during", "replaced"),  # transfer half done
    (3, "started", "replaced"),  # coat journaled, before the resist is dispensed
    (3, "during", "replaced"),  # mid-spin
    (3, "finished", "completed"),  # coat journaled finished
    (5, "during", "completed"),  # plate set-up: repeatable
    (7, "during", "replaced"),  # mid soft bake
    (9, "during", "completed"),  # mid measurement: repeatable
    (11, "during", "completed"),  # calibration: repeatable, beam on the meter
    (14, "during", "replaced"),  # field 2 exposed, not yet journaled
    (14, "finished", "completed"),  # field 2 journaled
    (19, "during", "completed"),  # verification of the irradiance after the matrix
    (23, "during", "replaced"),  # mid PEB
    (25, "during", "replaced"),  # mid development
    (28, "during", "completed"),  # mid final measurement
]
#: Physical steps a wafer undergoes once at most; exposures once per field.
#: (Transfers happen several times a wafer: they are checked from the bench's
#: own record of loads.)
ONCE_PER_WAFER = ("new wafer", "coat", "soft bake", "post-exposure bake", "develop", "expose")


def run_until_killed(data: Path, seq: int, phase: str) -> subprocess.CompletedProcess[str]:
    return labctl(
        *fast_contrast_curve(data),
        environment={"LABCTL_INJECT_KILL": f"seq={seq},phase={phase}"},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("seq", "phase", "expected"), KILL_POINTS, ids=[f"step{s}-{p}" for s, p, _ in KILL_POINTS]
)
def test_killed_and_resumed(
    tmp_path: Path, seq: int, phase: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    killed = run_until_killed(tmp_path, seq, phase)
    # The run's process died; its supervisor (the process the user started)
    # made the bench safe and recorded the death before it exited.
    assert killed.returncode == 1, killed.stderr
    assert "died of SIGKILL" in killed.stderr
    assert "Traceback" not in killed.stderr
    store = RunStore(tmp_path)
    (record,) = store.runs()
    run_id = record["run_id"]
    assert record["status"] == "killed", record
    measured_before = len(store.measurement_rows(run_id))
    store.close()
    _assert_safe(VirtualBench(data_dir=tmp_path))  # before anyone typed a command

    outcome = resume(run_id, tmp_path)

    store = RunStore(tmp_path)
    events = [e["kind"] for e in store.events(run_id)]
    assert "killed" in events  # found dead on restart, recorded
    assert outcome.status == "completed", outcome.reason
    rows = store.measurement_rows(run_id)
    steps = store.steps(run_id)
    if expected == "completed":
        assert not outcome.quarantined
        assert {r["wafer_id"] for r in rows} == {"W01"} and len(rows) == 12
        assert {s["wafer_id"] for s in steps} <= {"W01", None}
    else:
        assert list(outcome.quarantined) == ["W01"]
        assert "wafer W01-r1 replaced W01" in outcome.reason
        assert steps[seq - 1]["status"] == "interrupted"
        # W01's part ends at the interrupted step; every later step is the replacement's.
        assert all(s["wafer_id"] in ("W01-r1", None) for s in steps[seq:])
        assert (steps[seq]["name"], steps[seq]["parameters"]) == ("new wafer", {"replaces": "W01"})
        assert all(s["status"] == "finished" for s in steps[seq:])
        assert len([r for r in rows if r["wafer_id"] == "W01-r1"]) == 12
        wafers = store.wafers(run_id)
        assert wafers["W01"]["state"] == "quarantined" and wafers["W01"]["reason"]
        assert (wafers["W01-r1"]["state"], wafers["W01-r1"]["replaces"]) == ("done", "W01")
    assert len(rows) >= measured_before  # nothing lost
    labels = Counter((r["wafer_id"], r["label"], r["site"]) for r in rows)
    assert max(labels.values(), default=1) == 1  # and nothing measured twice on a wafer
    once = Counter(
        (s["wafer_id"], s["name"], s["parameters"].get("field"))
        for s in steps
        if s["name"] in ONCE_PER_WAFER
    )
    assert max(once.values()) == 1, once  # the journal: no physical step twice on a wafer

    bench = VirtualBench(data_dir=tmp_path)
    wafer_ids = ["W01"] if expected == "completed" else ["W01", "W01-r1"]
    for wafer_id in wafer_ids:
        wafer = bench.wafers.get(f"{run_id}/{wafer_id}")
        if wafer is None:
            assert seq == 1 and wafer_id == "W01"  # killed before the wafer existed
            continue
        events_on_wafer = Counter(e[1] for e in wafer.events)
        assert events_on_wafer["dispense"] <= 1
        loads = Counter(e[2] for e in wafer.events if e[1] == "load")
        assert loads["hotplate"] <= 2 and loads["spin_coater"] <= 2
        fields = Counter((round(e.x, 3), round(e.y, 3)) for e in wafer.exposures)
        assert max(fields.values(), default=1) == 1  # no field exposed twice
        puddles = [e for e in wafer.events if e[1] == "puddle" and e[2] == "developer"]
        assert len(puddles) <= 1
    if expected == "replaced":
        replacement = bench.wafers[f"{run_id}/W01-r1"]
        assert sum(e[1] == "dispense" for e in replacement.events) == 1  # it was coated
        assert len(replacement.exposures) == 6  # and exposed, every field once
    _assert_safe(bench)


def _assert_safe(bench: VirtualBench) -> None:
    """The simulators' own view: spinner stopped, LED off, shutter shut, plate idle, tools free."""
    report = bench.safe_state_report()
    assert not report["spin_coater"]["motor_on"]
    assert not report["exposure_source"]["output"]
    assert not report["exposure_shutter"]["open"]
    assert report["hotplate"]["idle"]
    assert all(holder is None for holder in bench.holders.values()), bench.holders
    bench.close()
