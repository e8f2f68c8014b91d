"""Compare runs through their formulations: Dg, gamma and thickness against composition."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from . import private
from .analysis import contrast_from_store
from .errors import InputError
from .formulation import parse_formulation
from .store import RunStore

__all__ = ["compare_runs", "formulation_variable"]

LABELS = {
    "b1_b2_ratio": "B-1/B-2 mole ratio",
    "base": "base, wt % of solids",
    "acid_generator": "acid generator, wt % of solids",
    "solids": "solids content, wt % of solution",
}


def formulation_variable(formulation: Any, variable: str) -> float:
    if variable == "b1_b2_ratio":
        ratio = formulation.b1_b2_mole_ratio()
        return float("nan") if ratio is None else float(ratio)
    if variable in ("base", "acid_generator"):
        return 100.0 * float(formulation.solids_fraction(variable))
    if variable == "solids":
        return float(formulation.solids_content().magnitude)
    raise InputError(f"unknown variable; variables: {', '.join(LABELS)}", field="--by")


def compare_runs(
    data_dir: Path,
    run_ids: list[str],
    variable: str,
    out: Path | None = None,
    *,
    store: Any = None,
) -> tuple[list[dict[str, Any]], Path]:
    """A row per run (joined through the formulation hash) and a plot of Dg and gamma.

    ``store``: an open store to read instead of ``data_dir``'s (the lab store,
    :class:`labctl.labstore.LabStore`); the caller closes it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = store is None
    store = RunStore(data_dir, create=False) if own else store
    rows = []
    try:
        for given in run_ids:
            record = store.run(given)
            stored = store.formulation(record["formulation_hash"])
            if stored is None:
                raise InputError("its formulation is not in the store", field=f"run {given}")
            formulation = parse_formulation(
                tomllib.loads(stored["content"]), source=stored["source"]
            )
            result = contrast_from_store(store, record["run_id"])
            before = [
                r["thickness_nm"]
                for r in store.measurement_rows(record["run_id"])
                if r["label"] == "before"
            ]
            rows.append(
                {
                    "run_id": record["run_id"],
                    "formulation": formulation.name,
                    "formulation_hash": record["formulation_hash"],
                    "x": formulation_variable(formulation, variable),
                    "gel_dose": _number(result.dg),
                    "gamma": _number(result.gamma),
                    "dg_text": str(result.dg),
                    "gamma_text": str(result.gamma),
                    "thickness": sum(before) / len(before) if before else float("nan"),
                }
            )
    finally:
        if own:
            store.close()
    rows.sort(key=lambda r: r["x"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    xs = [r["x"] for r in rows]
    left.plot(xs, [r["gel_dose"] for r in rows], "o-")
    left.set_ylabel("gel dose Dg (mJ/cm²)")
    right.plot(xs, [r["gamma"] for r in rows], "s-", color="C1")
    right.set_ylabel("contrast gamma")
    for axes in (left, right):
        axes.set_xlabel(LABELS[variable])
    out = out or Path(data_dir) / "reports" / "compare.png"
    private.private_dir(out.parent)
    with private.private_output(out) as stream:  # owner-only, like every report
        figure.savefig(stream, format=out.suffix[1:] or "png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return rows, out


def _number(estimate: Any) -> float:
    """The plotted value of a figure: NaN when it is a bound or undetermined."""
    return float(estimate.value.magnitude) if estimate.determined else float("nan")
