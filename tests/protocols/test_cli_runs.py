"""The run commands as a user types them: run, runs, show, export, resume, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import fast_contrast_curve
from tests.protocols.conftest import BASELINE, FAST

RECIPES = Path(__file__).resolve().parents[2] / "examples" / "recipes"


def labctl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )


def sets() -> list[str]:
    return [item for pair in (("--set", f) for f in FAST) for item in pair]


def test_main_job_runs_records_and_reports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = labctl(
        "run",
        "contrast-curve",
        "--sim",
        "--formulation",
        str(BASELINE),
        "--recipe",
        str(RECIPES / "contrast_curve.toml"),
        "--data",
        str(data),
    )
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and str(data.resolve()) in result.stdout
    runs = json.loads(labctl("runs", "--json", "--data", str(data)).stdout)
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    run_id = runs[0]["run_id"]
    shown = labctl("show", run_id[:22], "--data", str(data))
    assert shown.returncode == 0 and "measurements 64" in shown.stdout  # two wafers
    exported = labctl(
        "export", run_id, "--format", "csv", "--out", str(tmp_path / "out"), "--data", str(data)
    )
    assert exported.returncode == 0, exported.stderr
    measurements = (tmp_path / "out" / f"{run_id}_measurements.csv").read_text().splitlines()
    assert len(measurements) == 65  # a header and 64 rows
    assert "dose_delivered_mJ_cm2" in measurements[0] and "formulation_hash" in measurements[0]


def test_data_directory_from_the_environment(tmp_path: Path) -> None:
    env_dir = tmp_path / "from-env"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labctl.cli",
            "run",
            "claim14",
            "--sim",
            "--formulation",
            str(BASELINE),
            "--set",
            "coat_time=10 s",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**__import__("os").environ, "LABCTL_DATA": str(env_dir)},
    )
    assert result.returncode == 0, result.stderr
    assert (env_dir / "labctl.sqlite").exists()
    assert not (tmp_path / "labctl-data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "coat_speed=20000 rpm"],
            "--set: coat_speed: '20000 rpm' is outside 500 rpm to 10000 rpm",
        ),
        (["--set", "coat_speed=3000"], "3000 needs a unit: write it in rpm"),
        (["--set", "peb_temperature=110 mJ"], "is not a quantity in degC"),
        (["--set", "nonsense=1"], "--set: nonsense: unknown parameter"),
        (["--set", "fields=many"], "is not a whole number"),
        (["--recipe", "missing.toml"], "missing.toml: file: no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_moves(
    tmp_path: Path, args: list[str], message: str
) -> None:
    data = tmp_path / "data"
    result = labctl(
        "run", "contrast-curve", "--sim", "--formulation", str(BASELINE), "--data", str(data), *args
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not (data / "bench").exists()  # no bench switched on, no instrument touched


def test_a_recipe_for_another_protocol_is_refused(tmp_path: Path) -> None:
    result = labctl(
        "run",
        "contrast-curve",
        "--sim",
        "--formulation",
        str(BASELINE),
        "--recipe",
        str(RECIPES / "spin_curve.toml"),
        "--data",
        str(tmp_path),
    )
    assert result.returncode == 2 and "is for 'spin-curve'" in result.stderr


def test_unattended_refuses_a_station_without_a_handler(tmp_path: Path) -> None:
    station = Path(__file__).resolve().parents[2] / "examples" / "stations" / "bench.toml"
    result = labctl(
        "run",
        "claim14",
        "--station",
        str(station),
        "--unattended",
        "--formulation",
        str(BASELINE),
        "--data",
        str(tmp_path),
    )
    assert result.returncode == 2 and "needs a wafer handler" in result.stderr


def test_unknown_protocol_and_unknown_run(tmp_path: Path) -> None:
    result = labctl(
        "run", "bake-off", "--sim", "--formulation", str(BASELINE), "--data", str(tmp_path)
    )
    assert result.returncode == 2 and "unknown protocol" in result.stderr
    result = labctl("resume", "no-such-run", "--data", str(tmp_path))
    assert result.returncode == 2 and "no run store" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing to resume: no store made either
    assert labctl(*fast_contrast_curve(tmp_path)).returncode == 0
    result = labctl("resume", "no-such-run", "--data", str(tmp_path))
    assert result.returncode == 2 and "no such run" in result.stderr


def test_resume_of_a_completed_run_is_refused(tmp_path: Path) -> None:
    assert (
        labctl(
            "run", "claim14", "--sim", "--formulation", str(BASELINE), "--data", str(tmp_path)
        ).returncode
        == 0
    )
    run_id = json.loads(labctl("runs", "--json", "--data", str(tmp_path)).stdout)[0]["run_id"]
    result = labctl("resume", run_id, "--data", str(tmp_path))
    assert result.returncode == 2 and "nothing to resume" in result.stderr


@pytest.mark.parametrize(
    "extra",
    [
        ("--set", "fields=5", "--set", "fine_fields=0"),
        ("--set", "dose_min=2 mJ/cm**2", "--set", "dose_max=34 mJ/cm**2", "--set", "fine_fields=0"),
    ],
)
def test_a_sparse_or_short_matrix_ends_with_figures_or_bounds_never_a_traceback(
    tmp_path: Path, extra: tuple[str, ...]
) -> None:
    """Issue 11: these ended completed runs with an OverflowError in the old fit."""
    run = labctl(
        "run", "contrast-curve", "--sim", "--formulation", str(BASELINE),
        "--data", str(tmp_path), *extra,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "Dg " in run.stdout
    run_id = json.loads(labctl("runs", "--json", "--data", str(tmp_path)).stdout)[0]["run_id"]
    for command in (("report", run_id), ("compare", run_id)):
        done = labctl(*command, "--data", str(tmp_path))
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
