"""`labctl export`: tidy, machine-readable tables - JSON, one unit spelling, both clocks."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from labctl import cli
from labctl.analysis_io import _coat_speed_cell
from labctl.store import (
    CHANNEL_UNITS,
    EXPORT_TABLES,
    RunStore,
    export_json,
    samples_frame,
    steps_frame,
)
from labctl.units import canonical_unit, ureg
from tests.cli import fast_contrast_curve, labctl

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runs.md"
TABLES = ("measurements", "samples", "steps")
#: Every unit the bench's steps and channels use, as the export spells them.
CANONICAL = {"s", "ms", "mm", "nm", "rpm", "degC", "A", "mW", "mW/cm^2", "mJ/cm^2"}


@dataclass(frozen=True)
class Export:
    data: Path
    run_id: str
    out: Path

    def rows(self, table: str) -> list[dict[str, str]]:
        path = self.out / f"{self.run_id}_{table}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def header(self, table: str) -> list[str]:
        path = self.out / f"{self.run_id}_{table}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """A simulated contrast curve of two wafers (coarse, then fine), exported as CSV."""
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    ran = labctl(*fast_contrast_curve(data), "--set", "fine_fields=4")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(labctl("runs", "--json", "--data", str(data)).stdout)[0]["run_id"]
    out = root / "out"
    exported = labctl("export", run_id, "--format", "csv", "--out", str(out), "--data", str(data))
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{run_id}_{t}.csv" for t in TABLES]
    return Export(data, run_id, out)


def quantities(value: Any, key: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every {value, unit} object in a parsed JSON value, with the key that holds it."""
    if isinstance(value, dict):
        if set(value) == {"value", "unit"}:
            return [(key, value)]
        return [q for name, item in value.items() for q in quantities(item, name)]
    if isinstance(value, list):
        return [q for item in value for q in quantities(item, key)]
    return []


def wall(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0), text  # UTC, said so
    return moment


# -- JSON columns ------------------------------------------------------------------------------


def test_every_json_cell_is_json_with_quantities_as_value_and_unit(export: Export) -> None:
    steps = export.rows("steps")
    assert len(steps) == 2 * (23 + 6)
    units: dict[tuple[str, str], set[str]] = {}
    for row in steps:
        for column in ("parameters", "result"):
            parsed = json.loads(row[column], parse_constant=pytest.fail)  # no NaN, no Infinity
            assert "__quantity__" not in row[column] and "'" not in row[column]
            for key, quantity in quantities(parsed):
                assert isinstance(quantity["value"], int | float)
                assert math.isfinite(quantity["value"])
                units.setdefault((row["name"], key), set()).add(quantity["unit"])
        assert isinstance(json.loads(row["parameters"]), dict)
    assert len(units) > 30
    # One spelling - and one unit - for each field of each kind of step, all canonical.
    assert all(len(spellings) == 1 for spellings in units.values()), units
    assert set().union(*units.values()) == CANONICAL
    coat = next(row for row in steps if row["name"] == "coat")
    assert json.loads(coat["parameters"])["speed"] == {"value": 3000, "unit": "rpm"}
    # The spin-curve analysis still finds the coat speed in it.
    assert _coat_speed_cell(coat["parameters"]) == (3000, "rpm")


def test_old_exports_python_repr_cells_are_still_read() -> None:
    old = "{'duration': {'__quantity__': [30, 's']}, 'speed': {'__quantity__': [2500, 'rpm']}}"
    assert _coat_speed_cell(old) == (2500, "rpm")


def test_a_journal_value_becomes_strict_json() -> None:
    value = {
        "dose": {"__quantity__": [25.5, "mJ / cm ** 2"]},
        "plate": {"__quantity__": [100.0, "°C"]},
        "mean": {"__quantity__": [float("nan"), "rpm"]},
        "bad": {"__float__": "inf"},
        "count": 3,
        "sites": [{"x": {"__quantity__": [-8.0, "mm"]}}],
        "ratio": {"__quantity__": [0.5, ""]},
    }
    text = export_json(value)
    assert json.loads(text) == {
        "bad": None,
        "count": 3,
        "dose": {"unit": "mJ/cm^2", "value": 25.5},
        "mean": {"unit": "rpm", "value": None},
        "plate": {"unit": "degC", "value": 100.0},
        "ratio": {"unit": "", "value": 0.5},
        "sites": [{"x": {"unit": "mm", "value": -8.0}}],
    }
    assert "NaN" not in text and "Infinity" not in text


# -- units -----------------------------------------------------------------------------------


def test_one_unit_spelling_per_channel_from_the_canonical_set(export: Export) -> None:
    samples = export.rows("samples")
    units: dict[str, set[str]] = {}
    for row in samples:
        units.setdefault(row["channel"], set()).add(row["unit"])
    assert units == {channel: {unit} for channel, unit in CHANNEL_UNITS.items()}
    plate = [float(r["value"]) for r in samples if r["channel"] == "plate_temperature"]
    assert min(plate) > 15 and max(plate) < 130  # degC, not kelvin


@pytest.mark.parametrize(
    ("unit", "spelled"),
    [
        ("mW / cm ** 2", "mW/cm^2"),
        ("milliwatt / centimeter ** 2", "mW/cm^2"),
        ("°C", "degC"),
        ("degC", "degC"),
        ("degree_Celsius", "degC"),
        ("revolutions_per_minute", "rpm"),
        ("mJ/cm**2", "mJ/cm^2"),
        ("uC/cm^2", "uC/cm^2"),
        ("µm", "um"),
        ("rpm/s", "rpm/s"),
        ("delta_degC", "delta_degC"),
        ("J/(mol*K)", "J/(mol*K)"),
        ("percent", "%"),
        ("", ""),
    ],
)
def test_canonical_unit_spells_each_unit_one_way_that_pint_reads_back(
    unit: str, spelled: str
) -> None:
    assert canonical_unit(unit) == spelled
    assert canonical_unit(ureg.Unit(unit)) == spelled
    assert canonical_unit(spelled) == spelled  # a fixed point
    if spelled:
        assert ureg.Unit(spelled) == ureg.Unit(unit)
        assert spelled.isascii() and " " not in spelled and "**" not in spelled


def test_older_stores_spellings_and_units_are_made_one(tmp_path: Path) -> None:
    frame = samples_frame(
        [
            {"run_id": "r", "seq": 1, "channel": "plate_temperature", "t": 0.0, "value": 100.0,
             "unit": "°C"},
            {"run_id": "r", "seq": 1, "channel": "plate_temperature", "t": 1.0, "value": 100.0,
             "unit": "degC"},
            {"run_id": "r", "seq": 1, "channel": "plate_temperature", "t": 2.0, "value": 373.15,
             "unit": "K"},
            {"run_id": "r", "seq": 2, "channel": "irradiance", "t": 0.0, "value": 12.0,
             "unit": "mW / cm ** 2"},
            {"run_id": "r", "seq": 2, "channel": "irradiance", "t": 0.0, "value": 0.012,
             "unit": "W/cm**2"},
        ]
    )  # fmt: skip
    assert list(frame["unit"]) == ["degC"] * 3 + ["mW/cm^2"] * 2
    assert list(frame["value"]) == pytest.approx([100.0, 100.0, 100.0, 12.0, 12.0])
    assert frame["bench_time"].isna().all() and frame["wall_time"].isna().all()  # not recorded


# -- both clocks -----------------------------------------------------------------------------


def test_every_table_names_both_clocks(export: Export) -> None:
    for table in TABLES:
        header = export.header(table)
        assert "bench_time" in header and "wall_time" in header, table
        assert not {"measured_at", "started_at", "finished_at", "t"} & set(header), table


def test_bench_time_never_goes_back_and_wall_time_is_iso_utc(export: Export) -> None:
    measurements, samples, steps = (export.rows(t) for t in TABLES)
    for rows in (measurements, samples, steps):
        bench = [float(r["bench_time"]) for r in rows]
        assert bench == sorted(bench) and bench[-1] > 0
        walls = [wall(r["wall_time"]) for r in rows]
        assert walls == sorted(walls)
        assert abs(datetime.now(walls[0].tzinfo) - walls[0]) < timedelta(minutes=10)
    for step in steps:
        assert float(step["bench_time_finished"]) >= float(step["bench_time"])
        assert wall(step["wall_time_finished"]) >= wall(step["wall_time"])
    # The simulated night runs on the virtual clock, far faster than the wall clock.
    run_bench = float(steps[-1]["bench_time_finished"])
    run_wall = (wall(steps[-1]["wall_time_finished"]) - wall(steps[0]["wall_time"])).total_seconds()
    assert run_bench > 600 and run_wall < run_bench / 10


def test_the_clocks_of_samples_and_measurements_agree_with_their_steps(export: Export) -> None:
    steps = {int(r["seq"]): r for r in export.rows("steps")}
    for sample in export.rows("samples"):
        step = steps[int(sample["seq"])]
        start = float(sample["bench_time"]) - float(sample["bench_time_in_step"])
        assert start == pytest.approx(float(step["bench_time"]), abs=1e-6)
        assert float(sample["bench_time"]) <= float(step["bench_time_finished"]) + 1e-9
    for row in export.rows("measurements"):
        step = steps[int(row["seq"])]
        assert step["name"] == "measure"
        bench = float(row["bench_time"])
        assert float(step["bench_time"]) <= bench <= float(step["bench_time_finished"])
        assert wall(step["wall_time"]) <= wall(row["wall_time"]) <= wall(step["wall_time_finished"])


def test_a_resumed_run_s_bench_time_goes_on_from_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labctl.engine as engine
    from protocols.runner import RunRequest, resume, start
    from tests.protocols.conftest import BASELINE, FAST

    request = RunRequest(
        protocol="contrast-curve", data_dir=tmp_path, formulation=BASELINE, sim=True, overrides=FAST
    )
    monkeypatch.setattr(engine, "_INJECTION", (12, "stop"))
    stopped = start(request)
    monkeypatch.setattr(engine, "_INJECTION", None)
    assert resume(stopped.run_id, tmp_path).status == "completed"
    store = RunStore(tmp_path)
    try:
        samples = store.samples(stopped.run_id)
        measurements = store.measurements(stopped.run_id)
        before = store.steps_frame(stopped.run_id).set_index("seq").loc[12, "bench_time_finished"]
    finally:
        store.close()
    assert samples["bench_time"].is_monotonic_increasing
    assert measurements["bench_time"].is_monotonic_increasing
    assert measurements["bench_time"].iloc[-1] > before  # after the stop, on from there


# -- the files, the Python frames and the documentation agree ---------------------------


def test_the_python_frames_are_the_exported_tables(export: Export) -> None:
    store = RunStore(export.data)
    try:
        frames = store.export_frames(export.run_id)
        assert list(frames) == list(TABLES)
        for table, frame in frames.items():
            assert list(frame.columns) == [c.name for c in EXPORT_TABLES[table]]
            assert list(frame.columns) == export.header(table)
            assert len(frame) == len(export.rows(table))
        assert list(store.measurements(export.run_id).columns) == export.header("measurements")
        assert list(store.samples(export.run_id).columns) == export.header("samples")
        steps = store.steps_frame(export.run_id)
        assert steps["repeatable"].dtype == bool and steps["seq"].dtype == "int64"
        assert store.measurements(export.run_id)["bench_time"].dtype == "float64"
    finally:
        store.close()


def documented_tables() -> dict[str, list[list[str]]]:
    """The rows of each export table in docs/runs.md: {table: [[column, type, unit], ...]}."""
    tables: dict[str, list[list[str]]] = {}
    current = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `<run>_(\w+)`", line)
        if heading:
            current = heading[1]
            tables[current] = []
        elif line.startswith("#"):
            current = None
        elif current and line.startswith("| `"):
            cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
            tables[current].append(cells[:3])
    return tables


def test_the_documentation_lists_exactly_the_exported_columns(export: Export) -> None:
    documented = documented_tables()
    assert sorted(documented) == sorted(TABLES)
    for table in TABLES:
        assert [row[0] for row in documented[table]] == export.header(table), table
        assert documented[table] == [[c.name, c.type, c.unit] for c in EXPORT_TABLES[table]]
        for name, _, unit in documented[table]:
            assert canonical_unit(unit) == unit, (table, name)


def test_an_empty_run_exports_headers_only(tmp_path: Path) -> None:
    frame = steps_frame([])
    assert list(frame.columns) == [c.name for c in EXPORT_TABLES["steps"]] and frame.empty


# -- refusals: one line, nothing created ------------------------------------------------


def run_cli(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        cli.main(arguments)
    return int(ended.value.code or 0), capsys.readouterr().err


def test_parquet_without_pyarrow_is_refused_before_a_folder_is_made(
    export: Export,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    out = tmp_path / "parquet"
    code, err = run_cli(
        ["export", export.run_id, "--format", "parquet", "--out", str(out), "--data",
         str(export.data)],
        capsys,
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--format: Parquet needs pyarrow" in err and "labctl[parquet]" in err
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_with_pyarrow_holds_the_same_tables(export: Export, tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "parquet"
    done = labctl(
        "export", export.run_id, "--format", "parquet", "--out", str(out), "--data",
        str(export.data),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for table in TABLES:
        frame = pd.read_parquet(out / f"{export.run_id}_{table}.parquet")
        assert list(frame.columns) == export.header(table)


@pytest.mark.parametrize("where", ["missing/parent/out", "a-file/out", "a-file"])
def test_an_out_that_cannot_be_made_is_one_line(
    export: Export, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    out = tmp_path / where
    code, err = run_cli(
        ["export", export.run_id, "--out", str(out), "--data", str(export.data)], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"labctl: error: {out}: --out: ")
    assert not (tmp_path / "missing").exists()
    assert (tmp_path / "a-file").read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_out_in_an_unwritable_directory_is_one_line(
    export: Export, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = run_cli(
        ["export", export.run_id, "--out", str(locked / "out"), "--data", str(export.data)],
        capsys,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not writable" in err and not (locked / "out").exists()


def test_an_unknown_run_creates_no_folder(
    export: Export, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, err = run_cli(["export", "nope", "--out", str(out), "--data", str(export.data)], capsys)
    assert code == 2 and "no such run" in err and not out.exists()
