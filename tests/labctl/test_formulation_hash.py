"""The formulation hash: invariant to formatting, order, units and batch size; not to substance."""

from __future__ import annotations

import copy
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.formulation import load_formulation
from tests.labctl.formulation_helpers import EXAMPLES, baseline, write

ROLES_WITH_AMOUNTS = (
    "resin",
    "crosslinker_b1",
    "crosslinker_b2",
    "acid_generator",
    "base",
    "surfactant",
    "solvent",
)
MASS_UNITS = {"g": 1.0, "mg": 1000.0, "kg": 0.001, "ug": 1e6}

amount = st.decimals(min_value="0.001", max_value="500", places=3).map(float)


@st.composite
def formulations(draw: Any) -> dict[str, Any]:
    data = baseline()
    for item in data["components"]:
        item["amount"] = f"{draw(amount)!r} g"
    name = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=20)
    data["formulation"]["name"] = draw(name.filter(str.strip))
    return data


def hash_of(data: dict[str, Any], style: int = 0) -> str:
    with tempfile.TemporaryDirectory() as directory:
        return load_formulation(write(Path(directory), data, style=style)).content_hash()


def grams(item: dict[str, Any]) -> float:
    value, unit = item["amount"].split()
    return float(value) / MASS_UNITS[unit]


@settings(max_examples=40, deadline=None)
@given(formulations(), st.randoms(use_true_random=False), st.integers(0, 5))
def test_order_formatting_and_name_do_not_change_the_hash(
    data: dict[str, Any], rng: random.Random, style: int
) -> None:
    original = hash_of(data)
    shuffled = copy.deepcopy(data)
    rng.shuffle(shuffled["components"])
    for item in shuffled["components"]:
        keys = list(item)
        rng.shuffle(keys)
        reordered = {k: item[k] for k in keys}
        item.clear()
        item.update(reordered)
        if "units" in item:
            rng.shuffle(item["units"])
    shuffled["formulation"]["name"] = "another name"
    shuffled["formulation"]["notes"] = "other notes"
    assert hash_of(shuffled, style=style) == original


@settings(max_examples=40, deadline=None)
@given(
    formulations(),
    st.lists(st.sampled_from(sorted(MASS_UNITS)), min_size=7, max_size=7),
    st.sampled_from([1, 2, 10, 0.5]),
)
def test_equal_amounts_in_other_units_and_a_scaled_batch_keep_the_hash(
    data: dict[str, Any], units: list[str], scale: float
) -> None:
    original = hash_of(data)
    converted = copy.deepcopy(data)
    for item, unit in zip(converted["components"], units, strict=True):
        item["amount"] = f"{grams(item) * MASS_UNITS[unit] * scale!r} {unit}"
    for item in converted["components"]:
        if "molecular_weight" in item:
            value = float(item["molecular_weight"].split()[0])
            item["molecular_weight"] = f"{value / 1000!r} kg/mol"
    assert hash_of(converted) == original


@settings(max_examples=40, deadline=None)
@given(formulations(), st.integers(0, 6), st.floats(1e-5, 0.5))
def test_a_change_of_amount_changes_the_hash(
    data: dict[str, Any], index: int, change: float
) -> None:
    original = hash_of(data)
    changed = copy.deepcopy(data)
    item = changed["components"][index]
    item["amount"] = f"{grams(item) * (1 + change)!r} g"
    assert hash_of(changed) != original


SUBSTANCE_EDITS = [
    lambda d: d["components"][0].update(lot="PHS-2311-05"),
    lambda d: d["components"][1].update(name="another cross-linker"),
    lambda d: d["components"][1].update(molecular_weight="601 g/mol"),
    lambda d: d["components"][1].update(benzene_rings=3),
    lambda d: d["components"][2].update(skeleton="glycoluril"),
    lambda d: d["components"][2].update(formula2_groups=2),
    lambda d: (
        d["components"][0]["units"][0].update(mol_percent=84, n=1)
        or d["components"][0]["units"][1].update(mol_percent=16)
    ),
    lambda d: d["components"][0]["units"][1].update(R12="alkyl"),
    lambda d: d["components"].pop(5),
    lambda d: d["components"][5].update(solution={"solute_fraction": "1 %", "solvent": "PGMEA"}),
    lambda d: d["components"][2].update(equivalent_weight="65 g/mol"),
    lambda d: d["components"][0]["units"][0].update(molar_mass="120.15 g/mol"),
    lambda d: d["components"].insert(6, {"role": "additive", "name": "dye", "amount": "0.1 g"}),
    lambda d: d["components"][0]["units"][0].update(A="methyl"),
]


@settings(max_examples=40, deadline=None)
@given(formulations(), st.integers(0, len(SUBSTANCE_EDITS) - 1))
def test_any_change_of_substance_changes_the_hash(data: dict[str, Any], edit: int) -> None:
    original = hash_of(data)
    changed = copy.deepcopy(data)
    SUBSTANCE_EDITS[edit](changed)
    assert hash_of(changed) != original


#: Hashes of the example files as they were before issue 16 (resin blends, solutions,
#: vocabulary): a file that did not change keeps its hash - runs stored with it still
#: join to it.
PINNED = {
    "in_claims.toml": "e1868ca5f641e172bb3c9a8a3bfba5d89ab26d452e7225adbee8e28406c0d263",
    "b1_only.toml": "3c9dac5ab24d1189500e704affb8206a820f83b6eec34ef08f87dabf8ae03e8a",
    "b2_55_percent.toml": "b0305f0926b06df71b20d8f14576e7edf88bdd7560bcbfa60a1161f2dc1b2e7d",
    "claim9_variant.toml": "36927e1e317c19bd160e5465488479e743f88716010dbb54cfc6f03909cf5554",
    "phs_40_mol_percent.toml": "86d4f8d1789b8b9005fe7f053d238d7fbf200225bb9dced91639ce2e4f4e8650",
    "ratio_2_98.toml": "ee77458658f82e557655b1d48171c106b808f92a7dd2343b8a006abd8d3f940c",
}


def test_the_hash_of_an_unchanged_file_does_not_change() -> None:
    for name, expected in PINNED.items():
        assert load_formulation(EXAMPLES / name).content_hash() == expected, name


def test_spelling_a_word_another_accepted_way_keeps_the_hash() -> None:
    """`H` is `hydrogen` and `CH2OMe` is `methoxymethyl`: the same substance, the same hash."""
    data = baseline()
    for unit in data["components"][0]["units"]:
        for key, value in unit.items():
            if value == "hydrogen":
                unit[key] = "H"
    assert hash_of(data) == hash_of(baseline())
