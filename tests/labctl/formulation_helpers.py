"""Build formulation files for tests: a baseline dict, edits, and a TOML writer."""

from __future__ import annotations

import copy
import random
import tomllib
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "formulations"


def baseline() -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / "in_claims.toml").read_text(encoding="utf-8"))


def component(data: dict[str, Any], role: str) -> dict[str, Any]:
    return next(c for c in data["components"] if c["role"] == role)


def with_amounts(data: dict[str, Any], grams: dict[str, float]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for role, value in grams.items():
        component(data, role)["amount"] = f"{value!r} g"
    return data


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(data: dict[str, Any], *, style: int = 0) -> str:
    """TOML text for a formulation dict; ``style`` varies layout, not content."""
    space = "  " if style % 2 else ""
    equals = " = " if style % 3 else "="
    lines = ["# written by a test", "[formulation]"]
    for key, value in data.get("formulation", {}).items():
        lines.append(f"{key}{equals}{_value(value)}")
    for item in data["components"]:
        lines.append("")
        lines.append("[[components]]")
        units = item.get("units")
        for key, value in item.items():
            if key != "units":
                lines.append(f"{space}{key}{equals}{_value(value)}")
        for unit in units or []:
            lines.append(f"{space}[[components.units]]")
            for key, value in unit.items():
                lines.append(f"{space}{space}{key}{equals}{_value(value)}")
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, data: dict[str, Any], name: str = "f.toml", style: int = 0) -> Path:
    path = tmp_path / name
    path.write_text(to_toml(data, style=style), encoding="utf-8")
    return path


def example(name: str) -> dict[str, Any]:
    """An example file of examples/formulations as a dict."""
    return tomllib.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def grams_of(item: dict[str, Any]) -> float:
    """A component's amount in grams (the dicts these helpers write use "<number> g")."""
    value, unit = item["amount"].split(maxsplit=1)
    assert unit == "g", item["amount"]
    return float(value)


def as_solution(
    data: dict[str, Any], index: int, fraction: float, solvent: str = "PGMEA"
) -> dict[str, Any]:
    """The same formulation with component ``index`` bought as a solution in ``solvent``.

    The component's amount becomes its solid / ``fraction`` and the solvent
    component named ``solvent`` gives up what the solution brings, so the
    solids and every solvent's total stay the same.
    """
    data = copy.deepcopy(data)
    item = data["components"][index]
    solid = grams_of(item)
    whole = solid / fraction
    item["amount"] = f"{whole!r} g"
    item["solution"] = {"solute_fraction": f"{100 * fraction!r} %", "solvent": solvent}
    carrier = next(c for c in data["components"] if c["role"] == "solvent" and c["name"] == solvent)
    left = grams_of(carrier) - (whole - solid)
    assert left > 0, "not enough solvent to take the solution's"
    carrier["amount"] = f"{left!r} g"
    return data


def random_formulation(rng: random.Random) -> dict[str, Any]:
    """A valid formulation (amounts in grams) whose verdicts vary from draw to draw.

    Starts from the baseline and varies amounts, the B-1's rings and molecular
    weight (or none, or not a phenol), a missing B-2 molecular weight or R groups, a B-2 resin
    by equivalent weight,
    a resin blend (with or without unit formula weights), an additive and a
    labelled B-1 that does not qualify.
    """
    data = baseline()
    for item in data["components"]:
        low, high = (100.0, 400.0) if item["role"] == "solvent" else (0.001, 20.0)
        item["amount"] = f"{round(rng.uniform(low, high), 6)!r} g"
    b1 = component(data, "crosslinker_b1")
    b1["benzene_rings"] = rng.randint(1, 6)
    b1["molecular_weight"] = f"{rng.choice([350.0, 600.0, 1999.0, 2500.0])!r} g/mol"
    if rng.random() < 0.1:
        del b1["molecular_weight"]
    if rng.random() < 0.1:
        b1["phenol"] = False  # no qualifying B-1: claim 1 not met
    b2 = component(data, "crosslinker_b2")
    choice = rng.random()
    if choice < 0.2:
        del b2["molecular_weight"]
    elif choice < 0.4:
        del b2["molecular_weight"]
        b2["form"] = "resin"
        b2["equivalent_weight"] = f"{rng.uniform(60.0, 200.0)!r} g/mol"
    if rng.random() < 0.1:
        del b2["r_groups"]  # claim 1 undetermined
    resin = component(data, "resin")
    resin["units"][0]["mol_percent"] = share = rng.choice([40, 60, 85, 97, 99])
    resin["units"][1]["mol_percent"] = 100 - share
    if rng.random() < 0.5:
        second = copy.deepcopy(resin)
        second["name"] = "poly(4-hydroxystyrene)"
        second["units"] = [
            {"formula": "3", "mol_percent": 100, "A": "H", "R1": "H", "R2": "H", "n": 1}
        ]
        second["amount"] = f"{round(rng.uniform(0.5, 20.0), 6)!r} g"
        if rng.random() < 0.5:
            for item in (resin, second):
                for unit in item["units"]:
                    unit["molar_mass"] = (
                        "120.15 g/mol" if unit["formula"] == "3" else "104.15 g/mol"
                    )
        data["components"].insert(1, second)
    if rng.random() < 0.5:
        data["components"].insert(
            -1,
            {
                "role": "additive",
                "kind": "dye",
                "name": "9-anthracenemethanol",
                "amount": f"{round(rng.uniform(0.01, 2.0), 6)!r} g",
            },
        )
    if rng.random() < 0.5:
        data["components"].insert(
            -1,
            {
                "role": "crosslinker_b1",
                "name": "2-methylol-4-methylphenol",
                "amount": f"{round(rng.uniform(0.01, 2.0), 6)!r} g",
                "molecular_weight": "138.16 g/mol",
                "phenol": True,
                "benzene_rings": 1,
                "crosslinking_groups": [
                    {"kind": "hydroxymethyl", "count": 1, "bonded_to_benzene": True}
                ],
            },
        )
    return data
