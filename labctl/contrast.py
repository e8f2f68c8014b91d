"""The contrast curve of a negative resist, by the classic construction, without a model.

The definition (``docs/analysis.md`` gives it with pictures in words; the
virtual bench's ground truth uses the same one on its own physics):

* ``x = log10(dose)``, ``y = NRT`` = thickness after development / thickness
  before exposure, one point per exposed field, at the *delivered* dose;
* the plateau ``P``: the NRT the film keeps at high dose, where the curve has
  levelled off;
* ``S``: the steepest slope of ``y`` against ``x`` (per decade), at
  ``(x*, y*)``; the tangent there is ``y = y* + S (x - x*)``;
* **Dg** where the tangent reaches 0, **D100** where it reaches ``P``;
  classic ``gamma = 1 / log10(D100 / Dg) = S / P``; IUPAC (2020)
  ``1 / (2 log10(D50 / Dg))``;
* the **onset**, the first dose with film: where the curve reaches 5 % of
  ``P``; **D50** where it reaches ``P / 2``.

How it is estimated from noisy fields, with no curve family assumed:

1. a monotone (isotonic) least-squares fit of NRT on log dose locates the
   floor, the transition and the plateau (``P`` is its top level);
2. the transition - from two fields below the onset up to where the
   isotonic fit reaches 75 % of ``P`` - is fitted twice by local
   regression: a quadratic that may start at a kink (a curve that leaves
   the floor with its steepest slope, as a gel-fraction curve does), a
   cubic that may start at a kink (from nine fields in the window), and a
   cubic (a smooth S). The kinked fits weight fields near the kink more
   (tricube). The lower small-sample AIC chooses; the steepest slope of the
   chosen fit gives ``S`` and the tangent point;
3. intervals: a parametric bootstrap (the isotonic fit plus Gaussian noise
   of the size the fields themselves show, from second differences) repeats
   steps 1-2; the 2.5-97.5 % spread of each figure, in log dose, is put
   around the estimate and widened by the largest bias measured on
   noise-free curves of five shapes (:data:`SHAPE_ALLOWANCE`).

Degenerate data never raises: every field cleared, none cleared, or no
field inside the transition gives bounds (``Dg > 200 mJ/cm²``) or a bracket,
with a warning saying what to change. Only unusable input (lengths that
differ, a dose that is not positive, a value that is not finite) raises
:class:`~labctl.errors.InputError`.

numpy is imported when an analysis runs, not with labctl.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .units import Q_, U

__all__ = [
    "ESTIMATE",
    "LOWER_BOUND",
    "SHAPE_ALLOWANCE",
    "UNDETERMINED",
    "UPPER_BOUND",
    "ContrastResult",
    "Estimate",
    "analyze_contrast",
]

ESTIMATE = "estimate"
UPPER_BOUND = "upper_bound"  # the true value is below `value`
LOWER_BOUND = "lower_bound"  # the true value is above `value`
UNDETERMINED = "undetermined"

#: Onset level, as a fraction of the plateau: "first dose with film".
ONSET_LEVEL = 0.05
#: The transition's local fits run up to this fraction of the plateau.
WINDOW_TOP = 0.75
#: Fields below the onset the local fits include (to pin the floor).
FLOOR_FIELDS = 2
#: Tricube weights of the kinked fit reach zero at this multiple of the window.
KINK_WEIGHT_SPAN = 1.5
#: Largest bias of the estimator on noise-free curves of five shapes
#: (piecewise-linear, Charlesby gel fraction, exponential onset, probit,
#: Gompertz; ``benchmarks/contrast_accuracy.py``), relative, added to every
#: interval: the part of the uncertainty that is the unknown shape, not noise.
SHAPE_ALLOWANCE = {"dose": 0.03, "gamma": 0.10}
#: Bootstrap replicates and their seed (the same data gives the same interval).
BOOTSTRAP_REPLICATES = 200
BOOTSTRAP_SEED = 20261124
#: RMS scatter of the fields about the estimated curve worth a warning (NRT).
SCATTER_WARNING = 0.05
#: Median of the chi-square distribution with one degree of freedom.
CHI2_1_MEDIAN = 0.4549364
#: Fewer fields than this make no curve.
MINIMUM_FIELDS = 3
#: A plateau below this NRT means every field developed away.
CLEARED_LEVEL = 0.1
#: Noise floor for the bootstrap when the fields look noiseless (NRT units).
MINIMUM_NOISE = 0.002
#: A plateau counts as levelled when at least this many fields lie beyond
#: D100 and rise there by less than this fraction of the steepest slope.
LEVELLED_FIELDS = 2
LEVELLED_SLOPE = 0.25


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval, as quantities - or a bound, or nothing.

    ``kind`` is ``"estimate"`` (value with ``low``-``high``),
    ``"upper_bound"`` (the truth is below ``value``), ``"lower_bound"`` (above
    ``value``) or ``"undetermined"`` (``value`` is None).
    """

    value: Any
    low: Any
    high: Any
    kind: str = ESTIMATE

    def covers(self, truth: Any) -> bool:
        """Whether the interval (or the bound) holds ``truth``."""
        if self.kind == UNDETERMINED:
            return False
        if self.kind == UPPER_BOUND:
            return bool(truth <= self.value)
        if self.kind == LOWER_BOUND:
            return bool(truth >= self.value)
        return bool(self.low <= truth <= self.high)

    @property
    def determined(self) -> bool:
        return self.kind == ESTIMATE

    def to_json(self) -> dict[str, Any]:
        """``{"value", "low", "high", "unit", "kind"}``; missing numbers are null."""

        def number(q: Any) -> float | None:
            return None if q is None else float(q.magnitude)

        unit = None if self.value is None else f"{self.value.units:~}"
        return {
            "value": number(self.value),
            "low": number(self.low),
            "high": number(self.high),
            "unit": unit if unit else "1",
            "kind": self.kind,
        }

    def __str__(self) -> str:
        if self.kind == UNDETERMINED or self.value is None:
            return "not determined"
        unit = f" {self.value.units:~P}" if f"{self.value.units:~P}" else ""
        v = self.value.magnitude
        if self.kind == UPPER_BOUND:
            return f"< {v:.3g}{unit}"
        if self.kind == LOWER_BOUND:
            return f"> {v:.3g}{unit}"
        if self.low is None or self.high is None:
            return f"{v:.3g}{unit}"
        low, high = self.low.magnitude, self.high.magnitude
        return f"{v:.3g}{unit} (95 % {low:.3g}-{high:.3g})"


@dataclass(frozen=True)
class ContrastResult:
    """A contrast curve: the fields, the figures of the classic construction, warnings."""

    doses: list[float]  # delivered, mJ/cm^2, sorted
    nrt: list[float]
    dg: Estimate
    d100: Estimate
    onset: Estimate
    d50: Estimate
    gamma: Estimate
    gamma_iupac: Estimate
    plateau: Estimate
    #: Steepest slope (NRT per decade) and where the tangent touches (mJ/cm^2, NRT).
    slope: float | None
    tangent_point: tuple[float, float] | None
    fields_in_transition: int
    noise_sd: float
    #: Which local fit gave the tangent: "kink", "smooth", "bracket" or "none".
    local_fit: str
    #: The estimated curve for plots: (dose mJ/cm^2, NRT) pairs.
    smooth: list[tuple[float, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # Old names kept for scripts written against the logistic analysis.
    @property
    def gel_dose(self) -> Estimate:
        return self.dg

    @property
    def gamma_classic(self) -> Estimate:
        return self.gamma

    def headline(self) -> str:
        """One line: Dg (the tangent's gel dose) first, the onset beside it."""
        if self.dg.kind == UNDETERMINED:
            return f"contrast curve: no figures from {len(self.doses)} field(s)"
        return (
            f"Dg {_short(self.dg)} (tangent to zero; first film at {_short(self.onset)}), "
            f"D100 {_short(self.d100)}, gamma {_short(self.gamma)} "
            f"[{len(self.doses)} fields, {self.fields_in_transition} in the transition]"
        )

    def to_json(self) -> dict[str, Any]:
        """The figures as one JSON-ready object (units beside every number)."""
        return {
            "dg": self.dg.to_json(),
            "d100": self.d100.to_json(),
            "onset": self.onset.to_json(),
            "d50": self.d50.to_json(),
            "gamma": self.gamma.to_json(),
            "gamma_iupac": self.gamma_iupac.to_json(),
            "plateau": self.plateau.to_json(),
            "fields": len(self.doses),
            "fields_in_transition": self.fields_in_transition,
            "noise_sd": self.noise_sd,
            "local_fit": self.local_fit,
            "warnings": list(self.warnings),
            "method": (
                "classic tangent construction on NRT vs log10 dose; isotonic fit plus local "
                "regression (kinked quadratic or cubic, by AICc); parametric bootstrap "
                f"({BOOTSTRAP_REPLICATES}) plus shape allowance (docs/analysis.md)"
            ),
        }


def _short(estimate: Estimate) -> str:
    if estimate.kind != ESTIMATE or estimate.value is None:
        return str(estimate)
    unit = f"{estimate.value.units:~P}"
    magnitude = estimate.value.magnitude
    text = f"{magnitude:.3g}" if unit else f"{magnitude:.2f}"
    if estimate.low is None or estimate.high is None:
        return f"{text}{' ' + unit if unit else ''}"
    low, high = estimate.low.magnitude, estimate.high.magnitude
    spread = f"{low:.3g}-{high:.3g}" if unit else f"{low:.2f}-{high:.2f}"
    return f"{text}{' ' + unit if unit else ''} ({spread})"


# -- the estimator on arrays -------------------------------------------------------------


def _isotonic(y: Any) -> Any:
    """Increasing least-squares fit (pool adjacent violators)."""
    import numpy as np

    values: list[float] = []
    weights: list[float] = []
    counts: list[int] = []
    for v in y:
        values.append(float(v))
        weights.append(1.0)
        counts.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            merged = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
            c = counts[-2] + counts[-1]
            del values[-1], weights[-1], counts[-1]
            values[-1], weights[-1], counts[-1] = merged, w, c
    return np.repeat(values, counts)


def _noise_sd(x: Any, y: Any) -> float:
    """Noise of the fields from second differences (Gasser, Sroka, Jennen-Steinmetz 1986)."""
    terms = []
    for i in range(1, len(x) - 1):
        span = x[i + 1] - x[i - 1]
        if span <= 0:
            if x[i + 1] == x[i] == x[i - 1]:
                terms.append((y[i] - (y[i - 1] + y[i + 1]) / 2) ** 2 / 1.5)
            continue
        a = (x[i + 1] - x[i]) / span
        b = (x[i] - x[i - 1]) / span
        terms.append((a * y[i - 1] + b * y[i + 1] - y[i]) ** 2 / (a * a + b * b + 1.0))
    if not terms:
        return float("nan")
    # The median (over that of chi-square with one degree of freedom) so that a
    # sharp transition sampled by few fields does not pass for noise.
    terms.sort()
    middle = len(terms) // 2
    median = terms[middle] if len(terms) % 2 else (terms[middle - 1] + terms[middle]) / 2
    return math.sqrt(median / CHI2_1_MEDIAN)


@dataclass(frozen=True)
class _Tangent:
    x: float  # log10 dose of the tangent point
    y: float
    slope: float  # per decade
    fit: str
    curve: Any  # callable x -> y over the window, or None
    window: tuple[float, float]


def _aicc(rss: float, count: int, parameters: int) -> float:
    if count - parameters - 1 <= 0:
        return math.inf
    rss = max(rss, 1e-12)
    return (
        count * math.log(rss / count)
        + 2 * parameters
        + 2 * parameters * (parameters + 1) / (count - parameters - 1)
    )


#: Kink positions tried between the last floor field and the first with film.
KINKS = 21


def _best_kinked_fits(
    xx: Any, yy: Any, kink_low: float, kink_high: float, degrees: tuple[int, ...]
) -> dict[int, tuple[float, Any, float]]:
    """For each degree, the kinked polynomial with the least weighted RSS over :data:`KINKS` kinks.

    For each kink, a weighted least-squares fit of ``yy`` on ``1, u, ..., u^degree``
    (``u = max(xx - kink, 0)``; tricube weights beyond the kink). Every kink
    of every degree is solved at once - one stacked SVD, the minimum-norm
    solution with :func:`numpy.linalg.lstsq`'s cut-off (a lower degree's
    design padded with columns of zeros, which the cut-off drops) - which is
    what makes the bootstrap's 200 replicates cost milliseconds, not half a
    second. Returns degree -> (kink, coefficients, plain RSS) of the first
    kink with the least weighted RSS.
    """
    import numpy as np

    kinks = np.linspace(kink_low, kink_high, KINKS)
    u = np.maximum(xx[None, :] - kinks[:, None], 0.0)  # (kinks, fields)
    span = np.maximum((xx[-1] - kinks) * KINK_WEIGHT_SPAN, 1e-9)
    weights = np.where(u > 0, np.clip(1.0 - (u / span[:, None]) ** 3, 0.05, 1.0) ** 3, 1.0)
    root = np.sqrt(weights)
    width = max(degrees) + 1
    powers = np.stack([np.ones_like(u)] + [u**p for p in range(1, width)], axis=-1)
    design = np.concatenate(
        [np.where(np.arange(width) <= degree, powers, 0.0) for degree in degrees]
    )  # (degrees x kinks, fields, width)
    weights, root = np.tile(weights, (len(degrees), 1)), np.tile(root, (len(degrees), 1))
    left, singular, right_t = np.linalg.svd(design * root[..., None], full_matrices=False)
    # lstsq's cut-off: relative to the largest singular value, eps times the larger dimension
    # of the unpadded design (padding adds columns of zeros, not rows).
    dimension = np.maximum(xx.size, 1 + np.repeat(degrees, KINKS))[:, None]
    cutoff = np.finfo(float).eps * dimension * singular[:, :1]
    inverse = np.where(singular > cutoff, 1.0 / np.where(singular > 0, singular, 1.0), 0.0)
    projected = np.einsum("kfp,kf->kp", left, yy[None, :] * root) * inverse
    coefficients = np.einsum("kqp,kq->kp", right_t, projected)
    residual = np.einsum("kfp,kp->kf", design, coefficients) - yy[None, :]
    rss = np.sum(weights * residual**2, axis=1).reshape(len(degrees), KINKS)
    found = {}
    for index, degree in enumerate(degrees):
        best = int(np.argmin(rss[index]))
        row = index * KINKS + best
        found[degree] = (
            float(kinks[best]),
            coefficients[row, : degree + 1],
            float(np.sum(residual[row] ** 2)),
        )
    return found


def _local_tangent(x: Any, y: Any, monotone: Any, plateau: float) -> _Tangent | None:
    """The steepest part of the transition by local regression (see module docstring)."""
    import numpy as np

    n = len(x)
    above = np.nonzero(monotone > ONSET_LEVEL * plateau)[0]
    if above.size == 0:
        return None
    rise = int(above[0])
    high = np.nonzero(monotone >= WINDOW_TOP * plateau)[0]
    top = int(high[0]) if high.size else n - 1
    first = max(0, rise - FLOOR_FIELDS)
    last = min(max(top, rise + 2), n - 1)
    xx, yy = x[first : last + 1], y[first : last + 1]
    m = len(xx)
    candidates: list[tuple[float, _Tangent]] = []

    # A kink somewhere between the last floor field and the first one with film,
    # then a quadratic; or a straight hinge when the window is too small for it.
    kink_low, kink_high = x[max(0, rise - 1)], x[rise]
    # The kinked cubic from nine fields, the quadratic from five; else the straight hinge.
    degrees = (3, 2) if m >= 9 else (2,) if m >= 5 else (1,)
    fits = _best_kinked_fits(xx, yy, kink_low, kink_high, degrees)
    for degree in degrees:
        kink, c, plain_rss = fits[degree]
        if degree == 3:
            grid = np.linspace(kink, float(xx[-1]), 240)
            u = grid - kink
            derivative = c[1] + 2 * c[2] * u + 3 * c[3] * u * u
            j = int(np.argmax(derivative))
            tx, slope = float(grid[j]), float(derivative[j])
        elif degree == 2:
            ends = [kink, float(xx[-1])]
            slopes = [c[1] + 2 * c[2] * (e - kink) for e in ends]
            j = int(np.argmax(slopes))
            tx, slope = ends[j], float(slopes[j])
        else:
            tx, slope = kink, float(c[1])

        def kinked(v: Any, kink: float = kink, c: Any = c) -> Any:
            u = np.maximum(np.asarray(v, dtype=float) - kink, 0.0)
            return sum(c[p] * u**p for p in range(len(c)))

        tangent = _Tangent(tx, float(kinked(tx)), slope, "kink", kinked, (xx[0], xx[-1]))
        candidates.append((_aicc(plain_rss, m, degree + 2), tangent))
        if degree == 2:
            break  # the straight hinge is only the fallback for a small window
    if m >= 5 and np.unique(xx).size >= 5:
        c3 = np.polyfit(xx, yy, 3)
        rss = float(np.sum((np.polyval(c3, xx) - yy) ** 2))
        grid = np.linspace(xx[0], xx[-1], 240)
        derivative = np.polyval(np.polyder(c3), grid)
        j = int(np.argmax(derivative))

        def cubic(v: Any, c3: Any = c3) -> Any:
            return np.polyval(c3, np.asarray(v, dtype=float))

        candidates.append(
            (
                _aicc(rss, m, 4),
                _Tangent(
                    float(grid[j]),
                    float(cubic(grid[j])),
                    float(derivative[j]),
                    "smooth",
                    cubic,
                    (xx[0], xx[-1]),
                ),
            )
        )
    usable = [(a, t) for a, t in candidates if t.slope > 0 and math.isfinite(t.slope)]
    if not usable:
        return None
    return min(usable, key=lambda pair: pair[0])[1]


def _crossing(x: Any, monotone: Any, tangent: _Tangent | None, level: float) -> float | None:
    """log10 dose where the estimated curve first reaches ``level`` (NRT)."""
    import numpy as np

    if tangent is not None and tangent.curve is not None:
        grid = np.linspace(tangent.window[0], tangent.window[1], 400)
        values = tangent.curve(grid)
        hit = np.nonzero(values >= level)[0]
        if hit.size and hit[0] > 0:
            i = int(hit[0])
            a, b = values[i - 1], values[i]
            return float(grid[i - 1] + (level - a) / (b - a) * (grid[i] - grid[i - 1]))
    hit = np.nonzero(monotone >= level)[0]
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(x[0]) if monotone[0] == level else None
    a, b = monotone[i - 1], monotone[i]
    return float(x[i - 1] + (level - a) / (b - a) * (x[i] - x[i - 1]))


@dataclass(frozen=True)
class _Point:
    """The figures of one estimate, in log10 dose (None: not determined)."""

    dg: float | None
    d100: float | None
    onset: float | None
    d50: float | None
    gamma: float | None
    plateau: float
    tangent: _Tangent | None
    monotone: Any  # the isotonic fit at the fields


def _estimate(x: Any, y: Any) -> _Point:
    monotone = _isotonic(y)
    plateau = float(monotone[-1])
    tangent = _local_tangent(x, y, monotone, plateau) if plateau > 0 else None
    onset = _crossing(x, monotone, tangent, ONSET_LEVEL * plateau)
    d50 = _crossing(x, monotone, tangent, 0.5 * plateau)
    if tangent is None:
        return _Point(None, None, onset, d50, None, plateau, None, monotone)
    dg = tangent.x - tangent.y / tangent.slope
    d100 = tangent.x + (plateau - tangent.y) / tangent.slope
    return _Point(dg, d100, onset, d50, tangent.slope / plateau, plateau, tangent, monotone)


def _interval(centre: float, samples: list[float], allowance: float) -> tuple[float, float] | None:
    """Bootstrap spread (2.5-97.5 %) around ``centre``, widened by ``allowance`` (log10)."""
    import numpy as np

    if len(samples) < 20:
        return None
    low, mid, high = np.percentile(samples, [2.5, 50.0, 97.5])
    return centre - (mid - low) - allowance, centre + (high - mid) + allowance


def analyze_contrast(
    doses: Sequence[float] | Any,
    nrt: Sequence[float] | Any,
    *,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> ContrastResult:
    """Dg, D100, onset, D50 and gamma of a contrast curve, with 95 % intervals.

    ``doses``: delivered doses, mJ/cm^2 (floats or a quantity array);
    ``nrt``: normalized remaining thickness per field. ``replicates``: bootstrap
    size (0: figures without intervals). See the module docstring.
    """
    import numpy as np

    if hasattr(doses, "m_as"):
        doses = doses.m_as(U.mJ_per_cm2)
    try:
        d = np.asarray(doses, dtype=float).ravel()
        y = np.asarray(nrt, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"doses and NRT must be numbers: {exc}", field="contrast curve") from None
    if d.size != y.size:
        raise InputError(f"{d.size} doses but {y.size} NRT values", field="contrast curve")
    if d.size == 0:
        raise InputError("no fields", field="contrast curve")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(y))):
        raise InputError("a dose or an NRT is not a finite number", field="contrast curve")
    if np.any(d <= 0):
        raise InputError(
            f"dose {float(d[d <= 0][0]):g} mJ/cm² is not positive (allowed: > 0)",
            field="contrast curve",
        )
    order = np.lexsort((y, d))
    d, y = d[order], y[order]
    x = np.log10(d)
    noise = _noise_sd(x, y)
    noise_for_bootstrap = max(noise if math.isfinite(noise) else 0.02, MINIMUM_NOISE)
    point = _estimate(x, y)
    monotone = point.monotone
    plateau = point.plateau
    warnings: list[str] = []
    lowest, highest = float(d[0]), float(d[-1])
    dose_unit = U.mJ_per_cm2
    one = U.dimensionless

    def bound(value: float, kind: str, unit: Any = dose_unit) -> Estimate:
        return Estimate(Q_(value, unit), None, None, kind)

    nothing = Estimate(None, None, None, UNDETERMINED)
    inside = int(np.sum((monotone > ONSET_LEVEL * plateau) & (monotone < 0.95 * plateau)))
    base: dict[str, Any] = dict(
        doses=[float(v) for v in d],
        nrt=[float(v) for v in y],
        noise_sd=float(noise) if math.isfinite(noise) else 0.0,
        fields_in_transition=inside,
    )

    # -- degenerate curves: bounds, never an exception -------------------------------
    if d.size < MINIMUM_FIELDS:
        warnings.append(
            f"{d.size} field(s) make no contrast curve (at least {MINIMUM_FIELDS}, better 16)"
        )
        return ContrastResult(
            **base, dg=nothing, d100=nothing, onset=nothing, d50=nothing, gamma=nothing,
            gamma_iupac=nothing, plateau=nothing, slope=None, tangent_point=None,
            local_fit="none", warnings=warnings,
        )  # fmt: skip
    if plateau < CLEARED_LEVEL:
        warnings.append(
            f"every field developed away (NRT <= {max(float(np.max(y)), 0.0):.2f}): the "
            f"transition is above {highest:.3g} mJ/cm²; raise dose_max"
        )
        above = bound(highest, LOWER_BOUND)
        return ContrastResult(
            **base, dg=above, d100=above, onset=above, d50=above, gamma=nothing,
            gamma_iupac=nothing, plateau=nothing, slope=None, tangent_point=None,
            local_fit="none", warnings=warnings,
        )  # fmt: skip
    if monotone[0] >= 0.95 * plateau or float(y[0]) >= 0.9 * plateau:
        warnings.append(
            f"every field kept its film (lowest dose {lowest:.3g} mJ/cm² keeps NRT "
            f"{float(y[0]):.2f}): the transition is below it; lower dose_min"
        )
        below = bound(lowest, UPPER_BOUND)
        return ContrastResult(
            **base, dg=below, d100=below, onset=below, d50=below, gamma=nothing,
            gamma_iupac=nothing,
            plateau=Estimate(Q_(plateau, one), Q_(plateau, one), Q_(plateau, one)),
            slope=None, tangent_point=None, local_fit="none", warnings=warnings,
        )  # fmt: skip

    # -- the transition is not sampled: a bracket and a bound on gamma ----------------
    if inside < 2 or point.tangent is None:
        floor = np.nonzero(monotone <= ONSET_LEVEL * plateau)[0]
        full = np.nonzero(monotone >= 0.95 * plateau)[0]
        a = float(x[floor[-1]]) if floor.size else float(x[0])
        b = float(x[full[0]]) if full.size else float(x[-1])
        if b <= a:
            b = float(x[min(len(x) - 1, int(np.searchsorted(x, a, side="right")))])
        bracket = Estimate(Q_(10 ** ((a + b) / 2), dose_unit), Q_(10**a, dose_unit),
                           Q_(10**b, dose_unit))  # fmt: skip
        steepest = 0.9 / max(b - a, 1e-6)
        warnings.append(
            f"only {inside} field(s) inside the transition: Dg, the onset and D100 lie "
            f"between {10**a:.3g} and {10**b:.3g} mJ/cm² and gamma is at least "
            f"{steepest:.2g}; expose more fields between those doses"
        )
        return ContrastResult(
            **base, dg=bracket, d100=bracket, onset=bracket, d50=bracket,
            gamma=bound(steepest, LOWER_BOUND, one), gamma_iupac=nothing,
            plateau=Estimate(Q_(plateau, one), Q_(plateau, one), Q_(plateau, one)),
            slope=None, tangent_point=None, local_fit="bracket", warnings=warnings,
        )  # fmt: skip

    # -- the bootstrap ------------------------------------------------------------------
    samples: dict[str, list[float]] = {k: [] for k in ("dg", "d100", "onset", "d50", "gamma")}
    samples["plateau"] = []
    rng = np.random.default_rng(seed)
    for _ in range(replicates):
        replica = monotone + rng.normal(0.0, noise_for_bootstrap, y.size)
        try:
            again = _estimate(x, replica)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            continue
        for key in ("dg", "d100", "onset", "d50"):
            value = getattr(again, key)
            if value is not None and math.isfinite(value):
                samples[key].append(value)
        if again.gamma is not None and again.gamma > 0:
            samples["gamma"].append(math.log10(again.gamma))
        samples["plateau"].append(again.plateau)

    dose_allowance = math.log10(1.0 + SHAPE_ALLOWANCE["dose"])
    gamma_allowance = math.log10(1.0 + SHAPE_ALLOWANCE["gamma"])

    def dose_figure(key: str, value: float | None) -> Estimate:
        if value is None or not math.isfinite(value):
            return nothing
        span = _interval(value, samples[key], dose_allowance)
        if span is None:
            return Estimate(Q_(10**value, dose_unit), None, None, ESTIMATE)
        return Estimate(
            Q_(10**value, dose_unit), Q_(10 ** span[0], dose_unit), Q_(10 ** span[1], dose_unit)
        )

    assert point.tangent is not None and point.gamma is not None
    dg = dose_figure("dg", point.dg)
    d100 = dose_figure("d100", point.d100)
    onset = dose_figure("onset", point.onset)
    d50 = dose_figure("d50", point.d50)
    span = _interval(math.log10(point.gamma), samples["gamma"], gamma_allowance)
    gamma = Estimate(
        Q_(point.gamma, one),
        None if span is None else Q_(10 ** span[0], one),
        None if span is None else Q_(10 ** span[1], one),
    )
    plateau_low, plateau_high = (
        np.percentile(samples["plateau"], [2.5, 97.5]) if samples["plateau"] else (plateau,) * 2
    )
    plateau_figure = Estimate(
        Q_(plateau, one), Q_(float(plateau_low), one), Q_(float(plateau_high), one)
    )
    gamma_iupac = nothing
    if point.d50 is not None and point.dg is not None and point.d50 > point.dg:
        value = 1.0 / (2.0 * (point.d50 - point.dg))
        gamma_iupac = Estimate(Q_(value, one), None, None, ESTIMATE)

    # -- what the data cannot say ---------------------------------------------------------
    assert point.dg is not None and point.d100 is not None
    if inside < 4:
        warnings.append(
            f"only {inside} fields inside the transition: the intervals are wide; expose "
            f"more fields between {10**point.dg:.3g} and {10**point.d100:.3g} mJ/cm²"
        )
    if point.dg < x[0]:
        warnings.append(
            f"Dg {10**point.dg:.3g} mJ/cm² is extrapolated below the lowest dose "
            f"({lowest:.3g} mJ/cm²); lower dose_min"
        )
    beyond = x >= point.d100
    rising = False
    if np.unique(x[beyond]).size >= LEVELLED_FIELDS:
        top_slope = float(np.polyfit(x[beyond], y[beyond], 1)[0])
        rising = top_slope > LEVELLED_SLOPE * point.tangent.slope
    else:
        rising = True
    if rising:
        warnings.append(
            f"the curve has not levelled off by {highest:.3g} mJ/cm²: the plateau may be "
            "higher, so D100 is a lower bound and gamma an upper bound; raise dose_max"
        )
        d100 = bound(10**point.d100, LOWER_BOUND)
        gamma = bound(point.gamma, UPPER_BOUND, one)
        plateau_figure = bound(plateau, LOWER_BOUND, one)
    smooth = _smooth_curve(x, monotone, point.tangent)
    fitted = np.interp(x, np.log10([d for d, _ in smooth]), [v for _, v in smooth])
    scatter = float(np.sqrt(np.mean((y - fitted) ** 2)))
    if scatter > SCATTER_WARNING:
        warnings.append(
            f"the fields scatter by {scatter:.3f} NRT (RMS) about the estimated curve (more "
            f"than {SCATTER_WARNING}): check the measurements"
        )

    tangent_dose = 10**point.tangent.x
    return ContrastResult(
        **base, dg=dg, d100=d100, onset=onset, d50=d50, gamma=gamma,
        gamma_iupac=gamma_iupac, plateau=plateau_figure, slope=point.tangent.slope,
        tangent_point=(float(tangent_dose), float(point.tangent.y)),
        local_fit=point.tangent.fit, smooth=smooth, warnings=warnings,
    )  # fmt: skip


def _smooth_curve(x: Any, monotone: Any, tangent: _Tangent) -> list[tuple[float, float]]:
    """The estimated curve: the local fit over its window, the monotone fit elsewhere."""
    import numpy as np

    grid = np.linspace(float(x[0]), float(x[-1]), 200)
    values = np.interp(grid, x, monotone)
    inside = (grid >= tangent.window[0]) & (grid <= tangent.window[1])
    if tangent.curve is not None and np.any(inside):
        values[inside] = tangent.curve(grid[inside])
    return [(float(10**g), float(v)) for g, v in zip(grid, values, strict=True)]
