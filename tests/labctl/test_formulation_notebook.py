"""Formulations as chemists write them (issue 16): undetermined instead of refused, resin
blends, commercial cross-linker resins, additives, a closed vocabulary, solutions.

Each test quotes the claim text (seed patent, claims 1-13) it checks.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import FormulationError
from labctl.formulation import Formulation, load_formulation, parse_formulation
from labctl.formulation_vocabulary import (
    CROSSLINKING_GROUP_KINDS,
    LINKERS,
    SKELETONS,
    SUBSTITUENTS,
)
from tests.cli import labctl
from tests.labctl.formulation_helpers import (
    EXAMPLES,
    as_solution,
    baseline,
    component,
    example,
    random_formulation,
    write,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "formulation-file.md"

HS_UNIT = {"formula": "3", "mol_percent": 100, "A": "hydrogen", "R1": "hydrogen", "R2": "hydrogen"}


def parsed(data: dict[str, Any]) -> Formulation:
    return parse_formulation(data, source="test.toml")


def verdicts(data: dict[str, Any]) -> dict[int, str]:
    return {n: v.verdict for n, v in parsed(data).check_claims().items()}


def reasons(data: dict[str, Any]) -> dict[int, str]:
    return {n: v.reason for n, v in parsed(data).check_claims().items()}


BASELINE_VERDICTS = {n: ("not_met" if n == 9 else "met") for n in range(1, 14)}


# -- 1. a missing field makes its claim undetermined, not the file refused -------------


@pytest.mark.parametrize("role", ["crosslinker_b2", "crosslinker_b1"])
def test_claim_13_by_mole_is_undetermined_without_a_molecular_weight(role: str) -> None:
    """Claim 13: "the ratio between the cross-linking agents (B-1) and (B-2) is from 3/97
    to 97/3 by mole" needs both molecular weights; without one only claim 13 (and,
    for B-1, claim 8's "molecular weight of 2,000 or below") is undetermined - the
    file is not refused."""
    data = baseline()
    del component(data, role)["molecular_weight"]
    result = verdicts(data)
    index = 2 if role == "crosslinker_b2" else 1
    assert result[13] == "undetermined"
    assert f"components[{index}].molecular_weight" in reasons(data)[13]
    changed = {13} if role == "crosslinker_b2" else {8, 13}
    assert {n for n in result if result[n] != BASELINE_VERDICTS[n]} == changed
    if role == "crosslinker_b1":
        assert "components[1].molecular_weight" in reasons(data)[8]
    assert parsed(data).composition()["b1_b2_mole_ratio"] is None


def test_a_field_claim_1_needs_makes_claim_1_and_its_dependants_undetermined() -> None:
    """Claim 1's B-2 "contains at least two groups ... represented by formula (1) and
    formula (2)" whose R3-R5 are "a hydrogen atom, an alkyl group or an alkylcarbonyl
    group": without r_groups claim 1 is undetermined naming the field, and each claim
    "as described in claim 1" is undetermined (or not met on its own)."""
    data = baseline()
    del component(data, "crosslinker_b2")["r_groups"]
    result, why = verdicts(data), reasons(data)
    assert result[1] == "undetermined"
    assert "components[2].r_groups" in why[1]
    assert result[9] == "not_met"  # fails on its own: 4 rings, not 1-2
    assert all(result[n] == "undetermined" for n in range(2, 14) if n != 9)
    assert "claim 1 is undetermined (its parent)" in why[13]


def test_the_missing_molecular_weight_example_exits_0_with_claim_13_undetermined() -> None:
    """examples/formulations/b2_molecular_weight_missing.toml through the command."""
    result = labctl(
        "formulation", "check", str(EXAMPLES / "b2_molecular_weight_missing.toml"), "--json"
    )
    assert result.returncode == 0, result.stderr
    claims = json.loads(result.stdout)["claims"]
    assert claims["13"]["verdict"] == "undetermined"
    assert "components[2].molecular_weight" in claims["13"]["reason"]
    assert {k: v["verdict"] for k, v in claims.items()} == {
        str(n): ("undetermined" if n == 13 else v) for n, v in BASELINE_VERDICTS.items()
    }


# -- 2. cross-linker resins with an equivalent weight -------------------------------------


def melamine_resin(equivalent: str | None) -> dict[str, Any]:
    data = baseline()
    b2 = component(data, "crosslinker_b2")
    del b2["molecular_weight"]
    b2.update(name="methylated melamine resin", form="resin")
    if equivalent is not None:
        b2["equivalent_weight"] = equivalent
    return data


def test_claim_13_counts_a_melamine_resin_in_skeleton_units_by_its_equivalent_weight() -> None:
    """Claim 10: "a compound or resin containing a melamine skeleton"; claim 13 "by mole"
    counts the resin's melamine units: mass / (equivalent weight x 6 CH2-O-R per unit)."""
    data = melamine_resin("80 g/eq")
    formulation = parsed(data)
    b2 = formulation.by_role("crosslinker_b2")[0]
    moles = formulation.moles_of(b2)
    assert moles.of == "skeleton units"
    assert moles.value.m_as("mol") == pytest.approx(0.8 / (80 * 6))
    b1_moles = 1.2 / 600
    share = 100 * b1_moles / (b1_moles + 0.8 / 480)
    assert verdicts(data) == BASELINE_VERDICTS
    assert f"B-1/B-2 is {share:.4g}/{100 - share:.4g} by mole" in reasons(data)[13]
    assert "melamine skeleton (resin)" in reasons(data)[10]
    assert verdicts(example("melamine_resin.toml")) == BASELINE_VERDICTS


def test_an_equivalent_weight_of_a_compound_gives_the_same_moles_as_its_molecular_weight() -> None:
    """HMMM, 390.4 g/mol with six CH2-OMe, is 65.07 g per mole of groups: the same
    B-1/B-2 ratio by mole (claim 13)."""
    data = baseline()
    b2 = component(data, "crosslinker_b2")
    del b2["molecular_weight"]
    b2["equivalent_weight"] = f"{390.4 / 6!r} g/mol"
    assert parsed(data).b1_b2_mole_ratio() == pytest.approx(parsed(baseline()).b1_b2_mole_ratio())
    assert reasons(data)[13] == reasons(baseline())[13]


@pytest.mark.parametrize(
    ("skeleton", "equivalent", "expected13", "named"),
    [
        ("glycoluril", None, "undetermined", "components[2].equivalent_weight"),
        ("melamine", None, "undetermined", "components[2].equivalent_weight"),
        ("urea", "150 g/mol", "met", None),
    ],
)
def test_a_cross_linker_resin_without_an_equivalent_weight_leaves_only_claim_13_undetermined(
    skeleton: str, equivalent: str | None, expected13: str, named: str | None
) -> None:
    """Claim 10: "a compound or resin containing ... a glycoluril skeleton" is met by the
    resin; claim 13 ("by mole") has no moles for it without an equivalent weight - a
    resin's molecular weight is a chain average, not moles of cross-linker."""
    data = melamine_resin(equivalent)
    b2 = component(data, "crosslinker_b2")
    b2["skeleton"] = skeleton
    b2["molecular_weight"] = "5000 g/mol"  # a chain average: not used for moles
    result = verdicts(data)
    assert result[10] == "met" and result[13] == expected13
    if named:
        assert named in reasons(data)[13]
    assert {n for n in result if result[n] != BASELINE_VERDICTS[n]} <= {13}


@pytest.mark.parametrize(("b1_share", "expected"), [(3.0, "met"), (2.99, "not_met")])
def test_claim_13_boundary_with_a_resin_counted_by_equivalent_weight(
    b1_share: float, expected: str
) -> None:
    """Claim 13: "from 3/97 to 97/3 by mole", inclusive, with B-2 a resin in skeleton units."""
    data = melamine_resin("100 g/mol")  # 600 g per melamine unit (6 groups)
    component(data, "crosslinker_b1")["molecular_weight"] = "100 g/mol"
    component(data, "crosslinker_b1")["amount"] = f"{b1_share / 10!r} g"  # mmol x 100 g/mol
    component(data, "crosslinker_b2")["amount"] = f"{(100 - b1_share) * 60 / 100!r} g"
    assert verdicts(data)[13] == expected


# -- 3. resin blends -------------------------------------------------------------------------


def blend(first: dict[str, Any], second: dict[str, Any] | None = None) -> dict[str, Any]:
    """The baseline with PHS (``first`` units) added as a second resin; 40 g of each."""
    data = baseline()
    copolymer = component(data, "resin")
    copolymer["amount"] = "40.0 g"
    phs = {
        "role": "resin",
        "name": "poly(4-hydroxystyrene)",
        "amount": "40.0 g",
        "molecular_weight": "8000 g/mol",
        "units": [first],
    }
    if second is not None:
        phs["units"] = [first, second]
    data["components"].insert(1, phs)
    return data


def test_a_blend_is_not_summed_past_100_mol_percent() -> None:
    """Claim 6: "the alkali-soluble resin (A) contains the repeating unit represented by
    the formula (3) in an amount of 50 to 100 mole %" - the resin as a whole. PHS and an
    85:15 HS/St copolymer, 40 g each, used to give "185 mol %"; without the units'
    formula weights the blend is 85-100 mol %: met whatever the weighting. Claim 7
    ("3 to 50 mole %") is 0-15: undetermined, naming the molar_mass fields."""
    data = blend(dict(HS_UNIT, n=1))
    why = reasons(data)
    assert "185" not in why[6]
    assert verdicts(data)[6] == "met" and "85-100 mol %" in why[6]
    assert verdicts(data)[7] == "undetermined"
    assert "molar_mass" in why[7] and "components[0].units[0].molar_mass" in why[7]
    rows = {r["formula"]: r for r in parsed(data).composition()["resin_units"]}
    assert rows["3"]["mol_percent"] is None
    assert (rows["3"]["low"].magnitude, rows["3"]["high"].magnitude) == (85.0, 100.0)
    assert (rows["4"]["low"].magnitude, rows["4"]["high"].magnitude) == (0.0, 15.0)


def test_a_blend_with_unit_formula_weights_is_weighted_by_moles_of_units() -> None:
    """Claims 6 and 7 ("in an amount of 50 to 100 mole %", "3 to 50 mole %"): each resin's
    units weighted by its moles of units = mass / mean unit formula weight."""
    data = blend(dict(HS_UNIT, n=1, molar_mass="120.15 g/mol"))
    units = component(data, "resin")["units"]  # the copolymer, now components[0]
    units[0]["molar_mass"], units[1]["molar_mass"] = "120.15 g/mol", "104.15 g/mol"
    phs_units = 40 / 120.15
    copolymer_units = 40 / (0.85 * 120.15 + 0.15 * 104.15)
    formula4 = 15 * copolymer_units / (phs_units + copolymer_units)
    rows = {r["formula"]: r for r in parsed(data).composition()["resin_units"]}
    assert rows["4"]["mol_percent"].magnitude == pytest.approx(formula4)
    assert rows["3"]["mol_percent"].magnitude == pytest.approx(100 - formula4)
    assert verdicts(data) == BASELINE_VERDICTS
    assert f"{formula4:.4g} mol % of the resin blend" in reasons(data)[7]
    assert verdicts(example("resin_blend.toml")) == BASELINE_VERDICTS


@pytest.mark.parametrize(("phs_grams", "expected"), [(30.0, "met"), (29.99, "not_met")])
def test_claim_6_boundary_on_a_blend(phs_grams: float, expected: str) -> None:
    """Claim 6: "50 to 100 mole %" inclusive: 0.25 mol of formula (3) units (30 g at
    120 g/mol) against 0.25 mol of other units (25 g at 100 g/mol) is exactly 50."""
    data = blend(dict(HS_UNIT, molar_mass="120 g/mol"))
    data["components"][1]["amount"] = f"{phs_grams!r} g"
    other = component(data, "resin")
    other.update(amount="25.0 g", name="poly(methyl methacrylate)")
    other["units"] = [{"formula": "other", "mol_percent": 100, "molar_mass": "100 g/mol"}]
    assert verdicts(data)[6] == expected


def test_a_blend_wholly_outside_is_not_met_whatever_the_weighting() -> None:
    """Claim 6: "50 to 100 mole %": two resins of 40 and 45 mol % formula (3) cannot make 50."""
    data = blend(dict(HS_UNIT, mol_percent=45), {"formula": "4", "mol_percent": 55})
    units = component(data, "resin")["units"]
    units[0]["mol_percent"], units[1]["mol_percent"] = 40, 60
    assert verdicts(data)[6] == "not_met"
    assert "40-45 mol %" in reasons(data)[6] and "whatever the weighting" in reasons(data)[6]


def test_a_resin_without_recorded_units_in_a_blend() -> None:
    """Claim 2: "the alkali-soluble resin (A) contains a repeating unit represented by
    formula (3)" is met by one resin of the blend; claim 6's mol % of the whole is
    undetermined while the other resin's units are unknown, and names its units field."""
    data = blend(dict(HS_UNIT))
    del component(data, "resin")["units"]
    assert verdicts(data)[2] == "met"
    assert verdicts(data)[6] == "undetermined"
    assert "components[0].units" in reasons(data)[6]


def test_the_command_shows_the_blend() -> None:
    """The composition table shows the blend's units (claims 6/7's "mole %")."""
    result = labctl("formulation", "check", str(EXAMPLES / "resin_blend.toml"))
    assert result.returncode == 0, result.stderr
    assert "mol % of the resin blend (2 resins): formula (3) 92.42, formula (4) 7.576" in (
        result.stdout
    )
    document = json.loads(
        labctl("formulation", "check", str(EXAMPLES / "resin_blend.toml"), "--json").stdout
    )
    rows = {r["formula"]: r for r in document["composition"]["resin_units"]}
    assert rows["3"]["mol_percent"]["value"] == pytest.approx(92.42, abs=0.01)


# -- 4. additives; claim 1 comprises a qualifying B-1 and B-2 ------------------------------


def non_qualifying_b1(grams: float = 0.5) -> dict[str, Any]:
    return {
        "role": "crosslinker_b1",
        "name": "2-methylol-4-methylphenol",
        "amount": f"{grams!r} g",
        "molecular_weight": "138.16 g/mol",
        "phenol": True,
        "benzene_rings": 1,
        "crosslinking_groups": [{"kind": "hydroxymethyl", "count": 1, "bonded_to_benzene": True}],
    }


def test_an_additive_is_a_solid_and_never_b1_or_b2() -> None:
    """Claim 1: "A negative resist composition comprising: (A) ... (B-1) ... (B-2) ... (C)"
    - comprising: a dye, an adhesion promoter or a dissolution inhibitor changes no
    verdict, counts in the solids ("to the total solid content", claims 11/12) and is
    never counted as B-1/B-2."""
    data = baseline()
    for kind in ("dye", "adhesion promoter", "dissolution inhibitor"):
        data["components"].insert(
            -1, {"role": "additive", "kind": kind, "name": f"a {kind}", "amount": "0.5 g"}
        )
    formulation = parsed(data)
    assert verdicts(data) == BASELINE_VERDICTS
    assert formulation.total_solids().m_as("g") == pytest.approx(12.395 + 1.5)
    b1 = 100 * 1.2 / (12.395 + 1.5)
    assert f"B-1 is {b1:.4g} wt % of solids" in reasons(data)[11]
    assert formulation.b1_b2_mole_ratio() == pytest.approx(parsed(baseline()).b1_b2_mole_ratio())
    assert formulation.not_qualifying() == []


def test_a_b1_that_does_not_qualify_does_not_unmeet_claim_1() -> None:
    """Claim 1's B-1 is "a phenol compound containing ... at least two cross-linking
    groups": a phenol with one methylol group labelled B-1 beside a qualifying B-1 leaves
    claim 1 met; it is listed as not counted, and claims 11 and 13 leave it out."""
    data = baseline()
    data["components"].insert(2, non_qualifying_b1())
    result, why = verdicts(data), reasons(data)
    assert result == BASELINE_VERDICTS
    assert "not counted as B-1/B-2" in why[1] and "2-methylol-4-methylphenol" in why[1]
    rows = parsed(data).not_qualifying()
    assert [(r["component"], r["field"], r["verdict"]) for r in rows] == [
        ("2-methylol-4-methylphenol", "components[2]", "not_met")
    ]
    total = 12.395 + 0.5
    assert f"B-1 is {100 * 1.2 / total:.4g} wt % of solids" in why[11]
    assert reasons(baseline())[13] == why[13]  # the same B-1/B-2 moles


def test_a_b1_that_does_not_qualify_alone_leaves_claim_1_not_met() -> None:
    """Claim 1: "(B-1) ... at least two cross-linking groups bonded to any of the benzene
    rings": with only a one-methylol phenol as B-1, there is no B-1."""
    data = baseline()
    data["components"][1] = non_qualifying_b1()
    assert verdicts(data)[1] == "not_met"
    assert "no qualifying (B-1)" in reasons(data)[1] and "fewer than 2" in reasons(data)[1]


@pytest.mark.parametrize(("maybe_grams", "expected11"), [(1.0, "met"), (60.0, "undetermined")])
def test_a_b1_whose_qualification_is_undetermined_counts_both_ways(
    maybe_grams: float, expected11: str
) -> None:
    """Claim 11: "(B-1) in a proportion of 0.5 to 50 % by weight, to the total solid
    content": a second B-1 that does not record whether it is a phenol may or may not
    count; the claim is decided only when both ways agree."""
    data = baseline()
    maybe = non_qualifying_b1(maybe_grams)
    maybe["crosslinking_groups"][0]["count"] = 2
    del maybe["phenol"]
    data["components"].insert(2, maybe)
    result = verdicts(data)
    assert result[1] == "met"
    assert result[11] == expected11
    if expected11 == "undetermined":
        assert "components[2].phenol" in reasons(data)[11]
    assert parsed(data).not_qualifying()[0]["verdict"] == "undetermined"


def test_claims_8_and_9_are_each_met_by_one_qualifying_b1() -> None:
    """Claim 8: B-1 "3 to 5 benzene rings per molecule"; claim 9: "1 to 2 benzene rings".
    One composition comprising both kinds of B-1 is within both (the seed README's "cannot
    both hold" is for one B-1)."""
    data = baseline()
    two_ring = copy.deepcopy(component(data, "crosslinker_b1"))
    two_ring.update(name="2-ring B-1", benzene_rings=2, molecular_weight="404.5 g/mol")
    data["components"].insert(2, two_ring)
    result = verdicts(data)
    assert result[8] == "met" and result[9] == "met"


def test_an_additive_takes_only_its_own_fields(tmp_path: Path) -> None:
    """An additive has a free `kind` and no B-1 structure fields."""
    data = baseline()
    data["components"].insert(-1, {"role": "additive", "name": "x", "amount": "1 g"})
    assert verdicts(data) == BASELINE_VERDICTS  # kind is optional
    data["components"][-2]["phenol"] = True
    with pytest.raises(FormulationError, match=r"components\[6\]\.phenol: unknown key"):
        load_formulation(write(tmp_path, data))


# -- 5. a closed vocabulary; "parts by weight" -----------------------------------------------


@pytest.mark.parametrize(
    ("where", "spelling"),
    [
        ("A", "H"),
        ("A", "Hydrogen"),
        ("A", "HYDROGEN"),
        ("R1", "hydrogen atom"),
        ("R2", " h "),
    ],
)
def test_hydrogen_spelled_any_common_way_is_hydrogen(where: str, spelling: str) -> None:
    """Claim 2: "A represents a hydrogen atom ..."; "H" and "Hydrogen" used to put the unit
    silently outside claim 2. Now the same verdicts and the same hash as "hydrogen"."""
    data = baseline()
    component(data, "resin")["units"][0][where] = spelling
    assert verdicts(data) == BASELINE_VERDICTS
    assert parsed(data).content_hash() == parsed(baseline()).content_hash()


@pytest.mark.parametrize(
    ("edit", "claim"),
    [
        (lambda d: component(d, "resin")["units"][0].update(A="methyl"), 2),
        (lambda d: component(d, "resin")["units"][0].update(A="Me", R1="OMe", R2="Cl"), 2),
        (lambda d: component(d, "resin")["units"][1].update(R12="tBu", R13="Ph"), 4),
        (lambda d: component(d, "crosslinker_b2").update(r_groups=["Me", "H", "Ac"]), 1),
        (
            lambda d: component(d, "crosslinker_b1").update(
                crosslinking_groups=[{"kind": "methoxymethyl", "count": 4}]
            ),
            1,
        ),
        (lambda d: component(d, "crosslinker_b2").update(skeleton="Glycoluril"), 10),
    ],
)
def test_specific_groups_are_in_their_claim_class(edit: Any, claim: int) -> None:
    """Claim 2: "A represents a hydrogen atom, an alkyl group, ..." - `methyl` is an alkyl
    group; claim 1: "a hydroxymethyl group, an alkoxymethyl group ..." - `methoxymethyl` is
    an alkoxymethyl group; R3-R5 "an alkylcarbonyl group" - `Ac`."""
    data = baseline()
    edit(data)
    assert verdicts(data) == BASELINE_VERDICTS, reasons(data)[claim]


def test_a_group_outside_the_claim_list_is_named_by_its_class() -> None:
    """Claim 4: R11-R15 "each represent the same meaning as R1" - a nitro group is not
    among them; claim 1: an epoxy group is not "a hydroxymethyl group, an alkoxymethyl
    group and an acyloxymethyl group"."""
    data = baseline()
    component(data, "resin")["units"][1]["R12"] = "NO2"
    assert verdicts(data)[4] == "not_met" and "R12 is nitro" in reasons(data)[4]
    data = baseline()
    component(data, "crosslinker_b1")["crosslinking_groups"] = [{"kind": "epoxy", "count": 4}]
    assert verdicts(data)[1] == "not_met"


UNKNOWN_SPELLINGS = {
    "A": (lambda d: component(d, "resin")["units"][0].update(A="hydorgen"), "units[0].A"),
    "R12": (lambda d: component(d, "resin")["units"][1].update(R12="nitrogen"), "units[1].R12"),
    "X": (
        lambda d: component(d, "resin")["units"].__setitem__(
            1, {"formula": "5", "mol_percent": 15, "A": "H", "X": "ester-ish"}
        ),
        "units[1].X",
    ),
    "r_groups": (
        lambda d: component(d, "crosslinker_b2").update(r_groups=["alkly"]),
        "components[2].r_groups[0]",
    ),
    "kind": (
        lambda d: component(d, "crosslinker_b1").update(
            crosslinking_groups=[{"kind": "methoxymethly", "count": 4}]
        ),
        "components[1].crosslinking_groups[0].kind",
    ),
    "skeleton": (
        lambda d: component(d, "crosslinker_b2").update(skeleton="glycouril"),
        "components[2].skeleton",
    ),
}


@pytest.mark.parametrize("case", UNKNOWN_SPELLINGS)
def test_an_unknown_spelling_is_refused_with_the_accepted_words(case: str, tmp_path: Path) -> None:
    """Never silently outside a claim: a word not in the vocabulary is refused, naming
    the file, the field, a near word, and the list of accepted words."""
    edit, where = UNKNOWN_SPELLINGS[case]
    data = baseline()
    edit(data)
    path = write(tmp_path, data)
    with pytest.raises(FormulationError) as info:
        load_formulation(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and where in message
    assert "\n" not in message
    vocabulary = {
        "X": LINKERS,
        "kind": CROSSLINKING_GROUP_KINDS,
        "skeleton": SKELETONS,
    }.get(case, SUBSTITUENTS)
    assert vocabulary.listing() in message
    if case in ("A", "r_groups", "kind", "skeleton"):
        assert "did you mean" in message


def test_a_bad_spelling_exits_2_with_one_line_naming_file_and_field(tmp_path: Path) -> None:
    """`labctl formulation check` on A = "hydorgen": exit 2, one line, no traceback."""
    data = baseline()
    UNKNOWN_SPELLINGS["A"][0](data)
    path = write(tmp_path, data)
    result = labctl("formulation", "check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{path}: components[0].units[0].A: 'hydorgen'" in lines[0]
    assert "did you mean 'hydrogen'" in lines[0]


@pytest.mark.parametrize("unit", ["parts by weight", "part by weight", "pbw", "parts"])
def test_parts_by_weight_in_every_spelling(unit: str) -> None:
    """Claims 11/12 "% by weight, to the total solid content" read the same in parts:
    "parts by weight" is accepted like "parts" and "pbw", with the same hash."""
    data = baseline()
    for item in data["components"]:
        item["amount"] = item["amount"].replace(" g", f" {unit}")
    formulation = parsed(data)
    assert verdicts(data) == BASELINE_VERDICTS
    assert formulation.content_hash() == parsed(baseline()).content_hash()
    assert formulation.total_solids().magnitude == pytest.approx(12.395)


def test_the_amount_hint_shows_every_accepted_form(tmp_path: Path) -> None:
    data = baseline()
    component(data, "base")["amount"] = "0.03 mL"
    with pytest.raises(FormulationError) as info:
        load_formulation(write(tmp_path, data))
    for form in ('"10 g"', '"100 parts"', '"100 parts by weight"', '"100 pbw"'):
        assert form in str(info.value)


def test_the_docs_list_every_word_and_spelling() -> None:
    """docs/formulation-file.md lists each vocabulary word with its other spellings."""
    text = DOCS.read_text(encoding="utf-8")
    for vocabulary in (SUBSTITUENTS, LINKERS, CROSSLINKING_GROUP_KINDS, SKELETONS):
        for word, (kind, spellings) in vocabulary.words.items():
            row = next(
                (line for line in text.splitlines() if f"`{word}`" in line and "|" in line), None
            )
            assert row is not None, word
            assert f"| {kind} |" in row, word
            for spelling in spellings:
                assert spelling in row, (word, spelling)


def test_every_spelling_names_one_word() -> None:
    """The vocabularies are unambiguous after case and punctuation are ignored."""
    for vocabulary in (SUBSTITUENTS, LINKERS, CROSSLINKING_GROUP_KINDS, SKELETONS):
        for word, (_, spellings) in vocabulary.words.items():
            for spelling in (word, *spellings, word.upper(), f" {word.title()} group"):
                assert vocabulary.word(spelling) == word


# -- 6. components bought as solutions ---------------------------------------------------------


def test_a_solution_is_split_into_solid_and_solvent() -> None:
    """Claims 11/12: "% by weight, to the total solid content": a surfactant bought as 1 %
    in PGMEA and a PAG as 20 % in PGMEA bring only their solute to the solids."""
    data = as_solution(as_solution(baseline(), 5, 0.01), 3, 0.2)
    assert component(data, "surfactant")["amount"] == "0.5 g"
    formulation = parsed(data)
    rows = {r["role"]: r for r in formulation.composition()["components"]}
    assert rows["surfactant"]["solids"].m_as("g") == pytest.approx(0.005)
    assert rows["acid_generator"]["solids"].m_as("g") == pytest.approx(0.36)
    assert rows["acid_generator"]["moles"].m_as("mol") == pytest.approx(0.36 / 412.4)
    assert formulation.total_solids().m_as("g") == pytest.approx(12.395)
    assert [(n, a.m_as("g")) for n, a in formulation.solvents()] == [("PGMEA", pytest.approx(91.0))]
    assert verdicts(data) == BASELINE_VERDICTS


FIGURES = ("solids", "wt_percent_of_solids", "wt_percent_of_solution", "moles")


def figures(formulation: Formulation) -> dict[str, Any]:
    """Every composition figure of the solids, the totals, the blend and the solvents."""
    table = formulation.composition()
    out: dict[str, Any] = {
        "total_solids": table["total_solids"].magnitude,
        "solids_content": table["solids_content"].magnitude,
        "ratio": None if table["b1_b2_mole_ratio"] is None else table["b1_b2_mole_ratio"].m,
        "blend": [
            (r["formula"], r["low"].magnitude, r["high"].magnitude, r["needs"])
            for r in table["resin_units"]
        ],
        "solvents": [(n, a.magnitude) for n, a in formulation.solvents()],
    }
    for index, row in enumerate(table["components"]):
        if row["role"] != "solvent":
            for key in FIGURES:
                value = row[key]
                out[f"{index}.{key}"] = None if value is None else value.magnitude
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


CASES = 120


@pytest.mark.parametrize("seed", range(CASES))
def test_splitting_a_component_into_a_solution_changes_no_verdict_and_no_figure(
    seed: int,
) -> None:
    """Claims 11/12's "total solid content" and every other claim and figure: any solid
    component of a generated formulation, bought as a solution in the file's solvent
    with the same solid (the solvent reduced by what the solution brings), gives the
    same verdicts, reasons and composition figures."""
    rng = random.Random(seed)
    data = random_formulation(rng)
    solvent = next(c for c in data["components"] if c["role"] == "solvent")
    room = float(solvent["amount"].split()[0]) * 0.9
    original = parsed(data)
    solids = [i for i, c in enumerate(data["components"]) if c["role"] != "solvent"]
    for index in rng.sample(solids, k=min(3, len(solids))):
        grams = float(data["components"][index]["amount"].split()[0])
        least = grams / (grams + room)  # a smaller fraction needs more solvent than there is
        fraction = rng.choice([least + (1 - least) * rng.random(), 1.0, max(least, 0.2)])
        split = parsed(as_solution(data, index, fraction))
        assert {n: (v.verdict, v.reason) for n, v in split.check_claims().items()} == {
            n: (v.verdict, v.reason) for n, v in original.check_claims().items()
        }
        before, after = figures(original), figures(split)
        assert before.keys() == after.keys()
        for key in before:
            assert same(before[key], after[key]), (key, before[key], after[key])


def test_the_generated_cases_cover_every_verdict() -> None:
    """The property test above is only as good as its cases: they reach met, not met and
    undetermined on the claims issue 16 touches (1, 6, 7, 8, 11, 13)."""
    seen: dict[int, set[str]] = {n: set() for n in range(1, 14)}
    for seed in range(CASES):
        for number, verdict in verdicts(random_formulation(random.Random(seed))).items():
            seen[number].add(verdict)
    for claim in (1, 6, 7, 8, 11, 13):
        assert seen[claim] == {"met", "not_met", "undetermined"}, (claim, seen[claim])


@pytest.mark.parametrize(
    ("solution", "where", "problem"),
    [
        ({"solute_fraction": "120 %", "solvent": "PGMEA"}, "solute_fraction", "outside 0-100 %"),
        ({"solute_fraction": "0 %", "solvent": "PGMEA"}, "solute_fraction", "outside 0-100 %"),
        ({"solute_fraction": 20, "solvent": "PGMEA"}, "solute_fraction", 'written "20 %"'),
        ({"solute_fraction": "20", "solvent": "PGMEA"}, "solute_fraction", 'written "20 %"'),
        ({"solute_fraction": "20 g", "solvent": "PGMEA"}, "solute_fraction", "wrong dimension"),
        ({"solute_fraction": "20 %"}, "solvent", "not a non-empty string"),
        ({"solvent": "PGMEA"}, "solute_fraction", "missing"),
        ({"solute_fraction": "20 %", "solvent": "PGMEA", "lot": 1}, "lot", "unknown key"),
    ],
)
def test_an_unreadable_solution_is_refused(
    solution: dict[str, Any], where: str, problem: str, tmp_path: Path
) -> None:
    data = baseline()
    component(data, "acid_generator")["solution"] = solution
    with pytest.raises(FormulationError) as info:
        load_formulation(write(tmp_path, data))
    assert f"components[3].solution.{where}: " in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize("written", ["20 %", "20 wt %", "20 wt%", "20 % w/w", "20 percent", 0.2])
def test_a_solute_fraction_in_every_spelling(written: Any) -> None:
    data = baseline()
    item = component(data, "acid_generator")
    item["amount"] = "1.8 g"
    item["solution"] = {"solute_fraction": written, "solvent": "PGMEA"}
    assert parsed(data).total_solids().m_as("g") == pytest.approx(12.395)


def test_a_solvent_is_not_a_solution(tmp_path: Path) -> None:
    data = baseline()
    component(data, "solvent")["solution"] = {"solute_fraction": "50 %", "solvent": "water"}
    with pytest.raises(FormulationError, match=r"components\[6\]\.solution: a solvent"):
        load_formulation(write(tmp_path, data))


# -- 7. the examples and the command --------------------------------------------------------


def test_the_lab_notebook_example() -> None:
    """examples/formulations/lab_notebook.toml: parts by weight, abbreviations, two
    solutions, two additives and a labelled B-1 that does not qualify - the baseline's
    composition and verdicts."""
    notebook = load_formulation(EXAMPLES / "lab_notebook.toml")
    assert {n: v.verdict for n, v in notebook.check_claims().items()} == BASELINE_VERDICTS
    assert notebook.b1_b2_mole_ratio() == pytest.approx(parsed(baseline()).b1_b2_mole_ratio())
    result = labctl("formulation", "check", str(EXAMPLES / "lab_notebook.toml"), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [r["component"] for r in document["not_qualifying"]] == ["2-methylol-4-methylphenol"]
    rows = {r["name"]: r for r in document["composition"]["components"]}
    assert rows["triphenylsulfonium triflate"]["solids"]["value"] == pytest.approx(3.6)
    assert rows["triphenylsulfonium triflate"]["solution"]["solvent"] == "PGMEA"
    table = labctl("formulation", "check", str(EXAMPLES / "lab_notebook.toml")).stdout
    assert "18 pbw (20 % in PGMEA)" in table
    assert re.search(r"not counted as B-1: B-1 '2-methylol-4-methylphenol'", table)


# -- found in review ----------------------------------------------------------------------------


def test_a_b1_equivalent_weight_counts_its_ch2_o_r_groups_only() -> None:
    """Claim 13 "by mole": a B-1 given by its equivalent weight (grams per mole of CH2-O-R
    groups) has mass / (equivalent weight x CH2-O-R groups) molecules - an epoxy group it
    also carries is recorded but is not a CH2-O-R group (claim 1: "a hydroxymethyl group,
    an alkoxymethyl group and an acyloxymethyl group"), so it does not change the moles."""
    data = baseline()
    b1 = component(data, "crosslinker_b1")
    del b1["molecular_weight"]
    b1["equivalent_weight"] = "150 g/eq"  # 600 g/mol, four CH2-OMe
    b1["crosslinking_groups"] = [
        {"kind": "methoxymethyl", "count": 4, "bonded_to_benzene": True},
        {"kind": "glycidyl", "count": 2, "bonded_to_benzene": False},
    ]
    formulation = parsed(data)
    assert formulation.by_role("crosslinker_b1")[0].crosslinking_sites() == 4
    assert formulation.moles(formulation.by_role("crosslinker_b1")[0]).m_as("mol") == pytest.approx(
        1.2 / 600
    )
    assert reasons(data)[13] == reasons(baseline())[13]


def test_an_unknown_key_of_an_additive_reads_as_english(tmp_path: Path) -> None:
    data = baseline()
    data["components"].insert(
        -1, {"role": "additive", "kind": "dye", "name": "x", "amount": "1 g", "colour": "red"}
    )
    with pytest.raises(FormulationError) as info:
        load_formulation(write(tmp_path, data))
    assert "components[6].colour: unknown key for an additive; allowed: " in str(info.value)
    component(data, "crosslinker_b2")["colour"] = "white"
    del data["components"][-2]
    with pytest.raises(FormulationError, match="unknown key for a crosslinker_b2"):
        load_formulation(write(tmp_path, data))


@pytest.mark.parametrize("written", ["20 % (w/w)", "20 %(w/w)", "20 % by wt", "20 % by wt."])
def test_a_solute_fraction_as_data_sheets_write_it(written: str) -> None:
    """A PAG "20 % (w/w) in PGMEA" or "20 % by wt" is the 20 % solution of the docs."""
    data = baseline()
    item = component(data, "acid_generator")
    item["amount"] = "1.8 g"
    item["solution"] = {"solute_fraction": written, "solvent": "PGMEA"}
    assert parsed(data).total_solids().m_as("g") == pytest.approx(12.395)
