"""The CLI tells the truth: no silent surprises (issue 12, item 5).

Conflicting options are refused, read commands never create a store, a run
whose process is gone is shown as killed, EOF at a prompt is the operator's
abort, a run whose bench never opened says so, and every path the user names
is checked with one line.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.clock import ScaledClock
from labctl.store import RunStore
from sim_instruments.bench import VirtualBench
from sim_instruments.serve import BenchServer
from tests.cli import fast_contrast_curve, labctl
from tests.protocols.conftest import BASELINE


def _one_line_error(result: subprocess.CompletedProcess[str], *, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ("runs",),
        ("show", "nope"),
        ("report", "nope"),
        ("export", "nope", "--out", "EXPORT"),
        ("compare", "a", "b"),
        ("queue", "list"),
        ("queue", "cancel", "1"),
        ("queue", "retry", "1"),
        ("queue", "remove", "1"),
    ],
)
def test_read_commands_never_create_a_store(tmp_path: Path, command: tuple[str, ...]) -> None:
    data = tmp_path / "newdir"
    arguments = [str(tmp_path / "out") if part == "EXPORT" else part for part in command]
    line = _one_line_error(labctl(*arguments, "--data", str(data)))
    assert "--data" in line and "no such directory" in line
    assert not data.exists()
    # An existing directory without a store is not given one either.
    data.mkdir()
    line = _one_line_error(labctl(*arguments, "--data", str(data)))
    assert "no run store" in line
    assert list(data.iterdir()) == []


def test_sim_and_station_together_are_refused_before_anything_is_made(tmp_path: Path) -> None:
    station = tmp_path / "station.toml"
    station.write_text('[roles.spin_coater]\ndriver = "intras_sck300p"\nresource = "x"\n')
    data = tmp_path / "data"
    for verb in (("run",), ("queue", "add")):
        result = labctl(
            *verb,
            "contrast-curve",
            "--sim",
            "--station",
            str(station),
            "--formulation",
            str(BASELINE),
            "--data",
            str(data),
        )
        assert "--sim --station" in _one_line_error(result)
    assert not data.exists()


@pytest.mark.parametrize(
    "text", ["", 'protocol = "contrast-curve"\n[parameters]\n', "notes = 'x'\n"]
)
def test_a_recipe_that_sets_nothing_is_refused(tmp_path: Path, text: str) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text)
    result = labctl(*fast_contrast_curve(tmp_path / "data"), "--recipe", str(recipe))
    line = _one_line_error(result)
    assert str(recipe) in line and "sets no parameter" in line
    assert not (tmp_path / "data").exists()


def test_a_run_whose_process_is_gone_is_shown_killed(tmp_path: Path) -> None:
    assert labctl(*fast_contrast_curve(tmp_path)).returncode == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    # As a run looks after its process was killed with SIGKILL mid-step.
    with sqlite3.connect(tmp_path / "labctl.sqlite") as db:
        db.execute("UPDATE runs SET status='running', reason=NULL, pid=?", (gone.pid,))
    (run_id,) = [r["run_id"] for r in RunStore(tmp_path).runs()]
    listing = labctl("runs", "--data", str(tmp_path))
    assert listing.returncode == 0, listing.stderr
    assert "killed" in listing.stdout and "running" not in listing.stdout
    assert f"pid {gone.pid}" in listing.stdout
    shown = labctl("show", run_id, "--data", str(tmp_path))
    assert "status     killed" in shown.stdout
    # Only what is shown: the record waits for a process that can make the bench safe.
    assert RunStore(tmp_path).run(run_id)["status"] == "running"


def test_end_of_input_at_an_attended_prompt_is_the_operators_abort(tmp_path: Path) -> None:
    bench = VirtualBench(seed=2, clock=ScaledClock(200.0))
    server = BenchServer(bench, tmp_path / "served")
    server.start()
    try:
        station = server.write_station()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "labctl.cli",
                "run",
                "claim14",
                "--station",
                str(station),
                "--formulation",
                str(BASELINE),
                "--data",
                str(tmp_path / "data"),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    store = RunStore(tmp_path / "data", create=False)
    (run,) = store.runs()
    assert run["status"] == "aborted"
    assert "input closed at the prompt" in run["reason"]
    assert "internal error" not in run["reason"]
    assert "EOFError" not in result.stdout + result.stderr
    # Nobody confirmed the action: whether it was done is unknown, so the
    # wafer is quarantined rather than presumed untouched.
    (step,) = store.steps(run["run_id"])
    assert step["status"] == "interrupted"
    assert store.wafers(run["run_id"])["W01"]["state"] == "quarantined"


def test_a_run_whose_bench_never_opened_is_recorded_failed(tmp_path: Path) -> None:
    station = tmp_path / "station.toml"
    roles = {
        "spin_coater": "intras_sck300p",
        "hotplate": "torrey_pines_sc",
        "exposure_source": "thorlabs_dc2200",
        "exposure_shutter": "thorlabs_sc10",
        "exposure_meter": "thorlabs_pm100d",
        "exposure_stage": "newport_esp300",
        "ellipsometer": "woollam_completeease",
    }
    # Every role on a serial port that does not exist (unplugged, a wrong name).
    station.write_text(
        "\n".join(
            f'[roles.{role}]\ndriver = "{driver}"\nresource = "{tmp_path}/no-such-port-{role}"\n'
            'transport = "serial"'
            for role, driver in roles.items()
        )
        + '\n[roles.exposure_meter.settings]\naperture_area = "0.709 cm**2"\n'
    )
    data = tmp_path / "data"
    result = labctl(
        "run",
        "spin-curve",
        "--station",
        str(station),
        "--formulation",
        str(BASELINE),
        "--data",
        str(data),
        "--set",
        "speeds=1000 rpm",
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    store = RunStore(data, create=False)
    (run,) = store.runs()
    assert run["status"] == "failed"
    assert run["reason"].startswith("never started, nothing moved")
    assert store.steps(run["run_id"]) == []


@pytest.mark.parametrize("where", ["missing/report.html", "a-file/report.html", "."])
def test_report_out_into_a_place_that_cannot_hold_it_is_one_line(
    tmp_path: Path, where: str
) -> None:
    data = tmp_path / "data"
    assert labctl(*fast_contrast_curve(data)).returncode == 0
    (tmp_path / "a-file").write_text("x")
    run_id = RunStore(data).runs()[0]["run_id"]
    result = labctl("report", run_id, "--data", str(data), "--out", str(tmp_path / where))
    line = _one_line_error(result)
    assert "--out" in line


def test_a_current_above_the_led_heads_limit_stops_the_run_before_a_wafer(
    tmp_path: Path,
) -> None:
    """2 A passes the station file's range (the DC2200 drives 10 A) but not this head's 1 A."""
    bench = VirtualBench(seed=2, clock=ScaledClock(200.0))
    server = BenchServer(bench, tmp_path / "served")
    server.start()
    try:
        station = server.write_station()
        station.write_text(
            station.read_text().replace('led_current = "0.5 A"', 'led_current = "2 A"')
        )
        result = labctl(
            "run",
            "claim14",
            "--station",
            str(station),
            "--unattended",
            "--formulation",
            str(BASELINE),
            "--data",
            str(tmp_path / "data"),
        )
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "exposure.led_current" in result.stdout + result.stderr
    store = RunStore(tmp_path / "data", create=False)
    (run,) = store.runs()
    assert run["status"] == "failed"
    assert "above what the LED head allows (1 A" in run["reason"]
    assert store.steps(run["run_id"]) == []  # no wafer made, coated or moved
    assert bench.wafers == {}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One fast simulated run, spun at "100 Hz": (data directory, run id)."""
    data = tmp_path_factory.mktemp("finished")
    result = labctl(*fast_contrast_curve(data), "--set", "coat_speed=100 Hz")
    assert result.returncode == 0, result.stderr
    return data, RunStore(data).runs()[0]["run_id"]


def test_show_prints_the_parameters_as_recorded(finished: tuple[Path, str]) -> None:
    data, run_id = finished
    shown = labctl("show", run_id, "--data", str(data))
    assert shown.returncode == 0, shown.stderr
    (line,) = [x for x in shown.stdout.splitlines() if x.startswith("parameters ")]
    assert "coat_speed=6000 rpm" in line  # 100 turns a second, not pint's 955 rpm
    assert "seed       0" in shown.stdout


def test_resume_is_refused_when_the_station_does_not_match_the_run(
    finished: tuple[Path, str], tmp_path: Path
) -> None:
    data, run_id = finished
    station = tmp_path / "station.toml"
    station.write_text((Path(__file__).parents[2] / "examples/stations/bench.toml").read_text())
    line = _one_line_error(labctl("resume", run_id, "--data", str(data), "--station", str(station)))
    assert "virtual bench" in line and "without --station" in line
    copy = tmp_path / "copy"
    copy.mkdir()
    with (
        sqlite3.connect(data / "labctl.sqlite") as source,
        sqlite3.connect(copy / "labctl.sqlite") as target,
    ):
        source.backup(target)
    with sqlite3.connect(copy / "labctl.sqlite") as db:  # as if it had run on a real bench
        db.execute("UPDATE runs SET simulated=0, status='killed'")
    line = _one_line_error(labctl("resume", run_id, "--data", str(copy)))
    assert "needs --station FILE" in line


@pytest.mark.parametrize("seed", ["99999999999999999999999", "٣", "-1", "1" * 120_000])
def test_a_seed_is_an_ascii_whole_number_sqlite_can_keep(tmp_path: Path, seed: str) -> None:
    for verb in (("run",), ("queue", "add")):
        result = labctl(*verb, *fast_contrast_curve(tmp_path / "data")[1:], "--seed", seed)
        line = _one_line_error(result)
        assert "--seed" in line and len(line) < 500
    assert not (tmp_path / "data").exists()


def test_an_empty_operator_is_refused(tmp_path: Path) -> None:
    line = _one_line_error(labctl(*fast_contrast_curve(tmp_path / "d"), "--operator", ""))
    assert "--operator" in line and "empty" in line


def test_queue_run_needs_a_queue_and_a_notifier_that_exists(
    finished: tuple[Path, str], tmp_path: Path
) -> None:
    line = _one_line_error(labctl("queue", "run", "--data", str(tmp_path / "typo")))
    assert "no such directory" in line
    assert not (tmp_path / "typo").exists()
    data, _ = finished
    result = labctl("queue", "run", "--data", str(data), "--notify", str(tmp_path / "nope.sh"))
    assert "--notify" in _one_line_error(result)


def test_a_queue_entry_whose_runner_died_is_not_shown_running(tmp_path: Path) -> None:
    assert labctl("queue", "add", *fast_contrast_curve(tmp_path)[1:]).returncode == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with sqlite3.connect(tmp_path / "labctl.sqlite") as db:
        db.execute("UPDATE queue SET status='running', pid=?", (gone.pid,))
    listing = labctl("queue", "list", "--data", str(tmp_path))
    assert listing.returncode == 0, listing.stderr
    assert "interrupted" in listing.stdout and "running" not in listing.stdout
    assert f"pid {gone.pid}" in listing.stdout


def test_check_asks_the_wafer_handler_too(tmp_path: Path) -> None:
    server = BenchServer(VirtualBench(seed=1, clock=ScaledClock(200.0)), tmp_path / "served")
    server.start()
    try:
        station = server.write_station()
        good = labctl("check", "--station", str(station))
        assert good.returncode == 0, good.stderr
        assert "token accepted" in good.stdout
        wrong = tmp_path / "wrong.toml"
        text = station.read_text()
        wrong.write_text(
            "\n".join(
                'token = "not-the-token"' if line.startswith("token =") else line
                for line in text.splitlines()
            )
        )
        bad = labctl("check", "--station", str(wrong))
        assert bad.returncode == 1
        assert "handler.token" in bad.stderr and "refused the token" in bad.stderr
    finally:
        server.stop()
