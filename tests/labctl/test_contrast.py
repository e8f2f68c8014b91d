"""Contrast analysis on curve shapes it does not assume, and on data that gives no figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labctl.contrast import (
    ESTIMATE,
    LOWER_BOUND,
    UNDETERMINED,
    UPPER_BOUND,
    analyze_contrast,
)
from labctl.errors import InputError
from labctl.units import Q_

from .contrast_families import FAMILIES, noisy_curve

DOSE = "mJ/cm**2"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_figures_and_intervals_hold_on_a_shape_the_analysis_does_not_assume(family: str) -> None:
    """16 fields, 2 % noise, Dg 5-150 mJ/cm2, gamma 1.2-6: the issue's acceptance figures."""
    curve = FAMILIES[family]
    rng = np.random.default_rng(2026)
    dg_errors, gamma_errors, dg_held, gamma_held = [], [], 0, 0
    trials = 30
    for _ in range(trials):
        dg = 10 ** rng.uniform(math.log10(5.0), math.log10(150.0))
        gamma = rng.uniform(1.2, 6.0)
        plateau = rng.uniform(0.85, 1.0)
        result = analyze_contrast(*noisy_curve(curve, rng, dg, gamma, plateau))
        assert result.dg.kind == ESTIMATE, result.warnings
        dg_errors.append(abs(result.dg.value.m_as(DOSE) / dg - 1.0))
        dg_held += result.dg.covers(Q_(dg, DOSE))
        if result.gamma.kind == ESTIMATE:
            gamma_errors.append(abs(result.gamma.value.magnitude / gamma - 1.0))
            gamma_held += result.gamma.covers(Q_(gamma, ""))
    assert np.median(dg_errors) <= 0.05
    assert np.median(gamma_errors) <= 0.15
    assert dg_held / trials >= 0.85
    assert gamma_held / len(gamma_errors) >= 0.85
    assert len(gamma_errors) >= 0.8 * trials


def test_a_thousand_random_curves_degenerate_ones_included_never_raise() -> None:
    rng = np.random.default_rng(5)
    kinds = {ESTIMATE, UPPER_BOUND, LOWER_BOUND, UNDETERMINED}
    seen = set()
    for trial in range(1000):
        count = int(rng.integers(1, 40))
        doses = np.sort(10 ** rng.uniform(-1, 3.5, count))
        if trial % 7 == 0:
            doses = np.repeat(doses[: max(1, count // 3)], 3)[:count]  # repeated doses
        shape = trial % 6
        if shape == 0:
            nrt = np.zeros(doses.size)  # all cleared
        elif shape == 1:
            nrt = np.full(doses.size, 0.93)  # none cleared
        elif shape == 2:
            step = rng.integers(0, doses.size + 1)
            nrt = np.where(np.arange(doses.size) >= step, 0.95, 0.0)  # no field in between
        elif shape == 3:
            nrt = rng.uniform(-0.2, 1.3, doses.size)  # nonsense
        else:
            family = list(FAMILIES.values())[trial % len(FAMILIES)]
            x = np.log10(doses)
            nrt = family(x, rng.uniform(x.min() - 1, x.max() + 1), rng.uniform(0.3, 40), 0.9)
            nrt = nrt + rng.normal(0, rng.choice([0.0, 0.02, 0.1]), doses.size)
        result = analyze_contrast(doses, nrt, replicates=int(rng.choice([0, 25])))
        for figure in (result.dg, result.d100, result.onset, result.d50, result.gamma):
            assert figure.kind in kinds
            seen.add(figure.kind)
            if figure.kind != UNDETERMINED:
                assert math.isfinite(figure.value.magnitude) and figure.value.magnitude > 0
        json.dumps(result.to_json(), allow_nan=False)
        assert result.headline()
    assert seen == kinds


def test_every_field_cleared_gives_lower_bounds_and_says_raise_dose_max() -> None:
    result = analyze_contrast([5, 10, 20, 40, 80, 160], [0.01, 0.0, -0.01, 0.0, 0.02, 0.01])
    assert result.dg.kind == LOWER_BOUND and result.dg.value == Q_(160, DOSE)
    assert result.gamma.kind == UNDETERMINED
    assert "Dg > 160 mJ/cm²" in result.headline()
    assert any("raise dose_max" in w for w in result.warnings)


def test_no_field_cleared_gives_upper_bounds_and_says_lower_dose_min() -> None:
    result = analyze_contrast([5, 10, 20, 40, 80, 160], [0.93, 0.95, 0.94, 0.95, 0.94, 0.95])
    assert result.dg.kind == UPPER_BOUND and result.dg.value == Q_(5, DOSE)
    assert result.onset.kind == UPPER_BOUND
    assert any("lower dose_min" in w for w in result.warnings)


def test_a_transition_between_two_fields_is_a_bracket_and_gamma_a_lower_bound() -> None:
    doses = [5 * 1.25**i for i in range(16)]
    nrt = [0.0 if d < 29 else 0.94 for d in doses]  # gamma far above what 1.25x steps resolve
    result = analyze_contrast(doses, nrt)
    below, above = max(d for d in doses if d < 29), min(d for d in doses if d >= 29)
    assert result.dg.low.m_as(DOSE) == pytest.approx(below)
    assert result.dg.high.m_as(DOSE) == pytest.approx(above)
    assert result.gamma.kind == LOWER_BOUND
    assert result.gamma.value.magnitude == pytest.approx(0.9 / math.log10(above / below))
    assert any("inside the transition" in w for w in result.warnings)


def test_one_or_two_fields_make_no_curve_but_no_exception() -> None:
    for doses, nrt in (([30.0], [0.5]), ([10.0, 40.0], [0.0, 0.9])):
        result = analyze_contrast(doses, nrt)
        assert result.dg.kind == UNDETERMINED
        assert "no figures" in result.headline()
        assert result.warnings


def test_a_curve_still_rising_at_the_top_bounds_d100_and_gamma() -> None:
    doses = np.geomspace(10, 60, 16)
    x = np.log10(doses)
    nrt = FAMILIES["probit"](x, math.log10(20), 1.5, 0.95)  # reaches ~0.8 by 60 mJ/cm2
    result = analyze_contrast(doses, nrt)
    assert result.d100.kind == LOWER_BOUND
    assert result.gamma.kind == UPPER_BOUND
    assert any("not levelled off" in w for w in result.warnings)


def test_the_same_data_gives_the_same_interval() -> None:
    rng = np.random.default_rng(1)
    data = noisy_curve(FAMILIES["Gompertz"], rng, 30.0, 3.0, 0.92)
    first, second = analyze_contrast(*data), analyze_contrast(*data)
    assert first.dg == second.dg and first.gamma == second.gamma


@pytest.mark.parametrize(
    ("doses", "nrt", "message"),
    [
        ([1, 2, 3], [0.1, 0.2], "3 doses but 2"),
        ([0, 2, 3], [0.1, 0.2, 0.3], "not positive"),
        ([1, 2, 3], [0.1, float("nan"), 0.3], "not a finite"),
        ([], [], "no fields"),
    ],
)
def test_unusable_input_is_refused_with_one_line(doses: list, nrt: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        analyze_contrast(doses, nrt)


def test_doses_may_be_given_as_a_quantity() -> None:
    doses = Q_(np.geomspace(0.005, 0.2, 16), "J/cm**2")
    x = np.log10(doses.m_as(DOSE))
    result = analyze_contrast(doses, FAMILIES["piecewise-linear"](x, math.log10(30), 3.0, 0.9))
    assert result.dg.value.m_as(DOSE) == pytest.approx(30, rel=0.03)
