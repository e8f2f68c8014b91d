"""Accuracy of labctl's contrast analysis on curves of shapes it does not assume.

    python benchmarks/contrast_accuracy.py [--trials 200] [--noise 0.02] [--fields 16]

For each family of ``tests/labctl/contrast_families.py``: random Dg
(5-150 mJ/cm2, log-uniform), gamma (1.2-6) and plateau (0.85-1.0); 16
log-spaced fields from Dg/2 to 1.5x the dose where the curve reaches 97 % of
its plateau; Gaussian noise. Prints the median error and median |error| of Dg
and gamma and how often the 95 % intervals held the truth - the table in
docs/analysis.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.contrast import analyze_contrast
from tests.labctl.contrast_families import FAMILIES, noisy_curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--fields", type=int, default=16)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(
        f"{args.trials} curves per family, {args.fields} fields, noise {args.noise} NRT (1 sigma)"
    )
    print(
        "| family | Dg median error | Dg median abs. error | gamma median error "
        "| gamma median abs. error | Dg interval holds truth | gamma interval holds truth "
        "| not determined |"
    )
    print("|---|---|---|---|---|---|---|---|")
    started = time.perf_counter()
    for name, curve in FAMILIES.items():
        rng = np.random.default_rng(args.seed)
        dg_errors, gamma_errors, dg_held, gamma_held, missing = [], [], 0, 0, 0
        for _ in range(args.trials):
            dg = 10 ** rng.uniform(math.log10(5.0), math.log10(150.0))
            gamma = rng.uniform(1.2, 6.0)
            plateau = rng.uniform(0.85, 1.0)
            doses, nrt = noisy_curve(curve, rng, dg, gamma, plateau, args.noise, args.fields)
            result = analyze_contrast(doses, nrt)
            if not (result.dg.determined and result.gamma.determined):
                missing += 1
                continue
            dg_errors.append(result.dg.value.magnitude / dg - 1.0)
            gamma_errors.append(result.gamma.value.magnitude / gamma - 1.0)
            dg_held += result.dg.covers(result.dg.value.__class__(dg, result.dg.value.units))
            gamma_held += result.gamma.covers(
                result.gamma.value.__class__(gamma, result.gamma.value.units)
            )
        fitted = len(dg_errors)
        e_dg, e_gamma = np.array(dg_errors), np.array(gamma_errors)
        print(
            f"| {name} | {100 * np.median(e_dg):+.1f} % | {100 * np.median(abs(e_dg)):.1f} % "
            f"| {100 * np.median(e_gamma):+.1f} % | {100 * np.median(abs(e_gamma)):.1f} % "
            f"| {100 * dg_held / max(fitted, 1):.0f} % | {100 * gamma_held / max(fitted, 1):.0f} % "
            f"| {missing} |"
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
