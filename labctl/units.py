"""The one pint unit registry of labctl.

Every value that crosses a public boundary in labctl is a :class:`pint.Quantity`
from this registry; a quantity from another registry cannot be mixed with ours,
so nothing else in the project may create a ``UnitRegistry``.

Lithography units defined or checked here:

=====================  ===========================================
optical dose           ``mJ/cm**2`` (energy per area)
irradiance             ``mW/cm**2`` (power per area)
electron dose          ``uC/cm**2`` (charge per area)
spin speed             ``rpm``
temperature            ``degC`` (absolute) and ``delta_degC`` (differences)
film thickness         ``nm``, ``um``
=====================  ===========================================

Parsing a prefixed unit from a string costs about 100 us, so hot paths use the
unit objects cached in :data:`U` rather than strings.
"""

from __future__ import annotations

import functools
import os
import re
from types import SimpleNamespace
from typing import Any

import pint

from .names import quantity_problem, shown

__all__ = [
    "DOSE_ELECTRON",
    "DOSE_OPTICAL",
    "Q_",
    "Quantity",
    "U",
    "Unit",
    "as_quantity",
    "canonical_unit",
    "dose_kind",
    "fast_quantity",
    "format_quantity",
    "magnitude",
    "parse_quantity",
    "to_rpm",
    "ureg",
]

#: ``LABCTL_UNIT_CACHE``: where pint keeps its definitions parsed (a directory;
#: default pint's own, ``~/.cache/pint``), or ``off``.
UNIT_CACHE_ENV = "LABCTL_UNIT_CACHE"


def _registry() -> pint.UnitRegistry[Any]:
    """pint's registry, its definitions parsed once per machine and kept (pint's disk cache).

    Parsing pint's definitions takes 170 ms at every start - more than a
    simulated contrast curve's run; read back from the cache, 20 ms. A cache
    that cannot be read or written (a read-only home, a file another process
    is still writing) only costs the parse: the registry is then built
    without it. ``autoconvert_offset_to_baseunit`` lets ``degC`` take part in
    multiplication (for example a heating rate times a time) the way
    engineers write it.
    """
    folder = os.environ.get(UNIT_CACHE_ENV, ":auto:") or ":auto:"
    if folder != "off":
        try:
            return pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=folder)
        except Exception:  # pint's cache raises what its pickles and files raise
            pass
    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


#: The registry.
ureg: pint.UnitRegistry[Any] = _registry()
ureg.formatter.default_format = "~P"
# How engineers write spin speeds on spinners and in papers: "3000 RPM", "50 rev/s".
ureg.define("@alias revolution = rev")
ureg.define("@alias revolutions_per_minute = RPM")

Quantity = ureg.Quantity
Unit = ureg.Unit
Q_ = ureg.Quantity

#: Cached unit objects for hot paths (drivers convert on every query).
U = SimpleNamespace(
    dimensionless=ureg.dimensionless,
    s=ureg.Unit("s"),
    ms=ureg.Unit("ms"),
    min=ureg.Unit("min"),
    rpm=ureg.Unit("rpm"),
    rpm_per_s=ureg.Unit("rpm/s"),
    degC=ureg.Unit("degC"),
    delta_degC=ureg.Unit("delta_degC"),
    K=ureg.Unit("K"),
    nm=ureg.Unit("nm"),
    um=ureg.Unit("um"),
    mm=ureg.Unit("mm"),
    cm2=ureg.Unit("cm**2"),
    mm2=ureg.Unit("mm**2"),
    A=ureg.Unit("A"),
    mA=ureg.Unit("mA"),
    W=ureg.Unit("W"),
    mW=ureg.Unit("mW"),
    J=ureg.Unit("J"),
    mJ=ureg.Unit("mJ"),
    Hz=ureg.Unit("Hz"),
    percent=ureg.Unit("percent"),
    mJ_per_cm2=ureg.Unit("mJ/cm**2"),
    mW_per_cm2=ureg.Unit("mW/cm**2"),
    uC_per_cm2=ureg.Unit("uC/cm**2"),
)

#: Dimensionality of an optical dose (energy per area) and of an electron dose
#: (charge per area); the process model accepts both, a given tool one of them.
DOSE_OPTICAL = U.mJ_per_cm2.dimensionality
DOSE_ELECTRON = U.uC_per_cm2.dimensionality


def dose_kind(dose: Any) -> str:
    """Return ``"optical"`` or ``"electron"`` for a dose quantity.

    Raises :class:`pint.DimensionalityError` for anything else.
    """
    dimensionality = dose.dimensionality
    if dimensionality == DOSE_OPTICAL:
        return "optical"
    if dimensionality == DOSE_ELECTRON:
        return "electron"
    raise pint.DimensionalityError(dose.units, U.mJ_per_cm2, extra_msg=" (not a dose)")


def magnitude(value: Any, unit: Any) -> float:
    """Magnitude of ``value`` in ``unit`` (a cached :class:`pint.Unit`).

    A quantity already in ``unit`` is returned without a conversion (7 us
    saved on a driver's hot path). Raises :class:`pint.DimensionalityError`
    for a quantity of another dimension and :class:`TypeError` for a bare
    number where the unit is not dimensionless.
    """
    if isinstance(value, Quantity):
        if value._units == unit._units:
            return value._magnitude  # type: ignore[no-any-return]
        return value.m_as(unit)  # type: ignore[no-any-return]
    if unit == U.dimensionless:
        return value  # type: ignore[no-any-return]
    raise TypeError(f"expected a quantity in {unit:~P}, got the bare number {value!r}")


def as_quantity(value: Any, unit: Any) -> Any:
    """Coerce a quantity or a string such as ``"3000 rpm"`` to ``unit`` as an engineer means it.

    Used where users write values in files and options (station, recipe,
    ``--set``). Where pint's reading differs from the engineer's, this reads
    it the engineer's way or refuses (see :func:`user_conversion_problem`):

    - a speed in rpm: a frequency counts turns, ``"100 Hz"`` is 6000 rpm
      (pint says 955 rpm);
    - a temperature *difference* (``delta_degC``, ``K``): ``"2 degC"`` is a
      difference of 2 K (pint refuses it, or adds 273.15 through kelvin);
      a rate ``"5 degC/min"`` is 5 K/min (pint: 278.15 K/min);
    - a temperature: a difference (``"5 delta_degC"``) is refused, kelvin is
      absolute (``"373.15 K"`` is 100 degC);
    - a value with a unit (``%``, ``s``, ...): a bare number is refused rather
      than read in the base unit (pint turns ``"0.5"`` into 50 %).

    Raises :class:`pint.DimensionalityError` (its ``extra_msg`` says why, when
    the reason is not plainly the dimension), :class:`TypeError` for a missing
    unit, or another :class:`pint.PintError` for text pint cannot read;
    callers turn those into one-line input errors.
    """
    if isinstance(value, str):
        value = parse_quantity(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if unit != U.dimensionless:
            raise TypeError(f"{value!r} needs a unit: write it in {unit:~P}")
        value = Quantity(value, unit)
    if not isinstance(value, Quantity):
        raise TypeError(f"expected a quantity in {unit:~P}, got {value!r}")
    if value.unitless and unit != U.dimensionless:
        raise TypeError(f"{value.magnitude:g} needs a unit: write it in {unit:~P}")
    if unit == U.rpm:
        return to_rpm(value)
    if not value._is_multiplicative and len(value._units) > 1:
        # A rate such as "5 degC/min" is of a difference (5 K/min), never of
        # the offset scale (pint's autoconversion would make it 278.15 K/min).
        value = Quantity(value.magnitude, _with_differences(value.units))
    if unit.dimensionality == U.K.dimensionality and value.dimensionality == unit.dimensionality:
        target_is_difference = _is_difference(unit)
        if target_is_difference and not _is_difference(value.units):
            # "2 degC" of hysteresis is 2 K, not 275.15 K.
            value = Quantity(value.magnitude, _difference_of(value.units))
        elif not target_is_difference and _names_a_difference(value.units):
            raise pint.DimensionalityError(
                value.units, unit, extra_msg=": a temperature difference is not a temperature"
            )
    return value.to(unit)


_NUMBER_THEN_UNIT = re.compile(
    r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*", re.ASCII
)


def parse_quantity(text: str) -> Any:
    """A quantity from ``"<number> <unit>"`` text, the unit kept as written.

    pint's own string parsing evaluates the whole text as an expression and
    so turns ``"5 degC/min"`` into 278.15 K/min; here the number and the unit
    are read apart (``"5 degC/min"`` is 5 delta_degC/min); the number never
    reaches pint's expression parser.
    Raises what pint raises for an unknown unit or malformed text, and
    :class:`ValueError` for text :func:`labctl.names.quantity_problem`
    refuses before pint sees it (too long, non-ASCII digits, no number first,
    a power pint would evaluate without bound: ``"1 s**9**9**9"``).
    """
    problem = quantity_problem(text)
    if problem is not None:
        raise ValueError(f"{shown(text)} {problem}")
    match = _NUMBER_THEN_UNIT.fullmatch(text)
    if match is None:
        return ureg.Quantity(text)
    number, unit_text = match.groups()
    magnitude: float = float(number) if any(c in number for c in ".eE") else int(number)
    if not unit_text:
        return Quantity(magnitude)
    return Quantity(magnitude, ureg.parse_units(unit_text))


def _is_difference(unit: Any) -> bool:
    """True for a unit of temperature differences (K, delta_degC), not an offset scale."""
    return bool(Quantity(1, unit)._is_multiplicative)


def _names_a_difference(unit: Any) -> bool:
    """True for delta_degC, delta_degF: only differences (kelvin is also an absolute scale)."""
    return any(name.startswith("delta_") for name in unit._units)


def _with_differences(unit: Any) -> Any:
    """``unit`` with each offset temperature unit in it replaced by its difference unit."""
    result = U.dimensionless
    for name, power in unit._units.items():
        part = ureg.Unit(name)
        if not Quantity(1, part)._is_multiplicative:
            part = ureg.Unit(f"delta_{name}")
        result = result * part**power
    return result


def _difference_of(unit: Any) -> Any:
    """The difference unit of an offset temperature unit: degC -> delta_degC, degF -> delta_degF."""
    (name, power), *rest = unit._units.items()
    if rest or power != 1:
        raise pint.DimensionalityError(unit, U.delta_degC, extra_msg=": not a temperature")
    return ureg.Unit(f"delta_{name}")


def format_quantity(quantity: Any) -> str:
    """Short text for messages: ``"20 ms"``, ``"600000 ms"``, ``"0.1 mJ/cm²"``."""
    return f"{quantity.magnitude:g} {quantity.units:~P}"


_new_object = object.__new__


def fast_quantity(value: float, unit: Any) -> Any:
    """``Q_(value, unit)`` for a scalar and a cached unit, in a tenth of the time.

    Builds the quantity exactly as pint's constructor does for a Python
    ``int`` or ``float`` (magnitude and units container set on a new
    instance), without its type dispatch: 0.4 us against 4 us, which matters
    on a driver's query path. Only for scalars and units from :data:`U`.
    """
    quantity = _new_object(Quantity)
    quantity._magnitude = value
    quantity._units = unit._units
    return quantity


def to_rpm(speed: Any) -> Any:
    """A rotation speed in rpm, counting a frequency without an angle as turns.

    pint keeps the radian in rpm (2 pi rad/min) but not in Hz, so it turns
    100 Hz into 955 rpm; a spinner's 100 Hz is 100 turns per second, 6000 rpm.
    Units with an angle (rpm, rps, rad/s, deg/s) convert as pint says. Raises
    :class:`pint.DimensionalityError` for anything that is not a speed.
    """
    unit = speed.units
    if unit.dimensionality != U.Hz.dimensionality:
        raise pint.DimensionalityError(unit, U.rpm)
    _, base = ureg.get_base_units(unit)
    angle = dict(base._units).get("radian", 0)
    if angle == 0:
        return Q_(speed.m_as(U.min**-1), U.rpm)  # turns per minute
    if angle != 1:
        raise pint.DimensionalityError(unit, U.rpm)
    return speed.to(U.rpm)


#: Spellings of :func:`canonical_unit` where pint's own symbol is not ASCII or
#: not what the lab writes (pint: ``°C``, ``Δ°C``, ``µm``).
_CANONICAL_SYMBOLS = {
    "degree_Celsius": "degC",
    "delta_degree_Celsius": "delta_degC",
    "degree_Fahrenheit": "degF",
    "delta_degree_Fahrenheit": "delta_degF",
    "revolutions_per_minute": "rpm",
    "percent": "%",
}


def canonical_unit(unit: Any) -> str:
    """The one spelling of ``unit`` in everything labctl exports: ASCII, pint-parsable.

    ``unit``: a :class:`pint.Unit`, a quantity (its unit) or a string pint
    reads (``"mW / cm ** 2"``, ``"°C"``). Symbols, ``*`` between factors of the
    numerator, ``/`` before the denominator, ``^`` for powers, ``u`` for micro:
    ``"degC"``, ``"rpm"``, ``"nm"``, ``"mW/cm^2"``, ``"mJ/cm^2"``, ``"uC/cm^2"``,
    ``"rpm/s"``; ``""`` for a dimensionless number. Never pint's default
    ``"mW / cm ** 2"``, so one channel or column has one spelling whatever
    produced it. Raises :class:`pint.UndefinedUnitError` for a string pint
    cannot read.
    """
    if isinstance(unit, Quantity):
        unit = unit.units
    if isinstance(unit, str):
        return _canonical_of_text(unit)
    return _canonical_of_unit(unit)


@functools.lru_cache(maxsize=256)
def _canonical_of_text(text: str) -> str:
    # Parsing a unit string costs about 100 us: the few spellings a store holds are cached.
    return _canonical_of_unit(ureg.Unit(text)) if text.strip() else ""


def _canonical_of_unit(unit: Any) -> str:
    return _canonical_of_container(unit._units)


@functools.lru_cache(maxsize=256)
def _canonical_of_container(units: Any) -> str:
    # Cached by pint's (hashable) units container: a driver's readings pass here
    # on every sample, and building the text costs up to 60 us a compound unit.
    def factor(name: str, power: float) -> str:
        symbol = _CANONICAL_SYMBOLS.get(name) or ureg.get_symbol(name)
        symbol = symbol.replace("µ", "u").replace("μ", "u")
        exponent = abs(power)
        if exponent == 1:
            return symbol
        return f"{symbol}^{exponent:g}"

    items = list(units.items())
    numerator = [factor(name, power) for name, power in items if power > 0]
    denominator = [factor(name, power) for name, power in items if power < 0]
    top = "*".join(numerator) or ("1" if denominator else "")
    if not denominator:
        return top
    bottom = denominator[0] if len(denominator) == 1 else f"({'*'.join(denominator)})"
    return f"{top}/{bottom}"
