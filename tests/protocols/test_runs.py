"""Whole runs on the virtual bench, in process: protocols, store, interlocks, faults, abort."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl.analysis import contrast_from_store
from labctl.errors import RecipeError
from labctl.report import write_report
from labctl.store import RunStore
from labctl.units import Q_
from protocols.runner import RunRequest, resume, start
from sim_instruments.bench import VirtualBench
from tests.protocols.conftest import BASELINE, FAST


def request(tmp_path: Path, protocol: str = "contrast-curve", *extra: str, **kw: Any) -> RunRequest:
    return RunRequest(
        protocol=protocol,
        data_dir=tmp_path,
        formulation=BASELINE,
        sim=True,
        overrides=(*FAST, *extra) if protocol == "contrast-curve" else extra,
        **kw,
    )


def bench_after(tmp_path: Path) -> VirtualBench:
    """The bench as the run left it (restored from the data directory)."""
    return VirtualBench(data_dir=tmp_path)


def assert_safe(tmp_path: Path) -> None:
    report = bench_after(tmp_path).safe_state_report()
    assert not report["spin_coater"]["motor_on"]
    assert not report["exposure_source"]["output"]
    assert not report["exposure_shutter"]["open"]
    assert report["hotplate"]["idle"]


def test_contrast_curve_end_to_end(tmp_path: Path) -> None:
    outcome = start(request(tmp_path))
    assert outcome.status == "completed", outcome.reason
    store = RunStore(tmp_path)
    rows = store.measurement_rows(outcome.run_id)
    after = [r for r in rows if r["label"] == "after"]
    before = [r for r in rows if r["label"] == "before"]
    assert len(before) == 6 and len(after) == 6
    assert all(r["formulation_hash"] == store.run(outcome.run_id)["formulation_hash"] for r in rows)
    doses = [r["dose_delivered_mJ_cm2"] for r in after]
    assert doses == sorted(doses) and doses[0] == pytest.approx(10, rel=0.02)
    nrt = [a["thickness_nm"] / b["thickness_nm"] for a, b in zip(after, before, strict=True)]
    assert nrt[0] < 0.05 and nrt[-1] > 0.85
    samples = store.sample_rows(outcome.run_id)
    channels = {s["channel"] for s in samples}
    assert {"spin_speed", "plate_temperature", "irradiance"} <= channels
    assert all(s["unit"] for s in samples)
    frame = store.measurements(outcome.run_id)
    assert {
        "dose_requested_mJ_cm2",
        "dose_delivered_mJ_cm2",
        "thickness_nm",
        "wafer_id",
        "site",
        "x_mm",
        "y_mm",
        "formulation_hash",
    } <= set(frame.columns)
    record = store.run(outcome.run_id)
    assert record["station"]["hotplate"]["model"] == "HP61"
    assert record["station"]["exposure_meter"]["settings"]["aperture_area"] == "0.709 cm**2"
    assert record["software"]["labctl"]
    assert_safe(tmp_path)


def test_spin_curve_end_to_end(tmp_path: Path) -> None:
    outcome = start(request(tmp_path, "spin-curve", "speeds=1500 rpm,3000 rpm,6000 rpm"))
    assert outcome.status == "completed", outcome.reason
    rows = RunStore(tmp_path).measurement_rows(outcome.run_id)
    by_wafer: dict[str, list[float]] = {}
    for row in rows:
        by_wafer.setdefault(row["wafer_id"], []).append(row["thickness_nm"])
    means = [sum(v) / len(v) for _, v in sorted(by_wafer.items())]
    assert len(means) == 3 and means[0] > means[1] > means[2]
    assert means[0] / means[2] == pytest.approx(2.0, rel=0.05)  # h ~ w^-1/2: (6000/1500)^0.5


def test_claim14_end_to_end(tmp_path: Path) -> None:
    outcome = start(request(tmp_path, "claim14", "dose=100 mJ/cm**2"))
    assert outcome.status == "completed", outcome.reason
    rows = RunStore(tmp_path).measurement_rows(outcome.run_id)
    after = [r for r in rows if r["label"] == "after"]
    before = {r["site"]: r["thickness_nm"] for r in rows if r["label"] == "before"}
    exposed = [r for r in after if r["site"] != "unexposed"]
    unexposed = [r for r in after if r["site"] == "unexposed"]
    assert len(exposed) == 9 and all(r["thickness_nm"] > 300 for r in exposed)
    assert unexposed[0]["thickness_nm"] < 5  # developed away: a negative resist
    assert len(before) == 10 and before["unexposed"] > 300  # measured before exposure
    _, headlines = write_report(RunStore(tmp_path), outcome.run_id)
    (line,) = [h for h in headlines if h.startswith("claim 14:")]
    assert "unexposed film kept 0." in line or "unexposed film kept 1." in line
    assert not [h for h in headlines if h.startswith("warning")]


def test_contrast_curve_adapts_a_fine_wafer_to_the_transition(tmp_path: Path) -> None:
    """Default settings: a coarse wafer, then a fine one with >= 6 fields in the transition."""
    outcome = start(
        RunRequest(protocol="contrast-curve", data_dir=tmp_path, formulation=BASELINE, sim=True)
    )
    assert outcome.status == "completed", outcome.reason
    store = RunStore(tmp_path)
    fine = [
        r["dose_delivered_mJ_cm2"]
        for r in store.measurement_rows(outcome.run_id)
        if r["label"] == "after" and r["wafer_id"] == "W01-2"
    ]
    truth = bench_after(tmp_path).true_contrast(wafer_id=f"{outcome.run_id}/W01")
    dg, d100 = truth["dg"].m_as("mJ/cm**2"), truth["d100"].m_as("mJ/cm**2")
    assert len(fine) == 16 and sum(dg <= d <= d100 for d in fine) >= 6
    assert any(e["kind"] == "plan" for e in store.events(outcome.run_id))


def test_a_transition_above_the_range_moves_the_range_instead_of_failing(tmp_path: Path) -> None:
    outcome = start(
        request(tmp_path, "contrast-curve", "dose_min=1 mJ/cm**2", "dose_max=4 mJ/cm**2",
                "fine_fields=12")
    )  # fmt: skip
    assert outcome.status == "completed", outcome.reason
    store = RunStore(tmp_path)
    wafers = {r["wafer_id"] for r in store.measurement_rows(outcome.run_id)}
    assert len(wafers) >= 3  # 1-4, moved up (4-16, 16-64...), then the fine wafer
    result = contrast_from_store(store, outcome.run_id)
    assert result.dg.determined and result.dg.value.m_as("mJ/cm**2") > 4


def test_a_bad_recipe_is_refused_before_anything_moves(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="coat_speed"):
        start(request(tmp_path, "contrast-curve", "coat_speed=20000 rpm"))
    with pytest.raises(RecipeError, match="dose_min"):
        start(request(tmp_path, "contrast-curve", "dose_min=300 mJ/cm**2"))
    assert not (tmp_path / "bench").exists()  # no bench was even switched on


#: Step numbers of the contrast curve: 1 new wafer, 2 transfer, 3 coat, 4 transfer,
#: 5 prepare plate, 6 transfer, 7 soft bake, ...
COAT, SOFT_BAKE = 3, 7


def inject_during(monkeypatch: pytest.MonkeyPatch, seq: int, role: str, kind: str) -> None:
    """Inject a bench fault at the first reading of step ``seq``."""
    import labctl.engine as engine

    def hook(run: Any, step: int, phase: str) -> None:
        if step == seq and phase == "during":
            bench = run.station[role].transport.bench
            if not bench.devices[role].faults:
                bench.inject(role, kind)

    monkeypatch.setattr(engine, "_maybe_inject", hook)


def test_heater_runaway_in_the_soft_bake_trips_and_leaves_the_bench_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_during(monkeypatch, SOFT_BAKE, "hotplate", "heater_runaway")
    outcome = start(request(tmp_path))
    assert outcome.status == "interlocked", outcome.reason
    assert "plate temperature" in outcome.reason
    assert "W01" in outcome.quarantined  # aborted in a wafer-changing step: flagged
    steps = RunStore(tmp_path).steps(outcome.run_id)
    assert steps[SOFT_BAKE - 1]["status"] == "interlocked"
    assert_safe(tmp_path)


def test_spinner_stall_during_the_coat_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_during(monkeypatch, COAT, "spin_coater", "spinner_stall")
    outcome = start(request(tmp_path))
    assert outcome.status == "interlocked" and "spin speed" in outcome.reason
    assert "W01" in outcome.quarantined
    assert_safe(tmp_path)


def test_lamp_failure_trips_the_source_interlock(tmp_path: Path) -> None:
    bench = VirtualBench(data_dir=tmp_path)
    bench.inject("exposure_source", "lamp_failure", start=0)
    bench.close()
    outcome = start(request(tmp_path))
    assert outcome.status == "interlocked" and "LED" in outcome.reason
    assert_safe(tmp_path)


def test_a_silent_instrument_trips_after_bounded_retries(tmp_path: Path) -> None:
    bench = VirtualBench(data_dir=tmp_path)
    bench.inject("hotplate", "no_reply", start=bench.now() + 100, count=-1)
    bench.close()
    outcome = start(request(tmp_path))
    assert outcome.status == "interlocked" and "silent" in outcome.reason
    events = RunStore(tmp_path).events(outcome.run_id)
    assert sum(e["kind"] == "retry" and "attempt" in e["message"] for e in events) == 4


def test_a_lost_reply_is_retried_and_recorded_and_the_run_completes(tmp_path: Path) -> None:
    bench = VirtualBench(data_dir=tmp_path)
    bench.inject("hotplate", "no_reply", start=bench.now() + 100, count=1)
    bench.inject("spin_coater", "garbled_reply", start=bench.now() + 10, count=1)
    bench.close()
    outcome = start(request(tmp_path))
    assert outcome.status == "completed", outcome.reason
    retries = [e for e in RunStore(tmp_path).events(outcome.run_id) if e["kind"] == "retry"]
    assert len(retries) >= 2
    assert any(
        "timeout" in e["message"].lower() or "no complete reply" in e["message"] for e in retries
    )


def test_an_instrument_error_fails_the_step_without_resending_and_quarantines_the_wafer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_during(monkeypatch, SOFT_BAKE, "hotplate", "instrument_error")
    outcome = start(request(tmp_path))
    assert outcome.status == "failed", outcome.reason
    assert "error reply" in outcome.reason and "W01" in outcome.quarantined
    refused = [c for c in bench_after(tmp_path).commands("hotplate") if c["reply"] == "e\r\n"]
    assert len(refused) == 1  # refused once, never blindly sent again
    assert_safe(tmp_path)


def test_stop_at_the_next_safe_point_then_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def progress(message: str) -> None:
        calls["n"] += 1

    import labctl.engine as engine

    monkeypatch.setattr(engine, "_INJECTION", (5, "stop"))  # a Ctrl-C in step 5 (plate)
    outcome = start(request(tmp_path), progress=progress)
    assert outcome.status == "aborted" and "safe point" in outcome.reason
    assert_safe(tmp_path)
    steps = RunStore(tmp_path).steps(outcome.run_id)
    assert steps[-1]["status"] == "finished" and steps[-1]["seq"] == 5  # finished, then stop
    monkeypatch.setattr(engine, "_INJECTION", None)
    resumed = resume(outcome.run_id, tmp_path)
    assert resumed.status == "completed", resumed.reason
    assert resumed.steps_replayed == 4  # the plate set-up (step 5) is done again
    wafer = next(w for w in bench_after(tmp_path).wafers.values())
    assert sum(1 for e in wafer.events if e[1] == "dispense") == 1  # coated once


def test_hold_before_a_step_waits_for_a_tripped_interlock_bounded(tmp_path: Path) -> None:
    from labctl.clock import VirtualClock
    from labctl.engine import BandInterlock, Run
    from labctl.errors import InterlockTrip

    store = RunStore(tmp_path)
    store.create_run(
        {
            "run_id": "R",
            "protocol": "p",
            "parameters": {},
            "software": {},
            "operator": "t",
            "attended": False,
            "simulated": True,
        }
    )
    clock = VirtualClock()
    interlock = BandInterlock("plate temperature", "plate_temperature", 3.0, 1.0)
    interlock.arm(110.0)
    interlock.update(120.0, "degC")
    run = Run(
        store=store,
        run_id="R",
        station={},
        clock=clock,
        handler=None,  # type: ignore[arg-type]
        parameters={},
        interlocks={"plate_temperature": interlock},
        hold_limit=30,
    )
    with pytest.raises(InterlockTrip, match="still tripped after 30 s"):
        run.step("bake", lambda context: None, wafer="W")
    assert clock.monotonic() == pytest.approx(30)
    interlock.update(111.5, "degC")  # inside tolerance - hysteresis: clears
    assert not interlock.tripped
    assert run.step("bake", lambda context: {"ok": Q_(1, "s")}, wafer="W2") == {"ok": Q_(1, "s")}
