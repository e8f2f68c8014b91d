"""Build formulation files for tests: a baseline dict, edits, and a TOML writer."""

from __future__ import annotations

import copy
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
