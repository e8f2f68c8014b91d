"""Formulation -> simulated resist: the baseline gives the defaults; trends follow the notes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from labctl.formulation import parse_formulation
from labctl.units import Q_
from sim_instruments import physics
from sim_instruments.bench import VirtualBench
from sim_instruments.physics import ResistParameters
from sim_instruments.resist_model import resist_from_formulation
from tests.labctl.formulation_helpers import baseline, component

PROCESS = {
    "thickness": Q_(480, "nm"),
    "peb_temperature": Q_(110, "degC"),
    "peb_time": Q_(60, "s"),
    "develop_time": Q_(60, "s"),
}


def resist(data: dict[str, Any]) -> ResistParameters:
    return resist_from_formulation(parse_formulation(data))


def gel_dose(parameters: ResistParameters) -> float:
    return VirtualBench().true_contrast(resist=parameters, **PROCESS)["dg"].m_as("mJ/cm**2")


def scaled(data: dict[str, Any], role: str, factor: float) -> dict[str, Any]:
    data = copy.deepcopy(data)
    item = component(data, role)
    value, unit = item["amount"].split()
    item["amount"] = f"{float(value) * factor!r} {unit}"
    return data


def test_the_baseline_formulation_gives_the_default_resist() -> None:
    mapped, default = resist(baseline()), ResistParameters()
    for name in ("solids", "viscosity", "acid_yield", "quencher", "crosslink_rate", "rate_max"):
        assert getattr(mapped, name) == pytest.approx(getattr(default, name), rel=0.05), name


def test_more_solids_give_a_thicker_film() -> None:
    thin = resist(baseline())
    thick = resist(scaled(baseline(), "solvent", 0.7))
    assert physics.final_spin_thickness(thick, 3000) > 1.2 * physics.final_spin_thickness(
        thin, 3000
    )


def test_more_base_raises_the_gel_dose() -> None:
    assert gel_dose(resist(scaled(baseline(), "base", 2.0))) > 1.2 * gel_dose(resist(baseline()))


def test_more_acid_generator_lowers_the_gel_dose() -> None:
    assert gel_dose(resist(scaled(baseline(), "acid_generator", 2.0))) < 0.8 * gel_dose(
        resist(baseline())
    )


def test_the_phenolic_b1_cross_links_faster_than_melamine() -> None:
    more_b1 = resist(scaled(baseline(), "crosslinker_b1", 3.0))
    more_b2 = resist(scaled(baseline(), "crosslinker_b2", 3.0))
    assert more_b1.crosslink_rate > resist(baseline()).crosslink_rate
    data = baseline()
    component(data, "crosslinker_b2")["skeleton"] = "glycoluril"
    assert resist(data).crosslink_rate < resist(baseline()).crosslink_rate
    assert more_b2.crosslink_shrink < more_b1.crosslink_shrink  # B-2 swells less


def test_a_40_mol_percent_hydroxystyrene_resin_barely_develops() -> None:
    data = baseline()
    units = component(data, "resin")["units"]
    units[0]["mol_percent"], units[1]["mol_percent"] = 40, 60
    assert resist(data).rate_max < 1.0
