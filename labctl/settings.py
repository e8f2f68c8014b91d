"""Declared settings: what a driver accepts in a station file, checked when the file loads.

A driver declares the ``[roles.<role>.settings]`` keys it accepts as data, the
way pyvisa-sim declares a property's ``specs`` - one :class:`Setting` per key,
with its type, unit, range, default and meaning::

    class ThorlabsPM100D(ScpiInstrument):
        station_settings = Settings(
            Setting("aperture_area", quantity("cm**2", above=0, at_most=20),
                    "Sensor aperture; turns power into irradiance.", required=True),
            Setting("wavelength", quantity("nm", 185, 25000), "Correction wavelength."),
        )

A composite that owns a top-level table of the station file (the exposure
tool owns ``[exposure]``) declares that table the same way. The station
(:mod:`labctl.station`) knows no instrument: it asks the driver class for its
``station_settings`` and calls :meth:`Settings.validate`, which turns the
table into converted values (pint quantities, whole numbers, tuples) with
every default filled in, or raises one line naming the source, the field and
what is allowed::

    station.toml: exposure.led_current: '0.5 V' is not a current; allowed more than 0 up to 10 A

Types: :func:`quantity` (a value with a unit, written as text such as
``"1.0 A"``), :func:`integer`, :func:`fraction` (``0.02`` or ``"2 %"``),
:func:`text`, :func:`list_of` and :func:`table` (a fixed set of keys).
A :class:`Rule` checks settings against each other (``min_open_time <
max_open_time``). Validation is idempotent: already converted values pass
through unchanged, so a driver may validate what the station handed it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError

__all__ = [
    "Rule",
    "Setting",
    "SettingType",
    "Settings",
    "declared_settings",
    "fraction",
    "integer",
    "list_of",
    "quantity",
    "table",
    "text",
]

#: Longest text accepted for a quantity: more is not a value, it is an attack
#: on the unit parser.
MAX_QUANTITY_TEXT = 64
#: A quantity's text starts with a plain ASCII number (pint's expression
#: parser, which evaluates ``2**99999`` and reads other scripts' digits, is
#: never reached for anything else).
_QUANTITY_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*[^\s\d.+-].*", re.ASCII)
#: What a dimensionality is called in a message.
_DIMENSION_WORDS = {
    "[current]": "current",
    "[time]": "time",
    "[length]": "length",
    "[length] ** 2": "area",
    "[temperature]": "temperature",
    "[mass] / [time] ** 3": "irradiance (power per area)",
    "[mass] / [time] ** 2": "dose (energy per area)",
    "[mass] * [length] ** 2 / [time] ** 3": "power",
    "1 / [time]": "frequency",
}


class SettingProblem(ValueError):
    """A value refused by a :class:`SettingType`; ``path`` locates it inside the value."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


def _show_value(value: Any) -> str:
    """A user's value for a one-line message: short, quoted like TOML, no line breaks."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value if len(value) <= 40 else value[:37] + "...")
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, list | tuple) and len(repr(value)) > 40:
        text = f"a list of {len(value)}"
    else:
        text = repr(value)
        if len(text) > 40:
            text = text[:37] + "..."
    return text


def _number(value: float) -> str:
    return f"{value:g}"


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "a current", "an area"."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


class SettingType:
    """How one setting is written, converted and described. Subclasses below."""

    #: A noun for messages and the docs ("current", "whole number").
    what: str = "value"

    def convert(self, value: Any) -> Any:
        """The converted value, or :class:`SettingProblem` saying why not."""
        raise NotImplementedError

    def allowed(self) -> str:
        """What is allowed, for messages: ``"1 to 999999 ms"``."""
        raise NotImplementedError

    def show(self, value: Any) -> str:
        """A converted value as the text a station file would hold."""
        return str(value)

    def unit_text(self) -> str:
        return ""

    def range_text(self) -> str:
        """The range alone (without the unit), for the docs' table."""
        return ""

    def _refuse(self, value: Any, why: str = "") -> SettingProblem:
        because = why or f"{_show_value(value)} is not {_a(self.what)}"
        return SettingProblem(f"{because}; allowed {self.allowed()}")


class _Bounded(SettingType):
    """Bounds on a number: inclusive unless ``*_open``."""

    def __init__(
        self,
        low: float | None,
        high: float | None,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        self.low = low
        self.high = high
        self.low_open = low_open
        self.high_open = high_open

    def _bounds(self, unit: str = "") -> str:
        tail = f" {unit}" if unit else ""
        low, high = self.low, self.high
        if low is not None and high is not None:
            if not self.low_open and not self.high_open:
                return f"{_number(low)} to {_number(high)}{tail}"
            lower = f"more than {_number(low)}" if self.low_open else f"from {_number(low)}"
            upper = f"below {_number(high)}" if self.high_open else f"up to {_number(high)}"
            return f"{lower} {upper}{tail}"
        if low is not None:
            return f"{'more than' if self.low_open else 'at least'} {_number(low)}{tail}"
        if high is not None:
            return f"{'below' if self.high_open else 'at most'} {_number(high)}{tail}"
        return f"any{tail}"

    def _in_range(self, number: float) -> bool:
        low, high = self.low, self.high
        if low is not None and (number <= low if self.low_open else number < low):
            return False
        return not (high is not None and (number >= high if self.high_open else number > high))

    def range_text(self) -> str:
        return self._bounds()


class QuantityType(_Bounded):
    """A value with a unit, written as text (``"20 ms"``); converted to ``unit``."""

    def __init__(
        self,
        unit: str,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
        example: str | None = None,
    ) -> None:
        super().__init__(low, high, low_open=low_open, high_open=high_open)
        from .units import ureg

        self.unit_name = unit
        self.unit = ureg.Unit(unit)
        dimension = str(self.unit.dimensionality)
        self.what = _DIMENSION_WORDS.get(dimension, f"quantity in {unit}")
        reference = high if high is not None and high != 0 else low
        self.example = example or f"{_number(reference if reference else 1)} {unit}"

    def allowed(self) -> str:
        return self._bounds(self.unit_name)

    def unit_text(self) -> str:
        return self.unit_name

    def convert(self, value: Any) -> Any:
        import pint

        from .units import Quantity, as_quantity

        if isinstance(value, bool) or not isinstance(value, str | int | float | Quantity):
            raise self._refuse(
                value, f'{_show_value(value)} is not {_a(self.what)} such as "{self.example}"'
            )
        if isinstance(value, int | float):
            raise self._refuse(
                value,
                f'{_show_value(value)} has no unit: write "{_number(value)} {self.unit_name}"',
            )
        if isinstance(value, str):
            stripped = value.strip()
            if len(stripped) > MAX_QUANTITY_TEXT or not _QUANTITY_TEXT.fullmatch(stripped):
                raise self._refuse(
                    value, f'{_show_value(value)} is not {_a(self.what)} such as "{self.example}"'
                )
            value = stripped
        try:
            converted = as_quantity(value, self.unit)
        except pint.DimensionalityError:
            raise self._refuse(value) from None
        except Exception:
            # pint raises a dozen types for text it cannot read (syntax,
            # undefined unit, tokenizer); to a user they all mean one thing.
            raise self._refuse(
                value, f'{_show_value(value)} is not {_a(self.what)} such as "{self.example}"'
            ) from None
        magnitude = converted.magnitude
        if not isinstance(magnitude, int | float) or not math.isfinite(magnitude):
            raise self._refuse(value, f"{_show_value(value)} is not a finite number")
        if not self._in_range(magnitude):
            raise self._refuse(value, f"{_show_value(value)} is out of range")
        return converted

    def show(self, value: Any) -> str:
        return f"{_number(value.m_as(self.unit))} {self.unit_name}"


class IntegerType(_Bounded):
    """A whole number (TOML integer)."""

    what = "whole number"

    def allowed(self) -> str:
        return self._bounds()

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._refuse(value)
        if not self._in_range(value):
            raise self._refuse(value, f"{value} is out of range")
        return value


class FractionType(_Bounded):
    """A fraction: a number (``0.02``) or a percentage as text (``"2 %"``)."""

    what = "fraction"

    def allowed(self) -> str:
        return f'{self._bounds()} (a number, or text such as "2 %")'

    def convert(self, value: Any) -> Any:
        number: float
        if isinstance(value, str):
            match = re.fullmatch(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*(%|percent)\s*", value, re.ASCII)
            if match is None or len(value) > MAX_QUANTITY_TEXT:
                raise self._refuse(value)
            number = float(match.group(1)) / 100.0
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise self._refuse(value)
        else:
            number = float(value)
        if not math.isfinite(number):
            raise self._refuse(value, f"{_show_value(value)} is not a finite number")
        if not self._in_range(number):
            hint = f' (a percentage is written "{_number(number)} %")' if number > 1 else ""
            raise self._refuse(value, f"{_show_value(value)} is out of range{hint}")
        return number

    def show(self, value: Any) -> str:
        return _number(value)


class TextType(SettingType):
    """A line of printable text, at most ``max_length`` characters."""

    what = "line of text"

    def __init__(self, max_length: int = 64) -> None:
        self.max_length = max_length

    def allowed(self) -> str:
        return f"printable text of 1 to {self.max_length} characters"

    def range_text(self) -> str:
        return f"1-{self.max_length} characters"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self._refuse(value)
        if not value.strip() or len(value) > self.max_length or not value.isprintable():
            raise self._refuse(value, f"{_show_value(value)} is not allowed")
        return value


class ListType(SettingType):
    """A list of ``items`` values; ``length`` exact or (shortest, longest)."""

    def __init__(
        self,
        item: SettingType,
        length: int | tuple[int, int],
        *,
        unique: bool = False,
        increasing: bool = False,
        names: Sequence[str] = (),
    ) -> None:
        self.item = item
        self.length = (length, length) if isinstance(length, int) else length
        self.unique = unique
        self.increasing = increasing
        self.names = tuple(names)
        shortest, longest = self.length
        count = str(shortest) if shortest == longest else f"{shortest} to {longest}"
        self.what = f"list of {count} {item.what}{'' if '(' in item.what else 's'}"

    def _shape(self) -> str:
        if self.names:
            return "[" + ", ".join(self.names) + "]"
        shortest, longest = self.length
        return f"{shortest} values" if shortest == longest else f"{shortest}-{longest} values"

    def allowed(self) -> str:
        extra = ", increasing" if self.increasing else ", all different" if self.unique else ""
        return f"{self._shape()}{extra}, each {self.item.allowed()}"

    def unit_text(self) -> str:
        return self.item.unit_text()

    def range_text(self) -> str:
        extra = ", increasing" if self.increasing else ", all different" if self.unique else ""
        return f"{self._shape()}{extra}, each {self.item.range_text()}"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise self._refuse(value)
        shortest, longest = self.length
        if not shortest <= len(value) <= longest:
            raise self._refuse(value, f"{_show_value(value)} has {len(value)} values")
        converted = []
        for index, item in enumerate(value):
            try:
                converted.append(self.item.convert(item))
            except SettingProblem as problem:
                raise SettingProblem(problem.problem, f"[{index}]{problem.path}") from None
        if self.unique and len(set(map(str, converted))) != len(converted):
            raise self._refuse(value, f"{_show_value(value)} repeats a value")
        if self.increasing and any(b <= a for a, b in itertools.pairwise(converted)):
            raise self._refuse(value, f"{_show_value(value)} is not increasing")
        return tuple(converted)

    def show(self, value: Any) -> str:
        return "[" + ", ".join(self.item.show(v) for v in value) + "]"


class TableType(SettingType):
    """A table with a fixed set of keys; a key left out takes its default."""

    what = "table"

    def __init__(self, *fields: Setting) -> None:
        self.fields = {f.name: f for f in fields}
        self.defaults = {f.name: f.default_value() for f in fields}

    def allowed(self) -> str:
        return "a table with " + ", ".join(self.fields)

    def convert(self, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise self._refuse(value)
        converted = dict(self.defaults)
        for key, item in value.items():
            spec = self.fields.get(key)
            if spec is None:
                raise SettingProblem(
                    f"unknown key; allowed: {', '.join(self.fields)}", f".{_key_text(key)}"
                )
            try:
                converted[key] = spec.type.convert(item)
            except SettingProblem as problem:
                raise SettingProblem(problem.problem, f".{key}{problem.path}") from None
        return converted

    def show(self, value: Any) -> str:
        parts = (f"{k} = {self.fields[k].type.show(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(parts) + "}"


def _key_text(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 40 and text.isprintable() else repr(text[:37] + "...")


def quantity(
    unit: str,
    low: float | None = None,
    high: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
    example: str | None = None,
) -> QuantityType:
    """A value with a unit, converted to ``unit``.

    ``low`` and ``high`` are inclusive bounds, ``above`` and ``below``
    exclusive ones, all in ``unit``.
    """
    return QuantityType(
        unit,
        above if above is not None else low,
        below if below is not None else high,
        low_open=above is not None,
        high_open=below is not None,
        example=example,
    )


def integer(low: int | None = None, high: int | None = None) -> IntegerType:
    """A whole number from ``low`` to ``high`` (inclusive)."""
    return IntegerType(low, high)


def fraction(
    low: float | None = None,
    high: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
) -> FractionType:
    """A fraction (``0.02`` or ``"2 %"``): ``low``/``high`` inclusive, ``above``/``below`` not."""
    return FractionType(
        above if above is not None else low,
        below if below is not None else high,
        low_open=above is not None,
        high_open=below is not None,
    )


def text(max_length: int = 64) -> TextType:
    """A line of printable text."""
    return TextType(max_length)


def list_of(
    item: SettingType,
    length: int | tuple[int, int],
    *,
    unique: bool = False,
    increasing: bool = False,
    names: Sequence[str] = (),
) -> ListType:
    """A list of ``length`` items (an int, or (shortest, longest)); ``names`` for the docs."""
    return ListType(item, length, unique=unique, increasing=increasing, names=names)


def table(*fields: Setting) -> TableType:
    """A table with the keys ``fields``; keys left out take their defaults."""
    return TableType(*fields)


@dataclass(frozen=True)
class Setting:
    """One declared setting: its key, type, meaning and default.

    ``default`` is written the way a station file would write it (``"1.0 A"``)
    and converted by ``type`` when the declaration is made, so a bad default
    fails at import, not at a user. ``None``: no default (the driver does
    without, or ``required``). ``required``: a station file must give it.
    """

    name: str
    type: SettingType
    doc: str
    default: Any = None
    required: bool = False

    def default_value(self) -> Any:
        if isinstance(self.type, TableType) and self.default is None:
            return dict(self.type.defaults)
        return None if self.default is None else self.type.convert(self.default)


@dataclass(frozen=True)
class Rule:
    """A check across the settings of one table: ``holds(values)`` must be true.

    ``text`` says what must hold, in the words of the settings
    (``"min_open_time < max_open_time"``); the error names ``fields[0]``.
    Skipped while any of ``fields`` has no value.
    """

    fields: tuple[str, ...]
    text: str
    holds: Callable[[Mapping[str, Any]], bool]


class Settings:
    """What a driver (or a composite's table) accepts: its settings and the rules across them."""

    def __init__(self, *settings: Setting, rules: Sequence[Rule] = ()) -> None:
        self._settings = {s.name: s for s in settings}
        if len(self._settings) != len(settings):
            raise ValueError("a setting is declared twice")
        self.rules = tuple(rules)
        for rule in self.rules:
            unknown = [f for f in rule.fields if f not in self._settings]
            if unknown:
                raise ValueError(f"rule {rule.text!r} names undeclared {unknown}")
        # Converted once: a bad declared default fails here, at import.
        self._defaults = {s.name: s.default_value() for s in settings}

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings.values())

    def __len__(self) -> int:
        return len(self._settings)

    def __getitem__(self, name: str) -> Setting:
        return self._settings[name]

    @property
    def names(self) -> list[str]:
        return list(self._settings)

    def defaults(self) -> dict[str, Any]:
        """Every setting's default (converted; ``None`` where there is none)."""
        return dict(self._defaults)

    def validate(
        self,
        table: Mapping[str, Any],
        *,
        source: str | None,
        prefix: str,
        require: bool = False,
        error: type[InputError] = InputError,
    ) -> dict[str, Any]:
        """Check ``table`` and return every setting converted, defaults filled in.

        ``prefix`` is the table's place in the file (``"exposure"``,
        ``"roles.hotplate.settings"``); errors are ``error(problem,
        source=source, field=f"{prefix}.<key>")``. ``require``: a setting
        declared ``required`` must be present (a station file; a driver built
        by hand may leave it out and fail only where it is used).
        """
        if not isinstance(table, Mapping):
            raise error("must be a table", source=source, field=prefix)
        values = dict(self._defaults)
        for key, raw in table.items():
            if raw is None and key in self._settings:
                continue  # not given: a table this method returned (TOML has no null)
            spec = self._settings.get(key) if isinstance(key, str) else None
            if spec is None:
                allowed = (
                    ", ".join(self._settings)
                    if self._settings
                    else "none (this driver declares no settings)"
                )
                raise error(
                    f"unknown setting; allowed: {allowed}",
                    source=source,
                    field=f"{prefix}.{_key_text(key)}",
                )
            try:
                values[key] = spec.type.convert(raw)
            except SettingProblem as problem:
                raise error(
                    problem.problem, source=source, field=f"{prefix}.{key}{problem.path}"
                ) from None
        if require:
            for spec in self:
                if spec.required and table.get(spec.name) is None:
                    raise error(
                        f"missing: {spec.doc[0].lower()}{spec.doc[1:].rstrip('.')}",
                        source=source,
                        field=f"{prefix}.{spec.name}",
                    )
        for rule in self.rules:
            if any(values.get(f) is None for f in rule.fields):
                continue
            if not rule.holds(values):
                got = ", ".join(f"{f} = {self.show_one(f, values[f])}" for f in rule.fields)
                raise error(
                    f"need {rule.text}; got {got}",
                    source=source,
                    field=f"{prefix}.{rule.fields[0]}",
                )
        return values

    def show_one(self, name: str, value: Any) -> str:
        return self._settings[name].type.show(value)

    def show(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Converted values as station-file text (for a run's record), ``None`` left out."""
        return {
            key: self.show_one(key, value) if key in self._settings else str(value)
            for key, value in values.items()
            if value is not None
        }

    def reference_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(setting, type, unit, range, default, meaning) per setting, tables flattened."""
        rows = []
        for spec in self:
            rows.extend(_rows(spec.name, spec))
        for rule in self.rules:
            rows.append(("", "", "", f"`{rule.text}`", "", "checked across settings"))
        return rows


def _rows(name: str, spec: Setting) -> list[tuple[str, str, str, str, str, str]]:
    kind = spec.type
    if isinstance(kind, TableType):
        rows = []
        for inner in kind.fields.values():
            rows.extend(_rows(f"{name}.{inner.name}", inner))
        return rows
    default = spec.default_value()
    if spec.required:
        shown = "required"
    elif default is None:
        shown = "none"
    else:
        shown = kind.show(default)
    return [(name, kind.what, kind.unit_text(), kind.range_text(), shown, spec.doc)]


def declared_settings(cls: Any) -> Settings:
    """The :class:`Settings` a driver or composite class declares (none: an empty one).

    The protocol is one class attribute, ``station_settings``; a class
    without it accepts no settings.
    """
    declared = getattr(cls, "station_settings", None)
    if declared is None:
        return Settings()
    if not isinstance(declared, Settings):
        raise TypeError(f"{cls!r}.station_settings is not a labctl.settings.Settings")
    return declared
