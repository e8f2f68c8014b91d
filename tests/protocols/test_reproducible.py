"""A seed reproduces a simulated run: the same measurements, byte for byte, in any directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from protocols.runner import RunRequest, start
from tests.protocols.conftest import BASELINE, FAST

#: Everything a run measured, without the run id (which carries the wall-clock time).
MEASURED = (
    "SELECT seq, wafer_id, label, site, x_mm, y_mm, dose_requested_mJ_cm2, dose_delivered_mJ_cm2,"
    " thickness_nm, thickness_error_nm, refractive_index, mse, formulation_hash"
    " FROM measurements WHERE run_id = ? ORDER BY seq, site"
)
SAMPLED = "SELECT * FROM samples WHERE run_id = ? ORDER BY rowid"


def _run(data_dir: Path, seed: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    outcome = start(
        RunRequest(
            protocol="contrast-curve",
            data_dir=data_dir,
            formulation=BASELINE,
            sim=True,
            overrides=FAST,
            seed=seed,
        )
    )
    assert outcome.status == "completed", outcome.reason
    with sqlite3.connect(data_dir / "labctl.sqlite") as db:
        measured = db.execute(MEASURED, (outcome.run_id,)).fetchall()
        columns = [c[1] for c in db.execute("PRAGMA table_info(samples)")]
        # The run id and the wall-clock time differ from run to run; the rest may not.
        keep = [i for i, name in enumerate(columns) if name not in ("run_id", "wall_time")]
        sampled = [tuple(row[i] for i in keep) for row in db.execute(SAMPLED, (outcome.run_id,))]
    return measured, sampled


def test_the_same_seed_in_two_fresh_data_directories_measures_the_same(tmp_path: Path) -> None:
    first = _run(tmp_path / "one", seed=7)
    second = _run(tmp_path / "elsewhere" / "two", seed=7)
    assert len(first[0]) > 6 and len(first[1]) > 100
    assert first[0] == second[0]  # every thickness, dose and fit figure, exactly
    assert first[1] == second[1]  # every sample of every trace, on the bench clock


def test_another_seed_measures_differently(tmp_path: Path) -> None:
    first, _ = _run(tmp_path / "one", seed=7)
    other, _ = _run(tmp_path / "two", seed=8)
    thickness = [row[8] for row in first]
    assert thickness != [row[8] for row in other]
