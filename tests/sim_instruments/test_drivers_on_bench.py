"""Every driver's behaviour on the virtual bench: in process, and served over real links.

"served" is what ``labctl sim serve`` runs: the serial instruments behind
pseudo-terminals (pyserial), the others on loopback TCP sockets (pyvisa-py),
on a real-time clock sped up 50 times.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.exposure import ExposureTool
from labctl.clock import ScaledClock
from labctl.errors import InstrumentError, LinkLost
from labctl.station import Station
from labctl.units import Q_
from sim_instruments.bench import VirtualBench
from sim_instruments.serve import BenchServer, handler_of

SPEED = 50.0


@pytest.fixture(params=["in-process", "served"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[VirtualBench, Any]]:
    if request.param == "in-process":
        bench = VirtualBench(seed=3)
        station = bench.station()
        server = None
    else:
        bench = VirtualBench(seed=3, clock=ScaledClock(SPEED))
        server = BenchServer(bench, tmp_path / "served")
        server.start()
        station = Station.from_file(server.write_station(), clock=ScaledClock(SPEED))
    results = station.connect()
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    yield bench, station
    station.close()
    if server is not None:
        server.stop()
    else:
        bench.close()


def test_spin_coater_reaches_and_holds_speed_then_stops(rig: tuple[VirtualBench, Any]) -> None:
    bench, station = rig
    spinner = station["spin_coater"]
    spinner.spin(Q_(3000, "rpm"))
    spinner.wait(Q_(3, "s"))
    assert spinner.speed.m_as("rpm") == pytest.approx(3000, rel=0.01)
    spinner.stop()
    report = bench.safe_state_report()["spin_coater"]
    assert not report["motor_on"] and report["speed_rpm"] < 20


def test_hotplate_heats_to_its_setpoint(rig: tuple[VirtualBench, Any]) -> None:
    _, station = rig
    plate = station["hotplate"]
    plate.heat_to(Q_(90, "degC"))
    plate.wait(Q_(45, "s"))
    assert plate.plate_temperature.m_as("degC") == pytest.approx(90, abs=0.5)
    assert plate.setpoint == Q_(90.0, "degC")
    plate.standby()
    assert plate.idle


def test_exposure_tool_calibrates_and_delivers_the_dose(rig: tuple[VirtualBench, Any]) -> None:
    bench, station = rig
    bench.new_wafer("W")
    bench.load("W", "spin_coater")
    bench.dispense_resist()
    bench.unload("spin_coater")
    tool = ExposureTool.from_station(station)
    calibration = tool.calibrate()
    assert calibration.irradiance.m_as("mW/cm**2") == pytest.approx(10.0, rel=0.01)
    bench.load("W", "exposure_stage")
    record = tool.expose(Q_(20, "mJ/cm**2"), Q_(10, "mm"), Q_(-5, "mm"))
    tool.safe_state()
    truth = bench.true_exposures("W")
    assert len(truth) == 1
    assert (truth[0]["x"], truth[0]["y"]) == (Q_(10, "mm"), Q_(-5, "mm"))
    assert record.dose_delivered.m_as("mJ/cm**2") == pytest.approx(
        truth[0]["dose"].m_as("mJ/cm**2"), rel=0.01
    )
    report = bench.safe_state_report()
    assert not report["exposure_shutter"]["open"] and not report["exposure_source"]["output"]


def test_ellipsometer_measures_the_true_film(rig: tuple[VirtualBench, Any]) -> None:
    bench, station = rig
    bench.new_wafer("W")
    bench.load("W", "spin_coater")
    bench.dispense_resist()
    spinner = station["spin_coater"]
    spinner.spin(Q_(3000, "rpm"))
    spinner.wait(Q_(30, "s"))
    spinner.stop()
    bench.unload("spin_coater")
    bench.load("W", "ellipsometer")
    ellipsometer = station["ellipsometer"]
    ellipsometer.move_to(Q_(5, "mm"), Q_(5, "mm"))
    result = ellipsometer.run_recipe("Resist on Si", "site")
    truth = bench.true_thickness("W", Q_(5, "mm"), Q_(5, "mm"))
    assert result.thickness.m_as("nm") == pytest.approx(truth.m_as("nm"), abs=1.0)
    assert result.cauchy is not None and result.cauchy[0] == pytest.approx(1.57, abs=0.005)


def test_instrument_errors_come_back_as_instrument_errors(rig: tuple[VirtualBench, Any]) -> None:
    _, station = rig
    with pytest.raises(InstrumentError) as info:
        station["spin_coater"].ask("SetRPM,3000")  # motor off: the controller refuses
    assert info.value.code == 4
    with pytest.raises(InstrumentError):
        station["exposure_stage"].send("3PA1")  # no third axis


def test_served_lost_link_reconnects_to_a_new_pty(tmp_path: Path) -> None:
    bench = VirtualBench(seed=3, clock=ScaledClock(SPEED))
    server = BenchServer(bench, tmp_path / "served")
    server.start()
    try:
        station = Station.from_file(server.write_station(), clock=ScaledClock(SPEED))
        station.connect()
        shutter = station["exposure_shutter"]
        old_target = (tmp_path / "served" / "exposure_shutter").resolve()
        bench.inject("exposure_shutter", "link_lost")
        with pytest.raises(LinkLost):
            for _ in range(5):
                _ = shutter.closed
        deadline = time.monotonic() + 5
        while (tmp_path / "served" / "exposure_shutter").resolve() == old_target:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        shutter.reconnect()
        assert shutter.closed is True
        station.close()
    finally:
        server.stop()


def test_labctl_sim_serve_command_serves_a_checkable_bench(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labctl.cli",
            "sim",
            "serve",
            "--dir",
            str(tmp_path),
            "--speed",
            "20",
            "--fault",
            "hotplate:heater_runaway:start=100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = {}
        assert process.stdout is not None
        while "station file" not in lines:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            key, _, value = line.rstrip("\n").partition("  ")
            lines[key.strip()] = value.strip()
        for role in ("exposure_source", "exposure_meter", "ellipsometer"):
            assert lines[role].startswith("TCPIP0::127.0.0.1::")
        check = subprocess.run(
            [sys.executable, "-m", "labctl.cli", "check", "--station", lines["station file"]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stderr
        host, _, port = lines["wafer_handler"].rpartition(":")
        assert host == "127.0.0.1"
        _, token = handler_of(lines["station file"])
        with socket.create_connection((host, int(port)), timeout=5) as handler:
            stream = handler.makefile("rwb")
            for command, reply in [
                (f"AUTH {token}".encode("ascii"), b"OK"),
                (b"NEW W01", b"OK"),
                (b"LOAD W01 hotplate", b"OK"),
                (b"WHERE W01", b"OK hotplate"),
                (b"UNLOAD hotplate", b"OK W01"),
                (b"LOAD W09 hotplate", b"ERR"),
            ]:
                stream.write(command + b"\n")
                stream.flush()
                assert stream.readline().startswith(reply)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
