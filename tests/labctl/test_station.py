"""Station files: validation with one-line errors, and `labctl check` end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labctl.errors import StationFileError
from labctl.station import ROLES, Station, load_station

GOOD = Path(__file__).parents[2] / "sim_instruments" / "sim_station.toml"


def run_labctl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def write_station(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def good_text_with(old: str, new: str) -> str:
    text = GOOD.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


BAD_STATIONS = {
    "unknown driver": (
        ('driver = "torrey_pines_sc"', 'driver = "acme_hotplate"'),
        "roles.hotplate.driver: unknown driver 'acme_hotplate'",
    ),
    "missing resource": (
        ('resource = "ASRL2::INSTR"\n', ""),
        "roles.hotplate.resource: missing",
    ),
    "wrong type": (
        ('resource = "ASRL2::INSTR"', "resource = 2"),
        "roles.hotplate.resource: must be a non-empty string, got 2",
    ),
    "unknown role": (
        ("[roles.hotplate]", "[roles.oven]"),
        "roles.oven: unknown role",
    ),
    "bad link value": (
        (
            'backend = "bench.yaml@sim"\n\n[roles.exposure_source]',
            'backend = "bench.yaml@sim"\n[roles.hotplate.link]\nbaud_rate = 1234\n\n'
            "[roles.exposure_source]",
        ),
        "roles.hotplate.link.baud_rate: 1234 is not one of",
    ),
    "bad timeout unit": (
        (
            'backend = "bench.yaml@sim"\n\n[roles.exposure_source]',
            'backend = "bench.yaml@sim"\n[roles.hotplate.link]\ntimeout = "3 mm"\n\n'
            "[roles.exposure_source]",
        ),
        "roles.hotplate.link.timeout: '3 mm' is not a time",
    ),
    "bad transport": (
        ('resource = "ASRL2::INSTR"', 'resource = "ASRL2::INSTR"\ntransport = "carrier pigeon"'),
        "roles.hotplate.transport: 'carrier pigeon' is not one of 'visa', 'serial', 'bench'",
    ),
}


@pytest.mark.parametrize("case", BAD_STATIONS)
def test_bad_station_file_names_file_and_field(case: str, tmp_path: Path) -> None:
    (old, new), expected = BAD_STATIONS[case]
    path = write_station(tmp_path, good_text_with(old, new))
    with pytest.raises(StationFileError) as info:
        load_station(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_missing_role_and_syntax_and_encoding_errors(tmp_path: Path) -> None:
    text = GOOD.read_text(encoding="utf-8")
    start = text.index("[roles.ellipsometer]")
    end = text.index("[exposure]")
    path = write_station(tmp_path, text[:start] + text[end:])
    with pytest.raises(StationFileError, match=r"roles\.ellipsometer: missing"):
        load_station(path)
    path = write_station(tmp_path, "[roles\n")
    with pytest.raises(StationFileError, match="TOML syntax"):
        load_station(path)
    path.write_bytes(b'[station]\nname = "\xff"\n')
    with pytest.raises(StationFileError, match="not UTF-8"):
        load_station(path)
    with pytest.raises(StationFileError, match="no such file"):
        load_station(tmp_path / "absent.toml")


def test_loading_does_no_io_and_connect_reaches_every_role(sim_definitions: Path) -> None:
    station = Station.from_file(sim_definitions / "sim_station.toml")
    assert list(station.instruments) == list(ROLES)
    assert not any(d.transport.is_open for d in station.instruments.values())
    results = station.connect()
    station.close()
    assert [r.role for r in results] == list(ROLES)
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]


@pytest.mark.parametrize("case", ["unknown driver", "missing resource", "wrong type"])
def test_cli_bad_station_is_one_line_exit_2_no_traceback(case: str, tmp_path: Path) -> None:
    (old, new), expected = BAD_STATIONS[case]
    path = write_station(tmp_path, good_text_with(old, new))
    result = run_labctl("check", "--station", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_cli_check_sim_checks_the_bench_that_run_sim_drives() -> None:
    """The physics bench (its simulators over bench links), not the pyvisa-sim stand-ins."""
    result = run_labctl("check", "--sim")
    assert result.returncode == 0, result.stderr
    for role in ROLES:
        assert f"bench {role}" in result.stdout  # each role on a virtual-bench link
    assert "virtual bench" in result.stdout
    assert "MIM-nano 1.0.3" in result.stdout and "P0009084" in result.stdout
    assert "ASRL" not in result.stdout


def test_cli_check_pyvisa_sim_checks_the_definitions() -> None:
    result = run_labctl("check", "--pyvisa-sim")
    assert result.returncode == 0, result.stderr
    for role in ROLES:
        assert role in result.stdout
    assert "ASRL1::INSTR" in result.stdout and "P0009084" in result.stdout


def test_cli_check_names_the_instrument_that_failed_and_why(
    tmp_path: Path, sim_definitions: Path
) -> None:
    text = (sim_definitions / "sim_station.toml").read_text(encoding="utf-8")
    text = text.replace(
        'resource = "ASRL2::INSTR"\nbackend = "bench.yaml@sim"',
        'resource = "/dev/labctl-missing-hotplate"\ntransport = "serial"',
        1,
    )
    path = sim_definitions / "broken.toml"
    path.write_text(text, encoding="utf-8")
    result = run_labctl("check", "--station", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hotplate (torrey_pines_sc)" in result.stderr
    assert "labctl-missing-hotplate" in result.stderr
    assert "spin_coater" in result.stdout  # the others were still checked


def test_cli_usage_errors_exit_2() -> None:
    result = run_labctl("check")
    assert result.returncode == 2 and "exactly one of --sim, --pyvisa-sim or --station" in (
        result.stderr
    )
    for both in (("--sim", "--station", "x.toml"), ("--sim", "--pyvisa-sim")):
        result = run_labctl("check", *both)
        assert result.returncode == 2


def test_cli_resources_lists_the_simulated_bench() -> None:
    result = run_labctl("resources", "--backend", f"{GOOD.with_name('bench.yaml')}@sim")
    assert result.returncode == 0
    assert "ASRL1::INSTR" in result.stdout and "TCPIP0::127.0.0.1::4444::SOCKET" in result.stdout
