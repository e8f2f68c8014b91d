"""Analysis: fits recover known parameters and their intervals cover the truth at their rate."""

from __future__ import annotations

import math
import random

import pytest

from labctl.analysis import (
    _metrics,
    analyze_bake,
    analyze_contrast,
    analyze_spin_curve,
    thickness_map,
)
from labctl.errors import InputError
from labctl.units import Q_


def synthetic_contrast(
    rng: random.Random, d50: float, k: float, noise: float = 0.01, amplitude: float = 0.95
) -> tuple[list[float], list[float]]:
    doses = [d50 * 10 ** (-0.5 + i / 15) for i in range(16)]  # 0.3x to 3x, log-spaced
    nrt = [max(0.0, amplitude / (1 + (d50 / d) ** k) + rng.gauss(0, noise)) for d in doses]
    return doses, nrt


@pytest.mark.parametrize(("d50", "k"), [(30.0, 6.0), (12.0, 4.0), (80.0, 9.0)])
def test_contrast_fit_recovers_dg_within_3_percent_and_gamma_within_10(
    d50: float, k: float
) -> None:
    doses, nrt = synthetic_contrast(random.Random(1), d50, k)
    result = analyze_contrast(doses, nrt)
    gel, full, gamma, _ = _metrics(d50, k)
    assert result.gel_dose.value.m_as("mJ/cm**2") == pytest.approx(gel, rel=0.03)
    assert result.d100.value.m_as("mJ/cm**2") == pytest.approx(full, rel=0.03)
    assert result.gamma_classic.value.magnitude == pytest.approx(gamma, rel=0.10)
    assert result.gamma_classic.value.magnitude == pytest.approx(0.576 * k, rel=0.10)
    assert result.gel_dose.value.units == Q_(1, "mJ/cm**2").units


def test_contrast_intervals_cover_the_truth_at_about_their_stated_rate() -> None:
    rng = random.Random(7)
    d50, k = 30.0, 6.0
    gel, _, gamma, _ = _metrics(d50, k)
    trials = 300
    covered = {"d50": 0, "gel": 0, "gamma": 0}
    for _ in range(trials):
        result = analyze_contrast(*synthetic_contrast(rng, d50, k, noise=0.02))
        covered["d50"] += result.d50.covers(Q_(d50, "mJ/cm**2"))
        covered["gel"] += result.gel_dose.covers(Q_(gel, "mJ/cm**2"))
        covered["gamma"] += result.gamma_classic.covers(Q_(gamma, ""))
    for name, count in covered.items():
        assert 0.88 <= count / trials <= 0.99, (name, count / trials)


def test_a_dose_range_that_misses_the_transition_says_which_way_to_move() -> None:
    doses = [1, 2, 3, 4, 5, 6]
    with pytest.raises(InputError, match="raise dose_max"):
        analyze_contrast(doses, [0.0] * 6)
    with pytest.raises(InputError, match="lower dose_min"):
        analyze_contrast(doses, [0.95, 0.96, 0.95, 0.94, 0.95, 0.96])
    with pytest.raises(InputError, match="at least 4"):
        analyze_contrast([1, 2], [0.0, 1.0])


def test_spin_fit_recovers_the_exponent_within_0_02_and_covers_it() -> None:
    rng = random.Random(3)
    speeds = [1000, 1500, 2000, 3000, 4000, 6000]
    covered = 0
    trials = 300
    for trial in range(trials):
        thickness = [27000 * s**-0.5 * (1 + rng.gauss(0, 0.01)) for s in speeds]
        result = analyze_spin_curve(speeds, thickness)
        if trial == 0:
            assert result.exponent.value.magnitude == pytest.approx(0.5, abs=0.02)
            target = result.speed_for(Q_(490, "nm"))
            assert target.value.m_as("rpm") == pytest.approx((27000 / 490) ** 2, rel=0.05)
            assert target.low < target.value < target.high
        covered += result.exponent.covers(Q_(0.5, ""))
    assert 0.88 <= covered / trials <= 0.99


def test_thickness_map_and_bake_trace() -> None:
    summary = thickness_map([(0, 0, 500.0), (20, 0, 505.0), (0, 20, 495.0)])
    assert summary.mean == Q_(500.0, "nm")
    assert summary.uniformity.m_as("percent") == pytest.approx(1.0)
    times = [float(t) for t in range(0, 61)]
    temperatures = [98.0 + 2 * (1 - math.exp(-t / 5)) + (0.8 if t == 30 else 0.0) for t in times]
    trace = analyze_bake(times, temperatures, 100.0, tolerance=0.5)
    assert trace.overshoot.m_as("delta_degC") == pytest.approx(0.8, abs=0.01)
    assert 5 < trace.settling_time.m_as("s") < 35
    assert 45 < trace.time_in_band.m_as("s") < 60
