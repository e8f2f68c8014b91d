"""``labctl analyze``: the analyses of labctl's runs on CSV files from any bench.

Every command runs as a separate process, the way a user types it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli import fast_contrast_curve, labctl

FIGURES = ("dg", "d100", "onset", "d50", "gamma")
ESTIMATE_KEYS = {"value", "low", "high", "unit", "kind"}
KINDS = {"estimate", "upper_bound", "lower_bound", "undetermined"}

#: A contrast curve from another bench: dose (mJ/cm²) and NRT.
DOSES = [5.0, 8.0, 12.0, 18.0, 24.0, 30.0, 36.0, 45.0, 60.0, 80.0, 110.0, 150.0]
NRT = [0.0, 0.0, 0.0, 0.01, 0.12, 0.35, 0.55, 0.74, 0.88, 0.93, 0.95, 0.95]
BEFORE_NM = 500.0
#: A spin curve: h = 27000 nm * rpm^-0.5, six speeds.
SPEEDS_RPM = [1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0]


def thickness_at(speed_rpm: float) -> float:
    return float(27000.0 * speed_rpm**-0.5)


@dataclass(frozen=True)
class Export:
    """A real simulated contrast run and what ``labctl export`` wrote for it."""

    data: Path
    run_id: str
    measurements: Path
    steps: Path


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    root = tmp_path_factory.mktemp("contrast-run")
    data = root / "data"
    ran = labctl(*fast_contrast_curve(data))
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(labctl("runs", "--json", "--data", str(data)).stdout)[0]["run_id"]
    out = root / "export"
    exported = labctl("export", run_id, "--format", "csv", "--out", str(out), "--data", str(data))
    assert exported.returncode == 0, exported.stderr
    return Export(data, run_id, out / f"{run_id}_measurements.csv", out / f"{run_id}_steps.csv")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def table(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def analyze(*arguments: str) -> subprocess.CompletedProcess[str]:
    return labctl("analyze", *arguments, timeout=60)


def analyze_all(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """``labctl analyze COMMAND`` for each command, all at once (each its own process)."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "labctl.cli", "analyze", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    finished = []
    for command, process in zip(commands, started, strict=True):
        stdout, stderr = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return finished


def parsed_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    parsed = json.loads(result.stdout)  # the whole of stdout is one JSON value
    assert isinstance(parsed, dict)
    return parsed


def analyze_json(*arguments: str) -> dict[str, Any]:
    return parsed_json(analyze(*arguments, "--json"))


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {name: summary[name] for name in FIGURES}


# -- the export of a real run ------------------------------------------------------------


def test_the_export_of_a_run_gives_the_figures_labctl_gave_the_run(export: Export) -> None:
    from labctl.analysis import contrast_from_store
    from labctl.store import RunStore

    as_json, text = analyze_all(
        ["contrast", str(export.measurements), "--json"], ["contrast", str(export.measurements)]
    )
    store = RunStore(export.data)
    try:
        own = contrast_from_store(store, export.run_id)
    finally:
        store.close()
    summary = parsed_json(as_json)
    assert figures(summary) == figures(own.to_json())
    assert summary["fields"] == len(own.doses)
    assert summary["input"] == {
        "file": str(export.measurements),
        "format": "labctl-export",
        "fields": len(own.doses),
        "runs": [export.run_id],
        "wafers": ["W01"],
    }
    # --json: one object, every figure with its unit and its kind.
    for name in FIGURES:
        figure = summary[name]
        assert isinstance(figure, dict) and set(figure) >= ESTIMATE_KEYS, name
        assert figure["kind"] in KINDS
    for key in ("plateau", "fields", "fields_in_transition", "method"):
        assert key in summary
    assert isinstance(summary["warnings"], list)
    assert all(isinstance(w, str) for w in summary["warnings"])
    # Without it: the run's own headline, then its warnings.
    assert text.returncode == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert lines[0] == own.headline()
    assert [line for line in lines if line.startswith("warning: ")] == [
        f"warning: {w}" for w in own.warnings
    ]


def test_a_contrast_export_has_no_spin_speeds_but_its_steps_csv_has(
    export: Export, tmp_path: Path
) -> None:
    # Beside its steps CSV: the coat speed is found there - one wafer, one speed.
    beside = analyze("spin-curve", str(export.measurements))
    assert beside.returncode == 2
    assert beside.stderr.strip().endswith(
        "1 distinct speed(s) (3000 rpm): a spin curve needs at least 3 "
        "(allowed: 3 or more coat speeds)"
    )
    # Alone, it names what is missing and how to give it.
    alone = write(tmp_path / "alone.csv", export.measurements.read_text())
    refused = analyze("spin-curve", str(alone))
    assert_one_line_error(refused, alone, "--steps FILE")
    assert "no coat speed for wafer W01" in refused.stderr
    given = analyze("spin-curve", str(alone), "--steps", str(export.steps))
    assert given.returncode == 2 and "1 distinct speed(s)" in given.stderr


def spin_export(export: Export, path: Path, label: str) -> tuple[Path, list[str]]:
    """A spin-curve export in the real export's columns: 5 sites per wafer, one speed each."""
    with export.measurements.open(newline="") as handle:
        header = next(csv.reader(handle))
    rows, wafers = [], []
    for index, speed in enumerate(SPEEDS_RPM):
        wafer = f"W01-{index + 1:02d}"
        wafers.append(wafer)
        for site, offset in enumerate((-2.0, -1.0, 0.0, 1.0, 2.0)):
            row = dict.fromkeys(header, "")
            row.update(
                run_id="run-s",
                seq="9",
                wafer_id=wafer,
                label=label.format(speed=speed),
                site=f"P{site + 1}",
                x_mm="0.0",
                y_mm="0.0",
                thickness_nm=f"{thickness_at(speed) + offset:.2f}",
            )
            rows.append([row[name] for name in header])
    return table(path, header, rows), wafers


def test_a_spin_curve_export_takes_each_wafer_s_speed_from_its_label_or_coat_step(
    export: Export, tmp_path: Path
) -> None:
    labelled_dir, plain_dir = tmp_path / "labelled", tmp_path / "plain"
    labelled_dir.mkdir()
    plain_dir.mkdir()
    # A spin-curve run labels its measurements with the speed...
    labelled, wafers = spin_export(
        export, labelled_dir / "run-s_measurements.csv", "spin {speed:g} rpm"
    )
    # ... any other run does not: the coat steps in the steps CSV beside it give it.
    plain, _ = spin_export(export, plain_dir / "run-s_measurements.csv", "before")
    with export.steps.open(newline="") as handle:
        reader = csv.DictReader(handle)
        coat = next(row for row in reader if row["name"] == "coat")
        header = list(reader.fieldnames or [])
    parameters = json.loads(coat["parameters"])  # JSON, quantities as {value, unit}
    assert parameters["speed"] == {"value": 3000, "unit": "rpm"}
    steps = []
    for wafer, speed in zip(wafers, SPEEDS_RPM, strict=True):
        row = {**coat, "run_id": "run-s", "wafer_id": wafer}
        row["parameters"] = json.dumps({**parameters, "speed": {"value": speed, "unit": "rpm"}})
        steps.append([row[name] for name in header])
    table(plain_dir / "run-s_steps.csv", header, steps)

    by_label, by_step = (
        parsed_json(result)
        for result in analyze_all(
            ["spin-curve", str(labelled), "--json"], ["spin-curve", str(plain), "--json"]
        )
    )
    for summary in (by_label, by_step):
        assert summary["exponent"]["value"] == pytest.approx(0.5, abs=1e-3)
        assert summary["constant"]["value"] == pytest.approx(27000, rel=1e-3)
        assert summary["points"] == [
            {"speed_rpm": s, "thickness_nm": pytest.approx(thickness_at(s), abs=0.01), "wafer": w}
            for s, w in zip(SPEEDS_RPM, wafers, strict=True)
        ]
    assert by_label["input"]["speeds_from"] == "labels"
    assert by_step["input"]["speeds_from"] == str(plain_dir / "run-s_steps.csv")


# -- plain tables ------------------------------------------------------------------------


def test_dose_and_nrt_or_thicknesses_give_one_answer(tmp_path: Path) -> None:
    plain = table(tmp_path / "a.csv", ["dose_mJ_cm2", "nrt"], list(zip(DOSES, NRT, strict=True)))
    thicknesses = table(
        tmp_path / "b.csv",
        ["dose_mJ_cm2", "thickness_before_nm", "thickness_after_um"],
        [[d, BEFORE_NM, n * BEFORE_NM / 1000] for d, n in zip(DOSES, NRT, strict=True)],
    )
    reference, summary = (
        parsed_json(result)
        for result in analyze_all(
            ["contrast", str(plain), "--json"], ["contrast", str(thicknesses), "--json"]
        )
    )
    assert reference["input"]["format"] == "dose-nrt"
    assert reference["dg"]["kind"] == "estimate"
    assert 20 < reference["dg"]["value"] < 30
    assert summary["input"]["format"] == "dose-thickness"
    for name in FIGURES:
        assert summary[name]["kind"] == reference[name]["kind"]
        assert summary[name]["value"] == pytest.approx(reference[name]["value"])


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("dose_mJ_cm2,nrt", "{d},{n}"),
        ("dose [mJ/cm2],nrt", "{d},{n}"),
        ("dose (mJ/cm**2),nrt", "{d},{n}"),
        ("Dose [mJ/cm²],NRT [1]", "{d},{n}"),
        ("dose / mJ cm-2,nrt", "{d},{n}"),
        ("dose_mJ_per_cm2,nrt", "{d},{n}"),
        ("dose [J/m2],nrt [%]", "{d10},{n100}"),  # 1 mJ/cm² = 10 J/m²
        ("dose_mj_cm2,nrt_percent", "{d},{n100}"),
        ("dose_mJ_cm2,thickness_before_nm,thickness_after_nm", "{d},500,{a}"),
        ("dose_mJ_cm2;thickness_before [um];thickness_after [nm]", "{d};0,5;{a}"),
    ],
)
def test_the_unit_in_the_header_is_converted(tmp_path: Path, header: str, row: str) -> None:
    from labctl.analysis_io import read_contrast_csv

    rows = [
        row.format(d=d, d10=d * 10, n=n, n100=n * 100, a=n * BEFORE_NM)
        for d, n in zip(DOSES, NRT, strict=True)
    ]
    # A spreadsheet's byte-order mark and a comment preamble are fine too.
    path = write(tmp_path / "c.csv", "\ufeff# from bench 2\n" + "\n".join([header, *rows]))
    data = read_contrast_csv(path)
    assert data.doses == pytest.approx(DOSES)
    assert data.nrt == pytest.approx(NRT)


def test_plain_text_prints_the_headline_then_each_warning_on_its_own_line(tmp_path: Path) -> None:
    few = table(tmp_path / "few.csv", ["dose_mJ_cm2", "nrt"], [[10, 0.0], [100, 0.9]])
    result = analyze("contrast", str(few))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "contrast curve: no figures from 2 field(s)"
    assert lines[1].startswith(f"input: 2 fields from {few}")
    assert lines[2:] == ["warning: 2 field(s) make no contrast curve (at least 3, better 16)"]


def test_a_speed_in_hz_is_sixty_rpm_per_hz(tmp_path: Path) -> None:
    thickness = [thickness_at(s) for s in SPEEDS_RPM]
    hz = table(
        tmp_path / "hz.csv",
        ["speed_hz", "thickness_um"],
        [[s / 60, t / 1000] for s, t in zip(SPEEDS_RPM, thickness, strict=True)],
    )
    # A column that says rpm but holds Hz is fitted, and flagged.
    wrong = table(
        tmp_path / "wrong.csv",
        ["speed_rpm", "thickness_nm"],
        [[s / 60, t] for s, t in zip(SPEEDS_RPM, thickness, strict=True)],
    )
    as_json, flagged = analyze_all(["spin-curve", str(hz), "--json"], ["spin-curve", str(wrong)])
    by_hz = parsed_json(as_json)
    assert [p["speed_rpm"] for p in by_hz["points"]] == pytest.approx(SPEEDS_RPM)
    assert [p["thickness_nm"] for p in by_hz["points"]] == pytest.approx(thickness)
    for name in ("exponent", "constant"):
        assert set(by_hz[name]) >= {"value", "low", "high", "unit"}
    assert by_hz["exponent"]["value"] == pytest.approx(0.5)
    assert by_hz["constant"]["value"] == pytest.approx(27000)  # the same film, in rpm
    assert by_hz["constant"]["unit"] == "nm"
    assert by_hz["warnings"] == []
    assert flagged.returncode == 0, flagged.stderr
    warning = flagged.stdout.splitlines()[2]
    assert warning.startswith("warning: speeds 16.7-100 rpm lie outside")
    assert warning.endswith("(1 Hz = 60 rpm)")


def test_speed_in_rpm_counts_turns() -> None:
    from labctl.analysis_io import speed_in_rpm

    assert speed_in_rpm(1.0, "Hz") == pytest.approx(60.0)
    assert speed_in_rpm(1.0, "1/s") == pytest.approx(60.0)
    assert speed_in_rpm(3000.0, "rpm") == pytest.approx(3000.0)
    assert speed_in_rpm(1.0, "rps") == pytest.approx(60.0)
    with pytest.raises(ValueError):
        speed_in_rpm(1.0, "mm")


def test_importing_the_module_loads_neither_pint_nor_numpy() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, labctl.analysis_io; "
            "print(sorted(m for m in ('pint', 'numpy', 'scipy', 'pandas') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


# -- files that cannot be used: one line, exit 2 ----------------------------------------


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], file: Path, *expected: str
) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"labctl: error: {file}: "), lines[0]
    assert lines[0].endswith(")"), lines[0]  # ... (what is allowed)
    for text in expected:
        assert text in lines[0], lines[0]


BAD_CONTRAST = {
    "empty": ("", "empty (allowed: a header line naming dose_<unit>"),
    "comments only": ("# nothing here\n\n", "empty"),
    "no header": ("10,0.1\n20,0.5\n", "no header: line 1 holds numbers"),
    "unknown column": ("dose_mJ_cm2,nrt,operator\n10,0,ann\n", "unknown column 'operator'"),
    "no known column": ("foo,bar\n1,2\n", "unknown column 'foo'"),
    "not a number": (
        "dose_mJ_cm2,nrt\n10,0\n20,abc\n",
        "line 3, column 'nrt': 'abc' is not a number",
    ),
    "empty cell": ("dose_mJ_cm2,nrt\n10,0\n,0.5\n", "line 3, column 'dose_mJ_cm2': empty cell"),
    "negative dose": (
        "dose_mJ_cm2,nrt\n10,0\n-20,0.5\n",
        "line 3, column 'dose_mJ_cm2': -20 is not positive (allowed: a dose > 0)",
    ),
    "zero dose": ("dose_mJ_cm2,nrt\n0,0\n", "line 2, column 'dose_mJ_cm2': 0 is not positive"),
    "NaN dose": (
        "dose_mJ_cm2,nrt\n10,0\nnan,0.5\n",
        "line 3, column 'dose_mJ_cm2': nan is not a finite",
    ),
    "NaN nrt": ("dose_mJ_cm2,nrt\n10,NaN\n", "line 2, column 'nrt': NaN is not a finite number"),
    "infinite dose": ("dose_mJ_cm2,nrt\ninf,0\n", "inf is not a finite number"),
    "negative nrt": ("dose_mJ_cm2,nrt\n10,-0.1\n", "line 2, column 'nrt': -0.1 is negative"),
    "percent as nrt": ("dose_mJ_cm2,nrt\n10,0\n20,50\n", "NRT 50 is more than 2"),
    "zero thickness before": (
        "dose_mJ_cm2,thickness_before_nm,thickness_after_nm\n10,0,0\n",
        "line 2, column 'thickness_before_nm': 0 is not positive (allowed: a thickness > 0)",
    ),
    "negative thickness after": (
        "dose_mJ_cm2,thickness_before_nm,thickness_after_nm\n10,500,-3\n",
        "-3 is negative (allowed: a thickness >= 0)",
    ),
    "electron dose": (
        "dose_uC_cm2,nrt\n10,0\n20,0.5\n",
        "column 'dose_uC_cm2': µC/cm² is an electron dose (charge per area)",
    ),
    "not a dose": ("dose [mJ],nrt\n10,0\n", "column 'dose [mJ]': mJ is not a dose"),
    "unknown unit": ("dose_foo,nrt\n10,0\n", "column 'dose_foo': unknown unit 'foo'"),
    "no unit": ("dose,nrt\n10,0\n", "column 'dose': no unit in the column's name"),
    "thickness not a length": (
        "dose_mJ_cm2,thickness_before_s,thickness_after_nm\n10,500,400\n",
        "s is not a length",
    ),
    "no nrt": ("dose_mJ_cm2\n10\n", "no nrt column"),
    "only one thickness": (
        "dose_mJ_cm2,thickness_after_nm\n10,400\n",
        "no thickness_before column",
    ),
    "nrt and thicknesses": (
        "dose_mJ_cm2,nrt,thickness_before_nm,thickness_after_nm\n10,1,500,500\n",
        "both nrt and thickness columns",
    ),
    "two dose columns": ("dose_mJ_cm2,dose [J/m2],nrt\n10,100,0\n", "both give the dose"),
    "header only": ("dose_mJ_cm2,nrt\n", "a header but no rows"),
    "too many cells": ("dose_mJ_cm2,nrt\n10,0,3\n", "line 2: 3 cells, but the header names 2"),
    "a spin-curve table": ("speed_rpm,thickness_nm\n1000,700\n", "use labctl analyze spin-curve"),
}

BAD_SPIN = {
    "zero speed": (
        "speed_rpm,thickness_nm\n0,700\n",
        "line 2, column 'speed_rpm': 0 is not positive",
    ),
    "negative thickness": (
        "speed_rpm,thickness_nm\n1000,-700\n",
        "line 2, column 'thickness_nm': -700 is not positive",
    ),
    "NaN speed": ("speed_rpm,thickness_nm\nnan,700\n", "nan is not a finite number"),
    "not a speed": ("speed_mm,thickness_nm\n1,700\n", "column 'speed_mm': mm is not a speed"),
    "two speeds": (
        "speed_rpm,thickness_nm\n1000,700\n3000,400\n1000,705\n",
        "2 distinct speed(s) (1000, 3000 rpm): a spin curve needs at least 3",
    ),
    "no thickness": ("speed_rpm\n1000\n", "no thickness column"),
    "a contrast table": ("dose_mJ_cm2,nrt\n10,0\n", "use labctl analyze contrast"),
}


BAD = {
    **{case: ("contrast", text, expected) for case, (text, expected) in BAD_CONTRAST.items()},
    **{case: ("spin-curve", text, expected) for case, (text, expected) in BAD_SPIN.items()},
}


@pytest.fixture(scope="module")
def refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every bad file of BAD through its command, all processes at once (--json for spin)."""
    root = tmp_path_factory.mktemp("bad")
    paths = {}
    for number, (case, (_, text, _)) in enumerate(sorted(BAD.items())):
        paths[case] = write(root / f"bad{number}.csv", text)
    commands = [
        [BAD[case][0], str(path), *(["--json"] if BAD[case][0] == "spin-curve" else [])]
        for case, path in paths.items()
    ]
    results = analyze_all(*commands)
    return {case: (paths[case], result) for case, result in zip(paths, results, strict=True)}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_file_that_cannot_be_used_is_one_line_and_exit_2(
    case: str, refused: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]
) -> None:
    path, result = refused[case]
    assert_one_line_error(result, path, BAD[case][2])


def test_no_file_a_directory_or_binary_data_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    assert_one_line_error(analyze("contrast", str(missing)), missing, "no such file")
    assert_one_line_error(analyze("spin-curve", str(tmp_path)), tmp_path, "a directory, not a file")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    assert_one_line_error(analyze("contrast", str(binary), "--json"), binary, "not UTF-8 text")


def test_the_other_tables_of_an_export_are_named(export: Export) -> None:
    assert_one_line_error(
        analyze("contrast", str(export.steps)), export.steps, "this is a labctl export steps CSV"
    )


def test_a_spin_curve_export_is_no_contrast_curve(export: Export, tmp_path: Path) -> None:
    path, _ = spin_export(export, tmp_path / "spin.csv", "spin {speed:g} rpm")
    assert_one_line_error(
        analyze("contrast", str(path)), path, "no 'before'/'after' pairs", "analyze spin-curve"
    )
