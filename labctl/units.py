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

from types import SimpleNamespace
from typing import Any

import pint

__all__ = [
    "DOSE_ELECTRON",
    "DOSE_OPTICAL",
    "Q_",
    "Quantity",
    "U",
    "Unit",
    "as_quantity",
    "dose_kind",
    "fast_quantity",
    "format_quantity",
    "magnitude",
    "to_rpm",
    "ureg",
]

#: The registry. ``autoconvert_offset_to_baseunit`` lets ``degC`` take part in
#: multiplication (for example a heating rate times a time) the way engineers
#: write it.
ureg: pint.UnitRegistry[Any] = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.formatter.default_format = "~P"

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
    """Coerce a quantity or a string such as ``"3000 rpm"`` to ``unit``.

    Used where users write values in files (station, recipe, formulation).
    Raises :class:`pint.DimensionalityError`, :class:`pint.UndefinedUnitError`
    or :class:`TypeError`; callers turn those into one-line input errors.
    """
    if isinstance(value, str):
        value = ureg.Quantity(value)
    if isinstance(value, int | float) and unit != U.dimensionless:
        raise TypeError(f"expected a value with a unit of {unit:~P}, got {value!r}")
    quantity = value if isinstance(value, Quantity) else Quantity(value, unit)
    return quantity.to(unit)


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
