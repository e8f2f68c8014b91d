"""Formulation files: composition math, claims at their boundaries, invalid files, hash."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import FormulationError
from labctl.formulation import load_formulation, parse_formulation
from labctl.units import Q_
from tests.labctl.formulation_helpers import EXAMPLES, baseline, component, with_amounts, write

# Solids that add up to 100 g, so a component's grams are its wt % of solids.
HUNDRED = {
    "resin": 90.0,
    "crosslinker_b1": 4.0,
    "crosslinker_b2": 4.0,
    "acid_generator": 1.8,
    "base": 0.1,
    "surfactant": 0.1,
}


def verdicts(data: dict[str, Any]) -> dict[int, str]:
    formulation = parse_formulation(data, source="test.toml")
    return {n: v.verdict for n, v in formulation.check_claims().items()}


def reasons(data: dict[str, Any]) -> dict[int, str]:
    formulation = parse_formulation(data, source="test.toml")
    return {n: v.reason for n, v in formulation.check_claims().items()}


def test_composition_math_of_the_baseline() -> None:
    formulation = load_formulation(EXAMPLES / "in_claims.toml")
    composition = formulation.composition()
    assert composition["total_solids"].m_as("g") == pytest.approx(12.395)
    assert composition["solids_content"].m_as("percent") == pytest.approx(100 * 12.395 / 103.395)
    b1 = next(r for r in composition["components"] if r["role"] == "crosslinker_b1")
    assert b1["wt_percent_of_solids"].m_as("percent") == pytest.approx(100 * 1.2 / 12.395)
    assert b1["moles"].m_as("mmol") == pytest.approx(1.2 / 600 * 1000)
    ratio = composition["b1_b2_mole_ratio"].magnitude
    assert ratio == pytest.approx((1.2 / 600) / (0.8 / 390.4))
    solvent = next(r for r in composition["components"] if r["role"] == "solvent")
    assert solvent["wt_percent_of_solids"] is None


def test_the_in_claims_example_meets_every_claim_but_9() -> None:
    result = verdicts(baseline())
    assert {n for n, v in result.items() if v != "met"} == {9}


@pytest.mark.parametrize(
    ("example", "outside"),
    [
        ("b1_only.toml", 1),
        ("ratio_2_98.toml", 13),
        ("b2_55_percent.toml", 12),
        ("phs_40_mol_percent.toml", 6),
        ("claim9_variant.toml", 8),
    ],
)
def test_each_example_is_outside_its_claim(example: str, outside: int) -> None:
    formulation = load_formulation(EXAMPLES / example)
    assert formulation.check_claims()[outside].verdict == "not_met"
    if example == "claim9_variant.toml":
        assert formulation.check_claims()[9].verdict == "met"


@pytest.mark.parametrize(
    ("role", "grams", "claim", "expected"),
    [
        ("crosslinker_b1", 0.5, 11, "met"),
        ("crosslinker_b1", 0.499, 11, "not_met"),
        ("crosslinker_b1", 50.0, 11, "met"),
        ("crosslinker_b1", 50.001, 11, "not_met"),
        ("crosslinker_b2", 0.5, 12, "met"),
        ("crosslinker_b2", 0.499, 12, "not_met"),
        ("crosslinker_b2", 50.0, 12, "met"),
        ("crosslinker_b2", 50.001, 12, "not_met"),
    ],
)
def test_weight_percent_boundaries(role: str, grams: float, claim: int, expected: str) -> None:
    amounts = dict(HUNDRED)
    amounts["resin"] += amounts[role] - grams  # keep 100 g of solids
    amounts[role] = grams
    result = verdicts(with_amounts(baseline(), amounts))
    assert result[claim] == expected
    if expected == "not_met":
        assert "outside 0.5-50" in reasons(with_amounts(baseline(), amounts))[claim]


@pytest.mark.parametrize(
    ("b1_moles", "b2_moles", "expected"),
    [(3, 97, "met"), (2.99, 97.01, "not_met"), (97, 3, "met"), (97.01, 2.99, "not_met")],
)
def test_mole_ratio_boundaries(b1_moles: float, b2_moles: float, expected: str) -> None:
    data = baseline()
    component(data, "crosslinker_b1")["molecular_weight"] = "100 g/mol"
    component(data, "crosslinker_b2")["molecular_weight"] = "100 g/mol"
    amounts = {"resin": 400.0, "crosslinker_b1": b1_moles / 10, "crosslinker_b2": b2_moles / 10}
    assert verdicts(with_amounts(data, amounts))[13] == expected


@pytest.mark.parametrize(
    ("formula3", "expected6", "expected7"),
    [
        (50, "met", "met"),
        (49.99, "not_met", "not_met"),
        (97, "met", "met"),
        (97.01, "met", "not_met"),
        (100, "met", "undetermined_or_not"),
    ],
)
def test_mol_percent_boundaries(formula3: float, expected6: str, expected7: str) -> None:
    data = baseline()
    resin = component(data, "resin")
    resin["units"][0]["mol_percent"] = formula3
    if formula3 == 100:
        resin["units"] = resin["units"][:1]
    else:
        resin["units"][1]["mol_percent"] = round(100 - formula3, 6)
    result = verdicts(data)
    assert result[6] == expected6
    if expected7 == "undetermined_or_not":
        assert result[4] == "not_met" and result[7] == "not_met"
    else:
        assert result[7] == expected7


def test_formula_4_at_exactly_3_and_50_mol_percent() -> None:
    for value, expected in ((3, "met"), (2.99, "not_met"), (50, "met"), (50.01, "not_met")):
        data = baseline()
        units = component(data, "resin")["units"]
        units[0]["mol_percent"], units[1]["mol_percent"] = round(100 - value, 6), value
        assert verdicts(data)[7] == expected, value


@pytest.mark.parametrize(
    ("weight", "rings", "claim8", "claim9"),
    [
        ("2000 g/mol", 4, "met", "not_met"),
        ("2000.1 g/mol", 4, "not_met", "not_met"),
        ("1.999 kg/mol", 3, "met", "not_met"),
        ("600 g/mol", 3, "met", "not_met"),
        ("600 g/mol", 5, "met", "not_met"),
        ("600 g/mol", 6, "not_met", "not_met"),
        ("600 g/mol", 2, "not_met", "met"),
        ("600 g/mol", 1, "not_met", "met"),
    ],
)
def test_b1_molecular_weight_and_ring_boundaries(
    weight: str, rings: int, claim8: str, claim9: str
) -> None:
    data = baseline()
    b1 = component(data, "crosslinker_b1")
    b1["molecular_weight"], b1["benzene_rings"] = weight, rings
    result = verdicts(data)
    assert (result[8], result[9]) == (claim8, claim9)


def test_claim_1_is_checked_from_the_structure_fields() -> None:
    data = baseline()
    component(data, "crosslinker_b1")["crosslinking_groups"] = [
        {"kind": "alkoxymethyl", "count": 1, "bonded_to_benzene": True},
        {"kind": "alkoxymethyl", "count": 3, "bonded_to_benzene": False},
    ]
    assert verdicts(data)[1] == "not_met"
    assert "fewer than 2" in reasons(data)[1]
    data = baseline()
    component(data, "crosslinker_b1")["crosslinking_groups"] = [
        {"kind": "hydroxymethyl", "count": 1, "bonded_to_benzene": True},
        {"kind": "acyloxymethyl", "count": 1, "bonded_to_benzene": True},
    ]
    assert verdicts(data)[1] == "met"
    data = baseline()
    component(data, "crosslinker_b1")["phenol"] = False
    assert verdicts(data)[1] == "not_met"
    data = baseline()
    b2 = component(data, "crosslinker_b2")
    b2["formula1_groups"], b2["formula2_groups"] = 1, 0
    assert verdicts(data)[1] == "not_met"
    b2["formula1_groups"], b2["formula2_groups"] = 1, 1
    assert verdicts(data)[1] == "met"
    b2["r_groups"] = ["alkyl", "aryl"]
    assert verdicts(data)[1] == "not_met"


def test_missing_structure_fields_make_claims_undetermined_and_dependents_follow() -> None:
    data = baseline()
    del component(data, "crosslinker_b1")["benzene_rings"]
    result = verdicts(data)
    assert result[1] == "undetermined"
    assert all(result[n] in ("undetermined", "not_met") for n in range(2, 14))
    assert "claim 1 is undetermined (its parent)" in reasons(data)[2]
    data = baseline()
    del component(data, "resin")["units"]
    result = verdicts(data)
    assert result[1] == "met" and result[2] == "undetermined" and result[6] == "undetermined"


def test_a_dependent_claim_is_met_only_if_its_parent_is() -> None:
    data = baseline()
    data["components"] = [c for c in data["components"] if c["role"] != "acid_generator"]
    result = verdicts(data)
    assert result[1] == "not_met"
    assert all(result[n] == "not_met" for n in range(2, 14))


def test_substituents_outside_the_claim_vocabulary_fail_claims_2_and_4() -> None:
    data = baseline()
    units = component(data, "resin")["units"]
    units[0]["n"] = 4
    assert verdicts(data)[2] == "not_met"
    data = baseline()
    component(data, "resin")["units"][1]["R12"] = "nitro"
    assert verdicts(data)[4] == "not_met"
    data = baseline()
    component(data, "resin")["units"][1] = {
        "formula": "5",
        "mol_percent": 15,
        "A": "hydrogen",
        "X": "COO",
        "R101": "hydroxyl",
        "a": 1,
    }
    assert verdicts(data)[4] == "met"
    component(data, "resin")["units"][1]["X"] = "SO2"
    assert verdicts(data)[4] == "not_met"


def test_b2_skeleton_claim_10() -> None:
    data = baseline()
    for skeleton, expected in (
        ("glycoluril", "met"),
        ("urea", "met"),
        ("benzoguanamine", "not_met"),
    ):
        component(data, "crosslinker_b2")["skeleton"] = skeleton
        assert verdicts(data)[10] == expected


def test_parts_by_weight_give_the_same_percentages_as_grams() -> None:
    grams = load_formulation(EXAMPLES / "in_claims.toml")
    data = baseline()
    for item in data["components"]:
        item["amount"] = item["amount"].replace(" g", " parts")
    parts = parse_formulation(data)
    assert parts.solids_fraction("crosslinker_b1") == pytest.approx(
        grams.solids_fraction("crosslinker_b1")
    )
    assert parts.b1_b2_mole_ratio() == pytest.approx(grams.b1_b2_mole_ratio())
    assert parts.content_hash() == grams.content_hash()


INVALID = {
    "unknown role": (
        lambda d: component(d, "base").update(role="hardener"),
        "components[4].role: 'hardener' is not a role",
    ),
    "negative amount": (
        lambda d: component(d, "base").update(amount="-0.03 g"),
        "components[4].amount: '-0.03 g' must be more than zero",
    ),
    "mol % not summing to 100": (
        lambda d: component(d, "resin")["units"][1].update(mol_percent=14),
        "components[0].units: mol % of the repeating units sum to 99",
    ),
    "wrong dimension": (
        lambda d: component(d, "base").update(amount="0.03 mL"),
        "components[4].amount: '0.03 mL' has the wrong dimension",
    ),
    "number without unit": (
        lambda d: component(d, "base").update(amount=0.03),
        "components[4].amount: 0.03 needs a unit",
    ),
    "mixed grams and parts": (
        lambda d: component(d, "base").update(amount="3 parts"),
        "components.amount: amounts mix masses and parts by weight",
    ),
    "unknown key": (
        lambda d: component(d, "crosslinker_b2").update(colour="blue"),
        "components[2].colour: unknown key",
    ),
    "bad formula": (
        lambda d: component(d, "resin")["units"][0].update(formula="7"),
        "components[0].units[0].formula: '7' is not one of 3, 4, 5, 6, other",
    ),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_files_are_refused_naming_file_and_field(case: str, tmp_path: Path) -> None:
    edit, expected = INVALID[case]
    data = baseline()
    edit(data)
    path = write(tmp_path, data)
    with pytest.raises(FormulationError) as info:
        load_formulation(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_toml_syntax_and_encoding_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[formulation]\nname = "x\n', encoding="utf-8")
    with pytest.raises(FormulationError, match="TOML syntax"):
        load_formulation(path)
    path.write_bytes(b'[formulation]\nname = "\xe9"\n')
    with pytest.raises(FormulationError, match="not UTF-8"):
        load_formulation(path)


def run_labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_json_output() -> None:
    result = run_labctl("formulation", "check", str(EXAMPLES / "ratio_2_98.toml"), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) >= {"hash", "composition", "claims"}
    assert set(document["claims"]) == {str(n) for n in range(1, 14)}
    assert document["claims"]["13"]["verdict"] == "not_met"
    assert document["claims"]["13"]["reason"].startswith("claim 13: B-1/B-2 is 2/98 by mole")
    assert all(
        v["verdict"] in ("met", "not_met", "undetermined") for v in document["claims"].values()
    )
    assert len(document["hash"]) == 64


def test_cli_table_output_and_exit_codes(tmp_path: Path) -> None:
    result = run_labctl("formulation", "check", str(EXAMPLES / "b1_only.toml"))
    assert result.returncode == 0
    assert "crosslinker_b1" in result.stdout and "not met" in result.stdout
    data = baseline()
    INVALID["negative amount"][0](data)
    path = write(tmp_path, data)
    result = run_labctl("formulation", "check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "components[4].amount" in result.stderr


def test_quantities_cross_the_boundary() -> None:
    formulation = load_formulation(EXAMPLES / "in_claims.toml")
    assert formulation.total_solids().dimensionality == Q_(1, "g").dimensionality
    assert (
        copy.deepcopy(formulation.composition())["solids_content"].units == Q_(1, "percent").units
    )
