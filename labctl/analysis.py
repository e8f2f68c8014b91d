"""Analysis of what a run measured: contrast curves, spin curves, thickness maps, bake traces.

Every result carries units and its uncertainty, and is computed from the
*delivered* dose (what the exposure tool measured it gave), never the dose
asked for.

Contrast curves: :mod:`labctl.contrast` (the classic construction, estimated
without a curve family; re-exported here).

numpy and scipy are imported when an analysis runs, not with labctl.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .contrast import ContrastResult, Estimate, analyze_contrast
from .errors import InputError
from .units import Q_, U

__all__ = [
    "BakeTrace",
    "ContrastResult",
    "Estimate",
    "SpinCurveResult",
    "ThicknessMap",
    "analyze_bake",
    "analyze_contrast",
    "analyze_spin_curve",
    "contrast_from_store",
    "result_rows",
    "spin_curve_from_store",
    "thickness_map",
]


@dataclass(frozen=True)
class SpinCurveResult:
    """``h = K w^-b`` fitted in log-log space, with 95 % intervals."""

    speeds: list[float]  # rpm
    thicknesses: list[float]  # nm
    exponent: Estimate
    constant: Estimate  # nm * rpm^b
    residual_sd: float  # in log thickness

    def thickness_at(self, speed: Any) -> Any:
        b = self.exponent.value.magnitude
        return Q_(self.constant.value.magnitude * speed.m_as(U.rpm) ** (-b), U.nm)

    def speed_for(self, thickness: Any) -> Estimate:
        """Speed that gives ``thickness``, with an interval (delta method on log K, b)."""
        b = self.exponent.value.magnitude
        k = self.constant.value.magnitude
        h = thickness.m_as(U.nm)
        speed = (k / h) ** (1.0 / b)
        relative = (self.exponent.high.magnitude - self.exponent.low.magnitude) / (2 * b)
        spread = abs(math.log(k / h)) / b * relative + (
            math.log(self.constant.high.magnitude / k) / b
        )
        return Estimate(
            Q_(speed, U.rpm),
            Q_(speed * math.exp(-spread), U.rpm),
            Q_(speed * math.exp(spread), U.rpm),
        )


def analyze_spin_curve(speeds: Sequence[float], thicknesses: Sequence[float]) -> SpinCurveResult:
    """Fit ``h = K w^-b`` to speeds (rpm) and thicknesses (nm)."""
    import numpy as np
    from scipy import stats

    if len(speeds) < 3:
        raise InputError(f"{len(speeds)} speeds: a spin curve needs at least 3", field="speeds")
    x = np.log(np.asarray(speeds, dtype=float))
    y = np.log(np.asarray(thicknesses, dtype=float))
    fit = stats.linregress(x, y)
    dof = max(1, len(x) - 2)
    t = float(stats.t.ppf(0.975, dof))
    b = -float(fit.slope)
    k = float(math.exp(fit.intercept))
    residual_sd = float(np.sqrt(np.sum((y - (fit.intercept + fit.slope * x)) ** 2) / dof))
    k_unit = U.nm
    return SpinCurveResult(
        speeds=[float(v) for v in speeds],
        thicknesses=[float(v) for v in thicknesses],
        exponent=Estimate(
            Q_(b, U.dimensionless),
            Q_(b - t * fit.stderr, U.dimensionless),
            Q_(b + t * fit.stderr, U.dimensionless),
        ),
        constant=Estimate(
            Q_(k, k_unit),
            Q_(k * math.exp(-t * fit.intercept_stderr), k_unit),
            Q_(k * math.exp(t * fit.intercept_stderr), k_unit),
        ),
        residual_sd=residual_sd,
    )


@dataclass(frozen=True)
class ThicknessMap:
    """Thickness over a wafer: mean, range, uniformity."""

    points: list[tuple[float, float, float]]  # x mm, y mm, nm
    mean: Any
    minimum: Any
    maximum: Any
    uniformity: Any  # (max - min) / (2 mean), percent

    def __str__(self) -> str:
        return (
            f"mean {self.mean.magnitude:.1f} nm, range {self.minimum.magnitude:.1f}-"
            f"{self.maximum.magnitude:.1f} nm, uniformity ±{self.uniformity.magnitude:.2f} %"
        )


def thickness_map(points: Sequence[tuple[float, float, float]]) -> ThicknessMap:
    values = [p[2] for p in points]
    mean = sum(values) / len(values)
    low, high = min(values), max(values)
    return ThicknessMap(
        list(points),
        Q_(mean, U.nm),
        Q_(low, U.nm),
        Q_(high, U.nm),
        Q_(100.0 * (high - low) / (2 * mean) if mean else 0.0, U.percent),
    )


@dataclass(frozen=True)
class BakeTrace:
    """A bake's plate temperature: time in band, overshoot, settling."""

    setpoint: Any
    time_in_band: Any
    overshoot: Any
    settling_time: Any
    duration: Any


def analyze_bake(
    times: Sequence[float], temperatures: Sequence[float], setpoint: float, tolerance: float = 1.0
) -> BakeTrace:
    """Time within ``setpoint +/- tolerance`` (s), overshoot (C above setpoint), settling (s)."""
    inside = 0.0
    for (t0, a), (t1, _) in zip(
        zip(times, temperatures, strict=True),
        zip(times[1:], temperatures[1:], strict=True),
        strict=False,
    ):
        if abs(a - setpoint) <= tolerance:
            inside += t1 - t0
    settled = next(
        (
            t
            for t, v in zip(times, temperatures, strict=True)
            if all(
                abs(w - setpoint) <= tolerance
                for tt, w in zip(times, temperatures, strict=True)
                if tt >= t
            )
        ),
        float("nan"),
    )
    overshoot = max(0.0, max(temperatures) - setpoint) if temperatures else 0.0
    return BakeTrace(
        Q_(setpoint, U.degC),
        Q_(inside, U.s),
        Q_(overshoot, U.delta_degC),
        Q_(settled - times[0] if times else float("nan"), U.s),
        Q_(times[-1] - times[0] if times else 0.0, U.s),
    )


# -- from the run store --------------------------------------------------------------


def result_rows(store: Any, run_id: str) -> list[dict[str, Any]]:
    """The measurements a run's results use: all but those of replaced wafers.

    A wafer quarantined and then replaced (unattended runs) had its part of the
    experiment done again on its replacement; its own measurements stay in the
    store but the results are the replacement's.
    """
    replaced = {i["replaces"] for i in store.wafers(run_id).values() if i.get("replaces")}
    rows: list[dict[str, Any]] = store.measurement_rows(run_id)
    return [r for r in rows if r["wafer_id"] not in replaced]


def contrast_from_store(store: Any, run_id: str, wafer: str | None = None) -> ContrastResult:
    """The contrast curve of a run: before/after pairs by site, delivered doses."""
    rows = result_rows(store, run_id)
    before = {(r["wafer_id"], r["site"]): r for r in rows if r["label"] == "before"}
    pairs = [
        (
            r["dose_delivered_mJ_cm2"],
            r["thickness_nm"] / before[(r["wafer_id"], r["site"])]["thickness_nm"],
        )
        for r in rows
        if r["label"] == "after"
        and (r["wafer_id"], r["site"]) in before
        and r["dose_delivered_mJ_cm2"] is not None
        and (wafer is None or r["wafer_id"] == wafer)
    ]
    if not pairs:
        raise InputError("no before/after pairs with delivered doses", field=f"run {run_id}")
    pairs.sort()
    return analyze_contrast([p[0] for p in pairs], [p[1] for p in pairs])


def spin_curve_from_store(
    store: Any, run_id: str
) -> tuple[SpinCurveResult, dict[str, ThicknessMap]]:
    """The spin curve of a run: one mean thickness per wafer against its coat speed."""
    rows = result_rows(store, run_id)
    speeds: dict[str, float] = {}
    for step in store.steps(run_id):
        if step["name"] == "coat" and step["status"] == "finished":
            speed = step["parameters"]["speed"]["__quantity__"][0]
            speeds[step["wafer_id"]] = float(speed)
    maps: dict[str, ThicknessMap] = {}
    for wafer in speeds:
        points = [(r["x_mm"], r["y_mm"], r["thickness_nm"]) for r in rows if r["wafer_id"] == wafer]
        if points:
            maps[wafer] = thickness_map(points)
    wafers = [w for w in speeds if w in maps]
    result = analyze_spin_curve(
        [speeds[w] for w in wafers], [maps[w].mean.magnitude for w in wafers]
    )
    return result, maps
