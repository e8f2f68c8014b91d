"""Formulation -> simulated resist: the baseline gives the defaults; trends follow the notes."""

from __future__ import annotations

import copy
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from labctl.formulation import load_formulation, parse_formulation
from labctl.units import Q_
from sim_instruments import physics
from sim_instruments.bench import VirtualBench
from sim_instruments.physics import ResistParameters
from sim_instruments.resist_model import (
    DYE_ABSORBANCE_PER_WT_PERCENT,
    SHRINK_B1,
    SHRINK_B2,
    resist_from_formulation,
)
from tests.cli import labctl
from tests.labctl.formulation_helpers import EXAMPLES, as_solution, baseline, component, example

PROCESS: dict[str, Any] = {
    "thickness": Q_(480, "nm"),
    "peb_temperature": Q_(110, "degC"),
    "peb_time": Q_(60, "s"),
    "develop_time": Q_(60, "s"),
}


def resist(data: dict[str, Any]) -> ResistParameters:
    return resist_from_formulation(parse_formulation(data))


def gel_dose(parameters: ResistParameters) -> float:
    return float(VirtualBench().true_contrast(resist=parameters, **PROCESS)["dg"].m_as("mJ/cm**2"))


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


# -- issue 16: formulations as chemists write them ------------------------------------------

#: The resist parameters each example that predates issue 16 gave with the code of commit
#: 8a7b8e1 (before issue 16), computed there and written down: they must not move (the
#: README's main job and docs/virtual-bench.md quote figures made from them). Every other
#: field is the ResistParameters default.
PINNED = {
    "b1_only.toml": {
        "name": "B-1 only",
        "solids": 0.119880071570192,
        "viscosity": 9.970047846791458,
        "acid_yield": 1.0001366853469975,
        "quencher": 0.09717660188415365,
        "crosslink_rate": 0.00823213502336568,
        "crosslink_shrink": 0.06,
        "rate_max": 100.0,
    },
    "b2_55_percent.toml": {
        "name": "B-2 55 wt%",
        "solids": 0.22066822133365074,
        "viscosity": 62.18356909175698,
        "acid_yield": 0.4811129952565146,
        "quencher": 0.04674653643478151,
        "crosslink_rate": 0.045501474663023234,
        "crosslink_shrink": 0.0407085829928284,
        "rate_max": 100.0,
    },
    "claim9_variant.toml": {
        "name": "NR-12 claim-9 variant",
        "solids": 0.11988007157019195,
        "viscosity": 9.970047846791449,
        "acid_yield": 1.0001366853469977,
        "quencher": 0.09717660188415368,
        "crosslink_rate": 0.012387237157745383,
        "crosslink_shrink": 0.04982261919738331,
        "rate_max": 100.0,
    },
    "in_claims.toml": {
        "name": "NR-12 in-claim baseline",
        "solids": 0.119880071570192,
        "viscosity": 9.970047846791458,
        "acid_yield": 1.0001366853469975,
        "quencher": 0.09717660188415365,
        "crosslink_rate": 0.010000019757891748,
        "crosslink_shrink": 0.04788368336025848,
        "rate_max": 100.0,
    },
    "phs_40_mol_percent.toml": {
        "name": "PHS 40 mol%",
        "solids": 0.119880071570192,
        "viscosity": 9.970047846791458,
        "acid_yield": 1.0001366853469975,
        "quencher": 0.09717660188415365,
        "crosslink_rate": 0.010000019757891748,
        "crosslink_shrink": 0.04788368336025848,
        "rate_max": 0.2595727814782113,
    },
    "ratio_2_98.toml": {
        "name": "B-1/B-2 2:98",
        "solids": 0.1097640395346942,
        "viscosity": 7.653084464666321,
        "acid_yield": 1.1048658446479513,
        "quencher": 0.10735243481594928,
        "crosslink_rate": 0.005704759483176432,
        "crosslink_shrink": 0.040268435222895214,
        "rate_max": 100.0,
    },
}

NEW_EXAMPLES = (
    "resin_blend.toml",
    "melamine_resin.toml",
    "lab_notebook.toml",
    "b2_molecular_weight_missing.toml",
)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_examples_before_issue_16_give_exactly_the_parameters_they_gave(name: str) -> None:
    """Bit for bit: the blend, solution, additive and equivalent-weight handling leaves a
    formulation without them where it was."""
    mapped = asdict(resist_from_formulation(load_formulation(EXAMPLES / name)))
    expected = {**asdict(ResistParameters()), **PINNED[name]}
    assert mapped == expected


def test_the_examples_are_all_pinned_or_new() -> None:
    """A new example file is either pinned above or listed as new (and run below)."""
    assert {p.name for p in EXAMPLES.glob("*.toml")} == set(PINNED) | set(NEW_EXAMPLES)


def _resin(
    name: str, grams: float, mw: float, units: list[tuple[str, float, float]]
) -> dict[str, Any]:
    return {
        "role": "resin",
        "name": name,
        "amount": f"{grams!r} g",
        "molecular_weight": f"{mw!r} g/mol",
        "units": [
            {"formula": f, "mol_percent": p, "molar_mass": f"{m!r} g/mol"} for f, p, m in units
        ],
    }


HS, STYRENE = 120.15, 104.15  # unit formula weights, g/mol


def with_resins(*resins: dict[str, Any]) -> dict[str, Any]:
    data = baseline()
    data["components"] = [*resins, *(c for c in data["components"] if c["role"] != "resin")]
    return data


def test_a_blend_behaves_between_its_resins_by_unit_mole_fraction() -> None:
    """Claim 6's "50 to 100 mole %" is of the resin (A) as a whole: PHS and a 40:60
    hydroxystyrene/styrene copolymer, 5 g each, dissolve like one resin with the blend's
    unit mole fraction of hydroxystyrene - between the two, never their sum."""
    phs = _resin("PHS", 5.0, 5000.0, [("3", 100, HS)])
    copolymer = _resin("HS/St 40:60", 5.0, 12000.0, [("3", 40, HS), ("4", 60, STYRENE)])
    alone_phs = resist(with_resins({**phs, "amount": "10.0 g"}))
    alone_copolymer = resist(with_resins({**copolymer, "amount": "10.0 g"}))
    blend = resist(with_resins(phs, copolymer))
    assert alone_copolymer.rate_max < blend.rate_max < alone_phs.rate_max
    assert alone_phs.viscosity < blend.viscosity < alone_copolymer.viscosity
    # unit moles: 5 g / 120.15 g/mol of PHS units, 5 g / (0.4 x 120.15 + 0.6 x 104.15) of
    # copolymer units
    phs_units, copolymer_units = 5.0 / HS, 5.0 / (0.4 * HS + 0.6 * STYRENE)
    percent = (100 * phs_units + 40 * copolymer_units) / (phs_units + copolymer_units)
    assert percent == pytest.approx(68.75, abs=0.01)
    one_resin = _resin("as one", 10.0, 8500.0, [("3", percent, HS), ("4", 100 - percent, STYRENE)])
    equivalent = resist(with_resins(one_resin))
    assert blend.rate_max == pytest.approx(equivalent.rate_max, rel=1e-9)
    assert blend.viscosity == pytest.approx(equivalent.viscosity, rel=1e-9)  # Mw 8500 both
    # without the units' formula weights the file only bounds the blend; the model takes
    # the resins by mass (equal unit weights) - still between them
    for item in (phs, copolymer):
        for unit in item["units"]:
            del unit["molar_mass"]
    unweighted = resist(with_resins(phs, copolymer))
    assert alone_copolymer.rate_max < unweighted.rate_max < alone_phs.rate_max


def test_the_resin_blend_example_is_not_summed_past_its_resins() -> None:
    """examples/formulations/resin_blend.toml: PHS + an 85:15 copolymer, 92.4 mol %
    hydroxystyrene - its dissolution rate lies between those of its two resins (summed
    to 185 mol % it came out above pure PHS)."""
    data = example("resin_blend.toml")
    blend = resist(data)
    phs, copolymer = copy.deepcopy(data["components"][:2])
    pure_phs = resist(with_resins({**phs, "amount": "10.0 g"}))
    assert resist(with_resins({**copolymer, "amount": "10.0 g"})).rate_max == 100.0
    assert 100.0 < blend.rate_max < pure_phs.rate_max


@pytest.mark.parametrize(
    ("index", "fraction"), [(0, 0.3), (1, 0.5), (2, 0.25), (3, 0.2), (4, 0.05), (5, 0.01)]
)
def test_a_component_bought_as_a_solution_of_the_same_solids_changes_no_parameter(
    index: int, fraction: float
) -> None:
    """Claims 11/12's "total solid content": the resin, a cross-linker, the PAG, the base or
    the surfactant bought as a solution in PGMEA (the PGMEA reduced by what the solution
    brings) is the same resist."""
    before = asdict(resist(baseline()))
    after = asdict(resist(as_solution(baseline(), index, fraction)))
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] == (
            pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
        )


def test_a_solutions_solvent_thins_the_resist_like_solvent() -> None:
    """Only the solute is solid: the PAG as 20 % in PGMEA with no PGMEA taken away from
    the solvent is a more dilute resist (thinner film), same chemistry per gram of solids."""
    data = baseline()
    pag = component(data, "acid_generator")
    pag["amount"], pag["solution"] = "1.8 g", {"solute_fraction": "20 %", "solvent": "PGMEA"}
    diluted, original = resist(data), resist(baseline())
    assert diluted.solids == pytest.approx(original.solids * 103.395 / 104.835, rel=1e-12)
    assert physics.final_spin_thickness(diluted, 3000) < physics.final_spin_thickness(
        original, 3000
    )
    assert diluted.acid_yield == pytest.approx(original.acid_yield, rel=1e-12)
    assert diluted.crosslink_rate == pytest.approx(original.crosslink_rate, rel=1e-12)


@pytest.mark.parametrize(
    ("skeleton", "groups", "molecular_weight"),
    [("melamine", {"formula2_groups": 3}, 390.4), ("glycoluril", {"formula1_groups": 4}, 320.3)],
)
def test_a_cross_linker_resin_by_equivalent_weight_cross_links_as_the_compound(
    skeleton: str, groups: dict[str, int], molecular_weight: float
) -> None:
    """Claim 10: "a compound or resin containing a melamine skeleton": a resin with an
    equivalent weight of (molecular weight / CH2-O-R groups) brings the cross-linking
    groups of the same mass of the compound."""
    compound_data = baseline()
    b2 = component(compound_data, "crosslinker_b2")
    b2.update({"skeleton": skeleton, "formula1_groups": 0, "formula2_groups": 0, **groups})
    b2["molecular_weight"] = f"{molecular_weight!r} g/mol"
    sites = groups.get("formula1_groups", 0) + 2 * groups.get("formula2_groups", 0)
    resin_data = copy.deepcopy(compound_data)
    b2 = component(resin_data, "crosslinker_b2")
    del b2["molecular_weight"]
    b2.update(form="resin", equivalent_weight=f"{molecular_weight / sites!r} g/eq")
    compound, as_resin = resist(compound_data), resist(resin_data)
    assert as_resin.crosslink_rate == pytest.approx(compound.crosslink_rate, rel=1e-12)
    assert as_resin.crosslink_shrink == pytest.approx(compound.crosslink_shrink, rel=1e-12)
    # a heavier equivalent weight: fewer groups in the same mass, slower cross-linking
    b2["equivalent_weight"] = f"{2 * molecular_weight / sites!r} g/eq"
    assert resist(resin_data).crosslink_rate < 0.9 * compound.crosslink_rate


def test_a_b1_compound_by_equivalent_weight_cross_links_as_by_molecular_weight() -> None:
    data = baseline()
    b1 = component(data, "crosslinker_b1")
    del b1["molecular_weight"]
    b1["equivalent_weight"] = "150 g/eq"  # 600 g/mol, four CH2-OMe
    assert resist(data).crosslink_rate == pytest.approx(resist(baseline()).crosslink_rate)


def test_the_melamine_resin_example_cross_links_by_its_equivalent_weight() -> None:
    """examples/formulations/melamine_resin.toml: 0.8 g at 80 g per mole of CH2-OMe is
    10 mmol of groups against HMMM's 12.3 mmol (65.1 g/mol): a slower resist, not one
    without a B-2 (the B-2 used to be skipped for want of a molecular weight)."""
    resin, compound = resist(example("melamine_resin.toml")), resist(baseline())
    b1_only = resist(example("b1_only.toml"))
    assert b1_only.crosslink_rate < resin.crosslink_rate < compound.crosslink_rate
    assert SHRINK_B2 < resin.crosslink_shrink < SHRINK_B1


def test_a_cross_linker_whose_moles_the_file_lacks_is_taken_as_the_baselines() -> None:
    """examples/formulations/b2_molecular_weight_missing.toml: the claim check says claim 13
    is undetermined; the simulated resist takes the HMMM by the baseline B-2's equivalent
    weight, i.e. as the baseline."""
    missing = resist(example("b2_molecular_weight_missing.toml"))
    assert missing.crosslink_rate == pytest.approx(resist(baseline()).crosslink_rate, rel=1e-12)


ADDITIVE_KINDS = ["dye", "adhesion promoter", "dissolution inhibitor", "crosslinker", None]


@pytest.mark.parametrize("kind", ADDITIVE_KINDS)
def test_an_additive_never_adds_cross_linking(kind: str | None) -> None:
    """An additive is a solid and never B-1/B-2: it dilutes the cross-linking sites per
    gram of solids and adds none, whatever its kind says."""
    data = baseline()
    additive = {"role": "additive", "name": "x", "amount": "1.0 g"}
    if kind is not None:
        additive["kind"] = kind
    data["components"].insert(-1, additive)
    original, added = resist(baseline()), resist(data)
    solids = 12.395  # g, the baseline's
    assert added.crosslink_rate == pytest.approx(
        original.crosslink_rate * solids / (solids + 1.0), rel=1e-12
    )
    assert added.crosslink_shrink == pytest.approx(original.crosslink_shrink, rel=1e-12)


@pytest.mark.parametrize(
    "edit",
    [
        # claim 1: B-1 with "at least two ... groups": one methylol group only
        lambda b: b.update(crosslinking_groups=[{"kind": "hydroxymethyl", "count": 1}]),
        # not "a phenol compound"
        lambda b: b.update(phenol=False),
        # groups that are not hydroxymethyl, alkoxymethyl or acyloxymethyl
        lambda b: b.update(crosslinking_groups=[{"kind": "epoxy", "count": 4}]),
    ],
)
def test_a_labelled_b1_that_does_not_qualify_forms_no_cross_links(edit: Any) -> None:
    """Claim 1's (B-1) is "a phenol compound having ... at least two groups selected from a
    hydroxymethyl group, an alkoxymethyl group and an acyloxymethyl group": a second
    phenolic labelled B-1 that is not one is, for the resist, an additive of its mass."""
    data = baseline()
    extra = copy.deepcopy(component(data, "crosslinker_b1"))
    extra.update(name="not a B-1", amount="0.5 g", molecular_weight="138.16 g/mol")
    edit(extra)
    data["components"].insert(2, extra)
    as_additive = baseline()
    as_additive["components"].insert(-1, {"role": "additive", "name": "x", "amount": "0.5 g"})
    assert resist(data).crosslink_rate == pytest.approx(
        resist(as_additive).crosslink_rate, rel=1e-12
    )


def test_the_lab_notebook_example_does_not_cross_link_with_its_methylol_phenol() -> None:
    """examples/formulations/lab_notebook.toml: the 2-methylol phenol (one group) is listed
    as not counted as B-1 - nor does it cross-link in the simulated resist."""
    data = example("lab_notebook.toml")
    notebook = resist(data)
    del data["components"][2]  # the methylol phenol
    data["components"].insert(-1, {"role": "additive", "name": "x", "amount": "2 parts"})
    assert notebook.crosslink_rate == pytest.approx(resist(data).crosslink_rate, rel=1e-12)


def test_a_dye_absorbs_and_other_additives_do_not() -> None:
    """An additive of kind "dye" adds absorbance at the exposure wavelength in proportion to
    its wt % of solids, so less dose reaches the bottom of the film and Dg rises; an
    adhesion promoter of the same mass only dilutes."""

    def with_additive(kind: str) -> ResistParameters:
        data = baseline()
        data["components"].insert(
            -1, {"role": "additive", "kind": kind, "name": "x", "amount": "0.5 g"}
        )
        return resist(data)

    dyed, promoted = with_additive("Dye"), with_additive("adhesion promoter")
    original = resist(baseline())
    percent = 100 * 0.5 / 12.895
    assert dyed.absorbance == pytest.approx(
        original.absorbance + DYE_ABSORBANCE_PER_WT_PERCENT * percent, rel=1e-12
    )
    assert promoted.absorbance == original.absorbance
    assert gel_dose(dyed) > 1.02 * gel_dose(promoted)
    assert with_additive("UV absorbing dye").absorbance == dyed.absorbance


@pytest.mark.parametrize("name", NEW_EXAMPLES)
def test_the_new_examples_run_a_contrast_curve_on_the_virtual_bench(
    name: str, tmp_path: Path
) -> None:
    """`labctl run contrast-curve --sim --formulation <example>` completes and reports a Dg
    near the resist's own (the protocol's bakes give a little less PEB than the ideal
    process: about 1.2x the ideal-process Dg for the baseline, 27.1 against 22.9)."""
    path = EXAMPLES / name
    result = labctl(
        "run", "contrast-curve", "--sim", "--formulation", str(path), "--data", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert ": completed" in result.stdout
    found = re.search(r"Dg ([0-9.]+) mJ/cm", result.stdout)
    assert found is not None, result.stdout
    truth = gel_dose(resist_from_formulation(load_formulation(path)))
    assert 1.0 * truth < float(found.group(1)) < 1.4 * truth
