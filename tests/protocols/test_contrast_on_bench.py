"""Contrast runs on the virtual bench against the bench's own ground truth, over many processes.

The truth is ``VirtualBench.true_contrast``: the simulator's noise-free
physics for the wafer's own record (film, solvent, PEB history, develop
time), by the construction of docs/analysis.md - not labctl's estimate.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from labctl.analysis import contrast_from_store
from labctl.store import RunStore
from protocols.runner import RunRequest, start
from sim_instruments.bench import VirtualBench
from tests.labctl.formulation_helpers import baseline, component, write

DOSE = "mJ/cm**2"


def scaled(role: str, factor: float) -> dict[str, Any]:
    data = copy.deepcopy(baseline())
    item = component(data, role)
    value, unit = item["amount"].split()
    item["amount"] = f"{float(value) * factor!r} {unit}"
    return data


#: name -> (formulation data, recipe overrides)
CONDITIONS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "PEB 100 C": (baseline(), ("peb_temperature=100 degC",)),
    "PEB 120 C, 90 s": (baseline(), ("peb_temperature=120 degC", "peb_time=90 s")),
    "base x2": (scaled("base", 2.0), ()),
    "acid generator x2": (scaled("acid_generator", 2.0), ()),
    "thick film (1200 rpm)": (baseline(), ("coat_speed=1200 rpm",)),
    "thin film (6000 rpm)": (baseline(), ("coat_speed=6000 rpm",)),
    "develop 25 s": (baseline(), ("develop_time=25 s",)),
    "low Dg (acid generator x4, PEB 125 C)": (
        scaled("acid_generator", 4.0),
        ("peb_temperature=125 degC",),
    ),
    "high Dg (base x3, PEB 100 C)": (scaled("base", 3.0), ("peb_temperature=100 degC",)),
}


def test_runs_find_the_bench_truth_over_nine_processes(tmp_path: Path) -> None:
    """Dg within 5 % in every process; gamma within 15 % in the median, 30 % at worst.

    The simulator's curve leaves the floor with a jump of slope and steepens
    for about 0.07 decade above it; on that shape the local fits overestimate
    gamma by 10-27 % (docs/analysis.md, "Known limits").
    """
    gamma_errors = {}
    for index, (name, (data, overrides)) in enumerate(CONDITIONS.items()):
        data_dir = tmp_path / f"c{index}"
        outcome = start(
            RunRequest(
                protocol="contrast-curve",
                data_dir=data_dir,
                formulation=write(tmp_path, data, name=f"f{index}.toml"),
                sim=True,
                overrides=overrides,
                seed=7,
            )
        )
        assert outcome.status == "completed", (name, outcome.reason)
        result = contrast_from_store(RunStore(data_dir), outcome.run_id)
        truth = VirtualBench(data_dir=data_dir).true_contrast(wafer_id=f"{outcome.run_id}/W01")
        true_dg, true_gamma = truth["dg"].m_as(DOSE), truth["gamma"]
        assert result.dg.determined and result.gamma.determined, (name, result.warnings)
        assert result.dg.value.m_as(DOSE) == pytest.approx(true_dg, rel=0.05), (name, truth)
        assert result.fields_in_transition >= 6, name
        gamma_errors[name] = abs(result.gamma.value.magnitude / true_gamma - 1.0)
        if name.startswith("low Dg"):
            assert true_dg < 7.0  # near the low edge of the default 5-200 mJ/cm2
        if name.startswith("high Dg"):
            assert true_dg > 100.0  # near the high edge
    errors = sorted(gamma_errors.values())
    assert errors[len(errors) // 2] <= 0.15, gamma_errors
    assert errors[-1] <= 0.30, gamma_errors
