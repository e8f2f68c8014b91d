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


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_a_run_finds_the_bench_truth_within_5_percent_in_dg_and_15_in_gamma(
    tmp_path: Path, name: str
) -> None:
    data, overrides = CONDITIONS[name]
    outcome = start(
        RunRequest(
            protocol="contrast-curve",
            data_dir=tmp_path,
            formulation=write(tmp_path, data),
            sim=True,
            overrides=overrides,
            seed=7,
        )
    )
    assert outcome.status == "completed", outcome.reason
    result = contrast_from_store(RunStore(tmp_path), outcome.run_id)
    truth = VirtualBench(data_dir=tmp_path).true_contrast(wafer_id=f"{outcome.run_id}/W01")
    true_dg, true_gamma = truth["dg"].m_as(DOSE), truth["gamma"]
    assert result.dg.determined and result.gamma.determined, result.warnings
    assert result.dg.value.m_as(DOSE) == pytest.approx(true_dg, rel=0.05), (name, truth)
    assert result.gamma.value.magnitude == pytest.approx(true_gamma, rel=0.15), (name, truth)
    assert result.fields_in_transition >= 6
