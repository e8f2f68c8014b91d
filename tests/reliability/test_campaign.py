"""The fault campaign, short: one queued run per fault class. Target 0, 0, all, all."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim_instruments.campaign import FAULT_CLASSES, run_campaign
from tests.protocols.conftest import BASELINE


@pytest.mark.parametrize("fault", list(FAULT_CLASSES))
def test_fault_class(fault: str, tmp_path: Path) -> None:
    (result,) = run_campaign(BASELINE, runs=1, seed=3, classes=[fault], workdir=tmp_path)
    assert result.measurements_lost == 0
    assert result.steps_repeated == 0
    assert result.safe_reached == result.safe_needed
    assert result.failures_with_reason == result.failures
    # A run that did not complete is looked at: safe state is never "0 of 0" by default.
    assert result.completed == result.runs or result.safe_needed >= 1


def test_the_bench_is_looked_at_after_every_entry_that_failed(tmp_path: Path) -> None:
    """A heater runaway persists: both runs of the night fail, and each is probed, safe."""
    (result,) = run_campaign(BASELINE, runs=2, seed=3, classes=["heater runaway"], workdir=tmp_path)
    assert result.completed == 0
    assert (result.safe_needed, result.safe_reached) == (2, 2)


def test_a_lamp_failure_in_the_middle_of_a_dose_matrix_is_caught(tmp_path: Path) -> None:
    """The source dies after the calibration: the verification after the matrix trips."""
    import labctl.engine as engine
    from labctl.store import RunStore
    from protocols.runner import RunRequest, start
    from sim_instruments.bench import VirtualBench

    original = engine._maybe_inject

    def hook(run: object, step: int, phase: str) -> None:
        if step == 15 and phase == "during":  # the third field
            run.station["exposure_source"].transport.bench.inject(  # type: ignore[attr-defined]
                "exposure_source", "lamp_failure"
            )

    engine._maybe_inject = hook  # type: ignore[assignment]
    try:
        outcome = start(
            RunRequest(
                protocol="contrast-curve",
                data_dir=tmp_path,
                formulation=BASELINE,
                sim=True,
                overrides=("fields=6",),
            )
        )
    finally:
        engine._maybe_inject = original  # type: ignore[assignment]
    assert outcome.status == "interlocked" and "irradiance" in outcome.reason
    assert RunStore(tmp_path).steps(outcome.run_id)[18]["name"] == "verify exposure"
    assert not VirtualBench(data_dir=tmp_path).safe_state_report()["exposure_source"]["output"]
