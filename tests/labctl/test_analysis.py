"""Analysis: fits recover known parameters and their intervals cover the truth at their rate."""

from __future__ import annotations

import math
import random

import pytest

from labctl.analysis import (
    analyze_bake,
    analyze_spin_curve,
    thickness_map,
)
from labctl.units import Q_


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
