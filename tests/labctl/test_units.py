"""The one unit registry and its lithography units."""

from __future__ import annotations

import pint
import pytest

from labctl.units import Q_, U, as_quantity, dose_kind, format_quantity, magnitude, ureg


def test_lithography_units_convert_as_engineers_expect() -> None:
    assert (Q_(10, "mW/cm**2") * Q_(12, "s")).m_as(U.mJ_per_cm2) == pytest.approx(120)
    assert Q_(3000, "rpm").to("revolution/second").magnitude == pytest.approx(50)
    assert Q_(110, "degC").to("K").magnitude == pytest.approx(383.15)
    assert Q_(5, "delta_degC").to("K").magnitude == pytest.approx(5)
    assert Q_(1.2, "um").m_as(U.nm) == pytest.approx(1200)
    assert (Q_(1, "uA") * Q_(10, "s") / Q_(1, "cm**2")).m_as(U.uC_per_cm2) == pytest.approx(10)


def test_dose_kinds() -> None:
    assert dose_kind(Q_(30, "mJ/cm**2")) == "optical"
    assert dose_kind(Q_(0.3, "J/m**2")) == "optical"
    assert dose_kind(Q_(15, "uC/cm**2")) == "electron"
    with pytest.raises(pint.DimensionalityError):
        dose_kind(Q_(1, "mJ"))


def test_magnitude_fast_path_and_conversion() -> None:
    assert magnitude(Q_(3, U.rpm), U.rpm) == 3
    assert magnitude(Q_(1, "s"), U.ms) == 1000
    with pytest.raises(pint.DimensionalityError):
        magnitude(Q_(1, "s"), U.mm)
    with pytest.raises(TypeError):
        magnitude(3, U.mm)


def test_as_quantity_from_file_strings() -> None:
    assert as_quantity("2 s", U.s) == Q_(2, "s")
    assert as_quantity("25 degC", U.degC) == Q_(25, "degC")
    with pytest.raises(TypeError):
        as_quantity(2, U.s)
    with pytest.raises(pint.DimensionalityError):
        as_quantity("3 mm", U.s)


def test_one_registry() -> None:
    assert Q_(1, "s")._REGISTRY is ureg
    assert U.rpm._REGISTRY is ureg
    assert format_quantity(Q_(600000.0, "ms")) == "600000 ms"


def test_a_frequency_counts_turns_when_it_becomes_rpm() -> None:
    """pint alone reads Hz as rad/s against rpm: 100 Hz would spin at 955 rpm."""
    from labctl.units import Q_, to_rpm

    assert to_rpm(Q_(100, "Hz")).m_as("rpm") == pytest.approx(6000.0)
    assert to_rpm(Q_(2, "1/s")).m_as("rpm") == pytest.approx(120.0)
    assert to_rpm(Q_(3000, "rpm")).m_as("rpm") == pytest.approx(3000.0)
    assert to_rpm(Q_(50, "rps")).m_as("rpm") == pytest.approx(3000.0)
    assert to_rpm(Q_(2 * 3.141592653589793, "rad/s")).m_as("rpm") == pytest.approx(60.0)
    with pytest.raises(pint.DimensionalityError):
        to_rpm(Q_(5, "mm"))


def test_a_recipe_speed_in_hz_spins_at_sixty_times_that_in_rpm() -> None:
    from protocols.experiments import PROTOCOLS
    from protocols.recipes import resolve_parameters

    values = resolve_parameters(PROTOCOLS["claim14"].parameters, {}, ["coat_speed=50 Hz"])
    assert values["coat_speed"].m_as("rpm") == pytest.approx(3000.0)


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("100 Hz", "rpm", Q_(6000.0, "rpm")),  # pint alone: 955 rpm
        ("50 rps", "rpm", Q_(3000.0, "rpm")),
        ("50 rev/s", "rpm", Q_(3000.0, "rpm")),
        ("3000 rev/min", "rpm", Q_(3000.0, "rpm")),
        ("3000 RPM", "rpm", Q_(3000.0, "rpm")),
        ("2 degC", "delta_degC", Q_(2.0, "delta_degC")),  # pint alone: refused
        ("9 degF", "delta_degC", Q_(5.0, "delta_degC")),
        ("2 K", "delta_degC", Q_(2.0, "delta_degC")),
        ("5 degC/min", "delta_degC/min", Q_(5.0, "delta_degC/min")),  # pint alone: 278.15
        ("5 degC/min", "K/s", Q_(5.0 / 60, "K/s")),
        ("373.15 K", "degC", Q_(100.0, "degC")),  # kelvin is also absolute
        ("212 degF", "degC", Q_(100.0, "degC")),
        ("-5 degC", "degC", Q_(-5.0, "degC")),
        ("50 %", "dimensionless", Q_(0.5, "dimensionless")),
        ("1e-4 J/cm^2", "mJ/cm**2", Q_(0.1, "mJ/cm**2")),
        ("3000rpm", "rpm", Q_(3000.0, "rpm")),
    ],
)
def test_user_quantities_mean_what_an_engineer_means(
    text: str, unit: str, expected: object
) -> None:
    value = as_quantity(text, ureg.Unit(unit))
    assert value.units == ureg.Unit(unit)
    assert value.magnitude == pytest.approx(expected.m_as(unit))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "unit", "says"),
    [
        ("10 delta_degC", "degC", "a temperature difference is not a temperature"),
        ("0.5", "percent", "needs a unit"),  # pint alone: 50 %
        ("30", "s", "needs a unit"),
        ("3 mm", "rpm", "mm"),
    ],
)
def test_ambiguous_or_wrong_quantities_are_refused(text: str, unit: str, says: str) -> None:
    with pytest.raises((TypeError, pint.PintError), match=says):
        as_quantity(text, ureg.Unit(unit))
