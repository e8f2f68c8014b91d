"""The virtual bench: determinism, faults, persistence, logs, drivers in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.exposure import ExposureTool
from labctl.errors import (
    GarbledReply,
    HardwareStateError,
    InputError,
    InstrumentError,
    InstrumentTimeout,
    LinkLost,
)
from labctl.units import Q_
from sim_instruments.bench import VirtualBench
from tests.sim_instruments.conftest import bake, coat


def script(bench: VirtualBench) -> list[dict[str, Any]]:
    station = bench.station()
    station.connect()
    coat(bench, station, "W")
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    bench.load("W", "exposure_stage")
    tool.expose(Q_(30, "mJ/cm**2"), Q_(5, "mm"), Q_(0, "mm"))
    tool.safe_state()
    bench.unload("exposure_stage")
    bench.load("W", "ellipsometer")
    station["ellipsometer"].run_recipe("Resist on Si", "x")
    return bench.commands()


def test_the_same_seed_gives_the_same_bytes_on_the_wire() -> None:
    first = script(VirtualBench(seed=11))
    second = script(VirtualBench(seed=11))
    assert first == second
    assert len(first) > 100
    other = script(VirtualBench(seed=12))
    assert [e["reply"] for e in other] != [e["reply"] for e in first]


def test_each_instrument_logs_every_command_it_executed(bench: VirtualBench, station: Any) -> None:
    station["hotplate"].heat_to(Q_(95, "degC"))
    log = bench.commands("hotplate")
    assert [e["command"] for e in log[-2:]] == ["n95.0", "I"]
    assert [e["reply"] for e in log[-2:]] == ["ok\r\n", "ok\r\n"]


def test_a_tool_acts_only_on_the_wafer_it_holds(bench: VirtualBench, station: Any) -> None:
    bench.new_wafer("A")
    bench.new_wafer("B")
    bench.load("A", "spin_coater")
    with pytest.raises(InputError, match="already there"):
        bench.load("B", "spin_coater")
    bench.dispense_resist()
    assert bench.wafers["A"].coated and not bench.wafers["B"].coated
    with pytest.raises(InputError, match="holds no wafer"):
        bench.unload("hotplate")
    with pytest.raises(InputError, match="on spin_coater"):
        bench.load("A", "hotplate")


def test_physical_state_outlives_the_process(tmp_path: Path) -> None:
    first = VirtualBench(data_dir=tmp_path, seed=5)
    station = first.station()
    station.connect()
    coat(first, station, "W1")
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    first.load("W1", "exposure_stage")
    tool.expose(Q_(40, "mJ/cm**2"), Q_(0, "mm"), Q_(0, "mm"))
    station["hotplate"].heat_to(Q_(105, "degC"))
    thickness = first.true_thickness("W1", Q_(0, "mm"), Q_(0, "mm"))
    commands = len(first.commands())
    time_then = first.now()
    # no close(): as if the process were killed here
    second = VirtualBench(data_dir=tmp_path, seed=5)
    wafer = second.wafers["W1"]
    assert wafer.coated and wafer.location == "exposure_stage"
    assert [round(e.dose) for e in wafer.exposures] == [40]
    assert second.true_thickness("W1", Q_(0, "mm"), Q_(0, "mm")).m_as("nm") == pytest.approx(
        thickness.m_as("nm"), abs=0.01
    )
    assert second.now() >= time_then - 1.0
    station2 = second.station()
    station2.connect()
    assert station2["hotplate"].setpoint == Q_(105.0, "degC")
    assert len(second.commands()) > commands  # the old log is kept and appended to


def test_no_reply_is_a_timeout(bench: VirtualBench, station: Any) -> None:
    bench.inject("hotplate", "no_reply")
    with pytest.raises(InstrumentTimeout):
        _ = station["hotplate"].plate_temperature
    assert station["hotplate"].plate_temperature.m_as("degC") == pytest.approx(23, abs=1)


def test_a_late_reply_times_out_and_never_answers_the_next_question(
    bench: VirtualBench, station: Any
) -> None:
    bench.inject("hotplate", "late_reply", delay=1.5)
    plate = station["hotplate"]
    with pytest.raises(InstrumentTimeout):
        _ = plate.plate_temperature
    plate.wait(Q_(2, "s"))  # the late reply arrives meanwhile
    assert plate.ask("V") == "TP061234"  # not the late temperature reading
    assert plate.ask("v") == "HP61 v1.0"
    assert len(plate.transport.discarded) == 1  # the late reply, thrown away


def test_a_garbled_reply_is_garbled(bench: VirtualBench, station: Any) -> None:
    bench.inject("spin_coater", "garbled_reply")
    with pytest.raises(GarbledReply):
        _ = station["spin_coater"].speed
    assert station["spin_coater"].speed == Q_(0, "rpm")


def test_a_lost_link_is_link_lost_until_reconnected(bench: VirtualBench, station: Any) -> None:
    bench.inject("exposure_shutter", "link_lost")
    shutter = station["exposure_shutter"]
    with pytest.raises(LinkLost):
        _ = shutter.closed
    with pytest.raises(LinkLost):
        _ = shutter.closed
    shutter.reconnect()
    assert shutter.closed is True


@pytest.mark.parametrize(
    ("role", "action", "code"),
    [
        ("spin_coater", lambda s: s["spin_coater"].motor_on(), 4),
        ("hotplate", lambda s: s["hotplate"].heat_to(Q_(90, "degC")), "e"),
        ("exposure_source", lambda s: s["exposure_source"].turn_off(), -200),
        (
            "exposure_shutter",
            lambda s: setattr(s["exposure_shutter"], "repeat_count", 5),
            "CMD_ARG_INVALID",
        ),
        ("exposure_meter", lambda s: setattr(s["exposure_meter"], "averaging", 10), -200),
        ("exposure_stage", lambda s: s["exposure_stage"].axis(1).start_move_to(Q_(5, "mm")), 7),
        ("ellipsometer", lambda s: s["ellipsometer"].run_recipe("Resist on Si", "x"), None),
    ],
)
def test_an_injected_instrument_error_is_an_instrument_error(
    bench: VirtualBench, station: Any, role: str, action: Any, code: Any
) -> None:
    bench.inject(role, "instrument_error")
    with pytest.raises(InstrumentError) as info:
        action(station)
    assert info.value.code == code


def test_heater_runaway_shows_on_the_plate_reading(bench: VirtualBench, station: Any) -> None:
    plate = station["hotplate"]
    plate.heat_to(Q_(110, "degC"))
    plate.wait(Q_(120, "s"))
    bench.inject("hotplate", "heater_runaway")
    plate.wait(Q_(60, "s"))
    assert plate.plate_temperature.m_as("degC") > 160
    assert plate.setpoint == Q_(110.0, "degC")


def test_lamp_failure_is_caught_by_the_calibration(bench: VirtualBench, station: Any) -> None:
    bench.inject("exposure_source", "lamp_failure")
    tool = ExposureTool.from_station(station)
    with pytest.raises(HardwareStateError, match="LED"):
        tool.calibrate()
    assert station["exposure_source"].led_current.m_as("A") == pytest.approx(0.5, abs=0.01)


def test_spinner_stall_shows_on_the_speed_reading(bench: VirtualBench, station: Any) -> None:
    spinner = station["spin_coater"]
    spinner.spin(Q_(3000, "rpm"))
    spinner.wait(Q_(5, "s"))
    assert spinner.speed.m_as("rpm") == pytest.approx(3000, abs=10)
    bench.inject("spin_coater", "spinner_stall")
    spinner.wait(Q_(3, "s"))
    assert spinner.speed.m_as("rpm") < 50


def test_faults_are_checked(bench: VirtualBench) -> None:
    with pytest.raises(InputError, match="unknown fault"):
        bench.inject("hotplate", "meteor_strike")
    with pytest.raises(InputError, match="happens on the hotplate"):
        bench.inject("spin_coater", "heater_runaway")
    with pytest.raises(InputError, match="no such instrument"):
        bench.inject("toaster", "no_reply")


def test_probabilistic_faults_are_seeded() -> None:
    def run(seed: int) -> list[float]:
        bench = VirtualBench(seed=seed)
        station = bench.station()
        station.connect()
        bench.inject("hotplate", "no_reply", count=-1, probability=0.3)
        failures = []
        for _ in range(40):
            try:
                _ = station["hotplate"].plate_temperature
            except InstrumentTimeout:
                failures.append(bench.now())
        return failures

    assert run(1) == run(1)
    assert 4 <= len(run(1)) <= 24
    assert run(1) != run(2)


def test_safe_state_is_read_from_the_simulators(bench: VirtualBench, station: Any) -> None:
    station["spin_coater"].spin(Q_(2000, "rpm"))
    station["exposure_source"].turn_on(Q_(0.5, "A"))
    station["hotplate"].heat_to(Q_(120, "degC"))
    report = bench.safe_state_report()
    assert report["spin_coater"]["motor_on"] and report["exposure_source"]["output"]
    station["spin_coater"].safe_state()
    station["exposure_source"].safe_state()
    station["exposure_shutter"].safe_state()
    station["hotplate"].safe_state()
    report = bench.safe_state_report()
    assert not report["spin_coater"]["motor_on"]
    assert not report["exposure_source"]["output"]
    assert not report["exposure_shutter"]["open"]
    assert report["hotplate"]["idle"]


def test_an_hour_of_bench_actions_runs_on_virtual_time(bench: VirtualBench, station: Any) -> None:
    index = 0
    while bench.now() < 3600:
        wafer = f"W{index:03d}"
        coat(bench, station, wafer)
        bake(bench, station, wafer, 100, 60)
        index += 1
    assert index >= 5
    assert all(bench.wafers[f"W{i:03d}"].solvent < 0.06 for i in range(index))


def test_finished_wafers_live_on_disk_not_in_memory(tmp_path: Path) -> None:
    """A bench left running for nights keeps in memory only the wafers in use:
    a coated, exposed wafer back in the cassette is let go once newer wafers are
    touched, and read back from its file - the same wafer - when asked for."""
    bench = VirtualBench(data_dir=tmp_path, seed=5)
    station = bench.station()
    station.connect()
    coat(bench, station, "W1")
    tool = ExposureTool.from_station(station)
    tool.calibrate()
    bench.load("W1", "exposure_stage")
    tool.expose(Q_(40, "mJ/cm**2"), Q_(0, "mm"), Q_(0, "mm"))
    tool.safe_state()
    bench.unload("exposure_stage")
    thickness = bench.true_thickness("W1", Q_(0, "mm"), Q_(0, "mm")).m_as("nm")
    for index in range(2 * bench.wafers.RECENT):
        bench.new_wafer(f"N{index:02d}")
    assert "W1" not in bench.wafers.live()
    assert len(bench.wafers.live()) <= bench.wafers.RECENT + 1
    # Still the bench's wafer: listed, found, and the same film.
    assert "W1" in bench.wafers and "W1" in list(bench.wafers)
    assert len(bench.wafers) == 1 + 2 * bench.wafers.RECENT
    assert [round(e.dose) for e in bench.wafers["W1"].exposures] == [40]
    assert bench.true_thickness("W1", Q_(0, "mm"), Q_(0, "mm")).m_as("nm") == pytest.approx(
        thickness, abs=1e-9
    )
    # A wafer on a tool is never let go, however many others are made.
    bench.load("N00", "hotplate")
    for index in range(2 * bench.wafers.RECENT):
        bench.new_wafer(f"M{index:02d}")
    assert "N00" in bench.wafers.live()
    bench.close()
    # A restarted bench reads only what is on the tools; the rest on demand.
    again = VirtualBench(data_dir=tmp_path, seed=5)
    assert again.wafers.live() == ["N00"]
    assert again.wafers["W1"].coated and again.wafers_made == 1 + 4 * bench.wafers.RECENT
    with pytest.raises(InputError, match="exists"):
        again.new_wafer("W1")  # an id on disk is taken, in memory or not


@pytest.mark.parametrize("kind", ["no_reply", "garbled_reply"])
def test_one_bad_reply_to_the_identity_query_is_retried_at_connect(kind: str) -> None:
    """A silent or garbled reply to *IDN? at connect is the transient fault every
    query is retried for; a second one in a row is the instrument's failure."""
    bench = VirtualBench(seed=3)
    bench.inject("ellipsometer", kind, count=1)
    station = bench.station()
    results = station.connect()
    assert all(r.ok for r in results), [(r.role, r.error) for r in results]
    station.close()

    bench = VirtualBench(seed=3)
    bench.inject("ellipsometer", kind, count=2)
    station = bench.station()
    (failed,) = [r for r in station.connect() if not r.ok]
    assert failed.role == "ellipsometer"
    station.close()
