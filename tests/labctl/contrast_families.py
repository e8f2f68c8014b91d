"""Contrast curves of shapes labctl's analysis does not assume, with known figures.

Each family is written from its own law, parameterized so that the classic
construction (docs/analysis.md) gives a chosen Dg, gamma and plateau P
exactly: the steepest slope is ``gamma * P`` per decade and the tangent there
meets zero at Dg. None of them is the estimator's local model.

* ``piecewise``: the textbook curve, linear in log dose from Dg to D100;
* ``charlesby``: a gel fraction, ``s + sqrt(s) = 2 (Dg/D)^n`` (steepest at Dg);
* ``exponential``: an exponential onset, ``P (1 - exp(-(x - xg)/w))``;
* ``probit``: a normal-CDF transition in log dose;
* ``gompertz``: an asymmetric smooth S, ``P exp(-exp(-(x - x0)/w))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

Curve = Callable[[np.ndarray, float, float, float], np.ndarray]

__all__ = ["FAMILIES", "design", "noisy_curve"]


def piecewise(x: np.ndarray, xg: float, gamma: float, plateau: float) -> np.ndarray:
    return plateau * np.clip((x - xg) * gamma, 0.0, 1.0)


def charlesby(x: np.ndarray, xg: float, gamma: float, plateau: float) -> np.ndarray:
    # d(1 - s)/dx at the gel dose is (4/3) n ln 10, the steepest point.
    n = 3.0 * gamma / (4.0 * math.log(10.0))
    rhs = 2.0 * 10.0 ** (-n * np.maximum(x - xg, 0.0))
    root = (-1.0 + np.sqrt(1.0 + 4.0 * rhs)) / 2.0
    return plateau * np.where(x >= xg, 1.0 - root * root, 0.0)


def exponential(x: np.ndarray, xg: float, gamma: float, plateau: float) -> np.ndarray:
    return plateau * np.where(x > xg, 1.0 - np.exp(-(x - xg) * gamma), 0.0)


def probit(x: np.ndarray, xg: float, gamma: float, plateau: float) -> np.ndarray:
    sigma = 1.0 / (gamma * math.sqrt(2.0 * math.pi))
    centre = xg + 1.0 / (2.0 * gamma)
    return plateau * special.ndtr((x - centre) / sigma)


def gompertz(x: np.ndarray, xg: float, gamma: float, plateau: float) -> np.ndarray:
    width = 1.0 / (math.e * gamma)
    return plateau * np.exp(-np.exp(-(x - (xg + width)) / width))


FAMILIES: dict[str, Curve] = {
    "piecewise-linear": piecewise,
    "Charlesby gel fraction": charlesby,
    "exponential onset": exponential,
    "probit": probit,
    "Gompertz": gompertz,
}


def design(curve: Curve, xg: float, gamma: float, plateau: float, fields: int = 16) -> np.ndarray:
    """Log10 doses of a dose matrix: log-spaced from Dg/2 to 1.5x where the curve reaches 97 %."""
    grid = xg + np.linspace(0.0, 6.0, 60001)
    reached = grid[np.argmax(curve(grid, xg, gamma, plateau) >= 0.97 * plateau)]
    return np.linspace(xg - math.log10(2.0), reached + math.log10(1.5), fields)


def noisy_curve(
    curve: Curve, rng: np.random.Generator, dg: float, gamma: float, plateau: float,
    noise: float = 0.02, fields: int = 16,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Doses (mJ/cm^2) and NRT with Gaussian noise ``noise`` (NRT units)."""
    xg = math.log10(dg)
    x = design(curve, xg, gamma, plateau, fields)
    return 10.0**x, curve(x, xg, gamma, plateau) + rng.normal(0.0, noise, x.size)
