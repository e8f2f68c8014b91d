"""Analysis of what a run measured: contrast curves, spin curves, thickness maps, bake traces.

Every result carries units and its uncertainty, and is computed from the
*delivered* dose (what the exposure tool measured it gave), never the dose
asked for.

Contrast of a negative resist (``shared/domain/process-physics.md`` section 4):

* normalized remaining thickness ``NRT = t_after / t_before`` per field;
* a smooth model ``NRT = A / (1 + (D50 / D)^k)`` fitted by least squares,
  with covariance-based 95 % intervals (Student t);
* ``Dg`` and ``D100`` where the tangent of the model at ``D50`` (in log dose)
  reaches 0 and ``A`` - the classic graphical construction; ``D50`` where the
  model is ``A/2``;
* classic contrast ``1 / log10(D100 / Dg)`` and IUPAC (2020)
  ``1 / (2 log10(D50 / Dg))``. On the logistic model the tangent gives
  ``log10(D100 / Dg) = 4 / (k ln 10)``, so classic gamma = ``0.576 k``.

numpy and scipy are imported when an analysis runs, not with labctl.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .units import Q_, U

__all__ = [
    "BakeTrace",
    "ContrastResult",
    "SpinCurveResult",
    "ThicknessMap",
    "analyze_bake",
    "analyze_contrast",
    "analyze_spin_curve",
    "contrast_from_store",
    "spin_curve_from_store",
    "thickness_map",
]

LN10 = math.log(10.0)


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % confidence interval, as quantities."""

    value: Any
    low: Any
    high: Any

    def covers(self, truth: Any) -> bool:
        return bool(self.low <= truth <= self.high)

    def __str__(self) -> str:
        v, low, high = self.value, self.low.magnitude, self.high.magnitude
        return f"{v.magnitude:.4g} {v.units:~P} (95 % CI {low:.4g}-{high:.4g})"


@dataclass(frozen=True)
class ContrastResult:
    """A contrast curve: data, fitted model, the doses and contrasts read off it."""

    doses: list[float]  # delivered, mJ/cm^2
    nrt: list[float]
    amplitude: float
    d50: Estimate
    slope_k: Estimate
    gel_dose: Estimate
    d100: Estimate
    gamma_classic: Estimate
    gamma_iupac: Estimate
    residual_sd: float
    warnings: list[str] = field(default_factory=list)

    def model(self, dose: float) -> float:
        return float(
            _logistic(dose, self.amplitude, self.d50.value.magnitude, self.slope_k.value.magnitude)
        )

    def headline(self) -> str:
        return (
            f"Dg {self.gel_dose.value.magnitude:.3g} mJ/cm², "
            f"D50 {self.d50.value.magnitude:.3g} mJ/cm², "
            f"D100 {self.d100.value.magnitude:.3g} mJ/cm², "
            f"gamma {self.gamma_classic.value.magnitude:.2f} (classic) / "
            f"{self.gamma_iupac.value.magnitude:.2f} (IUPAC)"
        )


def _logistic(dose: Any, amplitude: float, d50: float, k: float) -> Any:
    import numpy as np

    return amplitude / (1.0 + (d50 / np.asarray(dose, dtype=float)) ** k)


def _metrics(d50: float, k: float) -> tuple[float, float, float, float]:
    """(Dg, D100, gamma classic, gamma IUPAC) of the logistic model by the tangent construction."""
    half_width = 2.0 / (k * LN10)  # decades from D50 to each tangent intercept
    gel = d50 * 10 ** (-half_width)
    full = d50 * 10**half_width
    return gel, full, 1.0 / (2 * half_width), 1.0 / (2 * math.log10(d50 / gel))


def analyze_contrast(doses: Sequence[float] | Any, nrt: Sequence[float] | Any) -> ContrastResult:
    """Fit a contrast curve from delivered doses (mJ/cm^2) and normalized thicknesses."""
    import numpy as np
    from scipy import optimize, stats

    d = np.asarray(doses, dtype=float)
    y = np.asarray(nrt, dtype=float)
    if d.size < 4:
        raise InputError(f"{d.size} fields: a contrast fit needs at least 4", field="fields")
    warnings = []
    top = float(np.max(y))
    if top < 0.1:
        warnings.append(
            f"every field developed away (NRT <= {top:.2f}): the transition is above "
            f"{d.max():.3g} mJ/cm²; raise dose_max"
        )
    if float(np.min(y)) > 0.9 * max(top, 1e-9) and top > 0.5:
        warnings.append(
            f"every field kept its film: the transition is below {d.min():.3g} mJ/cm²; "
            "lower dose_min"
        )
    if warnings:
        raise InputError("; ".join(warnings), field="contrast curve")
    inside = np.sum((y > 0.05 * top) & (y < 0.95 * top))
    if inside < 2:
        warnings.append(
            f"only {int(inside)} field(s) inside the transition: step the doses more finely "
            "around it (D50 is poorly defined)"
        )
    middle = float(np.exp(np.interp(0.5 * top, np.sort(y), np.log(d[np.argsort(y)]))))
    try:
        parameters, covariance = optimize.curve_fit(
            _logistic,
            d,
            y,
            p0=(top, middle, 6.0),
            bounds=([0.2, d.min() / 100, 0.3], [1.5, d.max() * 100, 200.0]),
            maxfev=20000,
        )
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"the contrast model does not fit: {exc}", field="contrast curve"
        ) from None
    amplitude, d50, k = (float(v) for v in parameters)
    residuals = y - _logistic(d, amplitude, d50, k)
    dof = max(1, d.size - 3)
    residual_sd = float(np.sqrt(np.sum(residuals**2) / dof))
    if not np.all(np.isfinite(covariance)):
        covariance = np.diag([np.inf] * 3)
    t = float(stats.t.ppf(0.975, dof))
    sd_d50, sd_k = float(np.sqrt(covariance[1, 1])), float(np.sqrt(covariance[2, 2]))
    gel, full, gamma, gamma_iupac = _metrics(d50, k)

    # Intervals of the derived doses by the delta method (log space).
    def derived_interval(sign: float) -> tuple[float, float]:
        # log10 Dx = log10 D50 + sign * 2 / (k ln10)
        g = np.array([0.0, 1.0 / (d50 * LN10), -sign * 2.0 / (k * k * LN10)])
        variance = float(g @ covariance @ g)
        centre = math.log10(d50) + sign * 2.0 / (k * LN10)
        spread = t * math.sqrt(max(variance, 0.0))
        return 10 ** (centre - spread), 10 ** (centre + spread)

    dose_unit = U.mJ_per_cm2
    gel_low, gel_high = derived_interval(-1.0)
    full_low, full_high = derived_interval(1.0)
    gamma_sd = sd_k * LN10 / 4.0
    return ContrastResult(
        doses=[float(v) for v in d],
        nrt=[float(v) for v in y],
        amplitude=amplitude,
        d50=Estimate(
            Q_(d50, dose_unit),
            Q_(max(d50 - t * sd_d50, 0.0), dose_unit),
            Q_(d50 + t * sd_d50, dose_unit),
        ),
        slope_k=Estimate(
            Q_(k, U.dimensionless),
            Q_(k - t * sd_k, U.dimensionless),
            Q_(k + t * sd_k, U.dimensionless),
        ),
        gel_dose=Estimate(Q_(gel, dose_unit), Q_(gel_low, dose_unit), Q_(gel_high, dose_unit)),
        d100=Estimate(Q_(full, dose_unit), Q_(full_low, dose_unit), Q_(full_high, dose_unit)),
        gamma_classic=Estimate(
            Q_(gamma, U.dimensionless),
            Q_(gamma - t * gamma_sd, U.dimensionless),
            Q_(gamma + t * gamma_sd, U.dimensionless),
        ),
        gamma_iupac=Estimate(
            Q_(gamma_iupac, U.dimensionless),
            Q_(gamma_iupac - t * gamma_sd, U.dimensionless),
            Q_(gamma_iupac + t * gamma_sd, U.dimensionless),
        ),
        residual_sd=residual_sd,
        warnings=warnings,
    )


def contrast_metrics_of_curve(
    curve: Any, low: float = 0.5, high: float = 2000.0
) -> dict[str, float]:
    """The same construction applied to a known curve ``NRT(dose)`` (ground truth)."""
    import numpy as np

    doses = np.geomspace(low, high, 400)
    values = np.array([curve(float(x)) for x in doses])
    result = analyze_contrast(doses, values)
    return {
        "gel_dose": result.gel_dose.value.magnitude,
        "d50": result.d50.value.magnitude,
        "d100": result.d100.value.magnitude,
        "gamma": result.gamma_classic.value.magnitude,
        "gamma_iupac": result.gamma_iupac.value.magnitude,
    }


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


def contrast_from_store(store: Any, run_id: str, wafer: str | None = None) -> ContrastResult:
    """The contrast curve of a run: before/after pairs by site, delivered doses."""
    rows = store.measurement_rows(run_id)
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
    rows = store.measurement_rows(run_id)
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
