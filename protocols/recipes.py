"""Protocol parameters: declared with units and ranges, read from recipe files and ``--set``.

A recipe file is TOML, data only::

    protocol = "contrast-curve"
    [parameters]
    coat_speed = "3000 rpm"
    peb_temperature = "110 degC"
    dose_min = "5 mJ/cm**2"
    fields = 16

Every value is checked against the protocol's declaration (unit dimension
and range) before anything moves; a bad one is refused with one line naming
the file, the field and the allowed range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pint import DimensionalityError

from labctl.errors import RecipeError
from labctl.files import read_toml
from labctl.units import Q_, as_quantity, ureg

__all__ = ["COMMON", "Parameter", "load_recipe", "resolve_parameters"]


@dataclass(frozen=True)
class Parameter:
    """One protocol parameter: unit (None for a count or a name), default and range."""

    name: str
    default: Any
    unit: str | None
    low: float | None = None
    high: float | None = None
    doc: str = ""
    is_list: bool = False
    is_text: bool = False

    def allowed(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.is_text:
            return "a name"
        return f"{self.low:g}{unit} to {self.high:g}{unit}"

    def coerce(self, raw: Any, source: str, where: str) -> Any:
        if self.is_list:
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, Sequence) or isinstance(items, str) or not items:
                raise RecipeError(f"{raw!r} is not a list", source=source, field=where)
            single = Parameter(self.name, None, self.unit, self.low, self.high)
            return [single.coerce(item, source, where) for item in items]
        if self.is_text:
            if not isinstance(raw, str) or not raw.strip() or any(c in raw for c in "/\\\r\n"):
                raise RecipeError(f"{raw!r} is not a plain name", source=source, field=where)
            return raw.strip()
        value: Any
        if self.unit is None:
            number: int | None
            try:
                number = (
                    int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
                )
            except ValueError:
                number = None
            if number is None:
                raise RecipeError(
                    f"{raw!r} is not a whole number ({self.allowed()})", source=source, field=where
                )
            value = number
            magnitude: float = number
        else:
            if not isinstance(raw, str):
                raise RecipeError(
                    f'{raw!r} needs a unit, like "{self.default:~P}"'
                    if hasattr(self.default, "units")
                    else f"{raw!r} needs a unit ({self.unit})",
                    source=source,
                    field=where,
                )
            try:
                # as an engineer means it: 100 Hz is 6000 rpm, "5 degC/min" is 5 K/min
                value = as_quantity(raw.strip(), ureg.Unit(self.unit))
            except DimensionalityError as exc:
                # extra_msg says why when it is not the dimension (a difference, not a temperature)
                problem = (
                    f"{raw!r}{exc.extra_msg}"
                    if exc.extra_msg
                    else f"{raw!r} is not a quantity in {self.unit}"
                )
                raise RecipeError(
                    f"{problem} ({self.allowed()})", source=source, field=where
                ) from None
            except TypeError as exc:  # a bare number where a unit is needed
                raise RecipeError(f"{exc} ({self.allowed()})", source=source, field=where) from None
            except Exception:
                raise RecipeError(
                    f"{raw!r} is not a quantity in {self.unit} ({self.allowed()})",
                    source=source,
                    field=where,
                ) from None
            magnitude = float(value.magnitude)
        if (
            self.low is not None
            and self.high is not None
            and not self.low <= magnitude <= self.high
        ):
            raise RecipeError(f"{raw!r} is outside {self.allowed()}", source=source, field=where)
        return value


def q(value: float, unit: str) -> Any:
    return Q_(value, unit)


#: Parameters every process protocol shares.
COMMON: tuple[Parameter, ...] = (
    Parameter("spread_speed", q(500, "rpm"), "rpm", 0, 2000, "resist spreading speed"),
    Parameter("spread_time", q(5, "s"), "s", 0, 60, "resist spreading time"),
    Parameter("coat_speed", q(3000, "rpm"), "rpm", 500, 10000, "spin speed"),
    Parameter("coat_time", q(30, "s"), "s", 1, 300, "spin time"),
    Parameter("soft_bake_temperature", q(100, "degC"), "degC", 60, 150, "soft bake"),
    Parameter("soft_bake_time", q(60, "s"), "s", 10, 600, "soft bake time"),
    Parameter("peb_temperature", q(110, "degC"), "degC", 60, 150, "post-exposure bake"),
    Parameter("peb_time", q(60, "s"), "s", 10, 600, "post-exposure bake time"),
    Parameter("develop_time", q(60, "s"), "s", 5, 600, "puddle development time"),
    Parameter("rinse_time", q(15, "s"), "s", 5, 120, "DI rinse time"),
    Parameter("dry_speed", q(3000, "rpm"), "rpm", 1000, 6000, "spin-dry speed"),
    Parameter("dry_time", q(15, "s"), "s", 5, 120, "spin-dry time"),
    Parameter("recipe", "Resist on Si", None, is_text=True, doc="ellipsometer recipe"),
    Parameter("wafer", "W01", None, is_text=True, doc="wafer id (first wafer)"),
)


def load_recipe(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """Read a recipe file: (protocol named in it or None, raw parameter table)."""
    source = str(path)
    data = read_toml(path, RecipeError)
    extra = set(data) - {"protocol", "parameters", "notes"}
    if extra:
        raise RecipeError(
            "unknown key; allowed: protocol, parameters, notes",
            source=source,
            field=sorted(extra)[0],
        )
    table = data.get("parameters", {})
    if not isinstance(table, Mapping):
        raise RecipeError("must be a table", source=source, field="parameters")
    if not table:
        # An empty (or mistyped, e.g. [parameter]) recipe would run on the
        # protocol's defaults without a word.
        raise RecipeError(
            "the recipe sets no parameter; write them under [parameters], or leave out"
            " --recipe to run on the protocol's defaults",
            source=source,
            field="parameters",
        )
    protocol = data.get("protocol")
    if protocol is not None and not isinstance(protocol, str):
        raise RecipeError("must be a string", source=source, field="protocol")
    return protocol, dict(table)


def resolve_parameters(
    declared: Sequence[Parameter],
    recipe: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    recipe_source: str = "recipe",
) -> dict[str, Any]:
    """Defaults, then the recipe, then ``--set key=value``; every value checked."""
    by_name = {p.name: p for p in declared}
    values = {p.name: p.default for p in declared}
    for key, raw in (recipe or {}).items():
        if key not in by_name:
            raise RecipeError(
                f"unknown parameter; known: {', '.join(sorted(by_name))}",
                source=recipe_source,
                field=f"parameters.{key}",
            )
        values[key] = by_name[key].coerce(raw, recipe_source, f"parameters.{key}")
    for item in overrides:
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise RecipeError(f"{item!r} is not key=value", source="--set", field=item)
        if key not in by_name:
            raise RecipeError(
                f"unknown parameter; known: {', '.join(sorted(by_name))}", source="--set", field=key
            )
        parameter = by_name[key]
        value: Any = raw.strip()
        if parameter.unit is None and not parameter.is_text and not parameter.is_list:
            value = raw.strip()
        values[key] = parameter.coerce(value, "--set", key)
    return values
