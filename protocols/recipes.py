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
from labctl.names import (
    MAX_QUANTITY_CHARS,
    NAME,
    RECIPE_NAME,
    WAFER_ID,
    Grammar,
    NumberTextError,
    check_name,
    parse_integer,
    quantity_problem,
    shown,
)
from labctl.units import Q_, as_quantity, ureg

__all__ = ["COMMON", "MAX_LIST_ITEMS", "Parameter", "load_recipe", "resolve_parameters"]


#: The most items a list parameter takes (``speeds``: one wafer each; a cassette holds 25).
MAX_LIST_ITEMS = 25


@dataclass(frozen=True)
class Parameter:
    """One protocol parameter: unit (None for a count or a name), default and range.

    A text parameter (``is_text``) is a name with a grammar
    (:mod:`labctl.names`: ``grammar``, default :data:`labctl.names.NAME`),
    checked as given; a count is ASCII digits; a quantity is an ASCII number
    and a unit (:func:`labctl.names.quantity_problem`) - all checked before
    any conversion, so no value reaches ``int()`` or pint unbounded.
    """

    name: str
    default: Any
    unit: str | None
    low: float | None = None
    high: float | None = None
    doc: str = ""
    is_list: bool = False
    is_text: bool = False
    grammar: Grammar | None = None

    def allowed(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.is_text:
            grammar = self.grammar or NAME
            return f"{grammar.kind}, {grammar.allowed()}"
        return f"{self.low:g}{unit} to {self.high:g}{unit}"

    def coerce(self, raw: Any, source: str, where: str) -> Any:
        if self.is_list:
            return self._coerce_list(raw, source, where)
        if self.is_text:
            # The wire formats and file names decide what a name may be (labctl.names).
            return check_name(
                raw, self.grammar or NAME, source=source, field=where, error=RecipeError
            )
        value: Any
        if self.unit is None:
            number: int | None = None
            problem = "is not a whole number"
            if isinstance(raw, int) and not isinstance(raw, bool):
                number = raw
            elif isinstance(raw, str):
                try:
                    number = parse_integer(raw)
                except NumberTextError as exc:  # non-ASCII digits, too long, not digits
                    problem = exc.problem
            if number is None:
                raise RecipeError(
                    f"{shown(raw)} {problem}; allowed: {self.allowed()}",
                    source=source,
                    field=where,
                )
            value = number
            magnitude: float = number
        else:
            if not isinstance(raw, str):
                raise RecipeError(
                    f'{shown(raw)} needs a unit, like "{self.default:~P}"'
                    if hasattr(self.default, "units")
                    else f"{shown(raw)} needs a unit ({self.unit})",
                    source=source,
                    field=where,
                )
            text = raw.strip()
            refused = quantity_problem(text)
            if refused is not None:
                # before pint: its parser is quadratic in a long number and
                # evaluates powers of powers; int() and float() read any script's digits
                raise RecipeError(
                    f"{shown(raw)} {refused}; allowed: {self.allowed()}",
                    source=source,
                    field=where,
                )
            try:
                # as an engineer means it: 100 Hz is 6000 rpm, "5 degC/min" is 5 K/min
                value = as_quantity(text, ureg.Unit(self.unit))
            except DimensionalityError as exc:
                # extra_msg says why when it is not the dimension (a difference, not a temperature)
                problem = (
                    f"{shown(raw)}{exc.extra_msg}"
                    if exc.extra_msg
                    else f"{shown(raw)} is not a quantity in {self.unit}"
                )
                raise RecipeError(
                    f"{problem} ({self.allowed()})", source=source, field=where
                ) from None
            except TypeError as exc:  # a bare number where a unit is needed
                raise RecipeError(f"{exc} ({self.allowed()})", source=source, field=where) from None
            except Exception:
                raise RecipeError(
                    f"{shown(raw)} is not a quantity in {self.unit} ({self.allowed()})",
                    source=source,
                    field=where,
                ) from None
            magnitude = float(value.magnitude)
        if (
            self.low is not None
            and self.high is not None
            and not self.low <= magnitude <= self.high
        ):
            raise RecipeError(
                f"{shown(raw)} is outside {self.allowed()}", source=source, field=where
            )
        return value

    def _coerce_list(self, raw: Any, source: str, where: str) -> list[Any]:
        if isinstance(raw, str):
            # bounded before it is split: every item is a bounded quantity
            if len(raw) > MAX_LIST_ITEMS * (MAX_QUANTITY_CHARS + 1):
                raise RecipeError(
                    f"{shown(raw)} is too long for a list of at most {MAX_LIST_ITEMS} items",
                    source=source,
                    field=where,
                )
            items: Any = raw.split(",")
        else:
            items = raw
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise RecipeError(f"{shown(raw)} is not a list", source=source, field=where)
        if len(items) > MAX_LIST_ITEMS:
            raise RecipeError(
                f"{len(items)} items; allowed: at most {MAX_LIST_ITEMS}", source=source, field=where
            )
        single = Parameter(self.name, None, self.unit, self.low, self.high)
        return [single.coerce(item, source, where) for item in items]


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
    Parameter(
        "recipe",
        "Resist on Si",
        None,
        is_text=True,
        doc="ellipsometer recipe",
        grammar=RECIPE_NAME,
    ),
    Parameter("wafer", "W01", None, is_text=True, doc="wafer id (first wafer)", grammar=WAFER_ID),
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


def _key(key: str) -> str:
    """A parameter name as given, for a message: as is if plain, else quoted and escaped."""
    return key if len(key) <= 40 and key.isascii() and key.isidentifier() else shown(key)


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
                field=f"parameters.{_key(key)}",
            )
        values[key] = by_name[key].coerce(raw, recipe_source, f"parameters.{key}")
    for item in overrides:
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise RecipeError(f"{shown(item)} is not key=value", source="--set")
        if key not in by_name:
            raise RecipeError(
                f"unknown parameter; known: {', '.join(sorted(by_name))}",
                source="--set",
                field=_key(key),
            )
        # key=value: the spaces around the value are the option's, not the value's
        values[key] = by_name[key].coerce(raw.strip(), "--set", key)
    return values
