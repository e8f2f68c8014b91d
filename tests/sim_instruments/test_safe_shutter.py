"""Safe state never fires the SC10 shutter: the toggle race, reproduced on the virtual bench.

``ens`` toggles. A timed single shot that ends between a safe state's
``ens?`` read (1) and its ``ens`` would make that ``ens`` fire a second shot.
The bench runs in process on its virtual clock, so the race is placed
exactly: the simulator's own light log says how many shots there were.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labctl.units import Q_
from sim_instruments.bench import VirtualBench


@pytest.fixture
def bench_and_station() -> Iterator[tuple[VirtualBench, Any]]:
    bench = VirtualBench(seed=3)
    station = bench.station()
    results = station.connect()
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    yield bench, station
    station.close()
    bench.close()


def shutter_commands(bench: VirtualBench, since: float) -> list[str]:
    return [
        entry["command"]
        for entry in bench.command_log
        if entry["role"] == "exposure_shutter" and entry["t"] >= since
    ]


def test_safe_state_just_before_a_timed_shot_ends_does_not_fire_a_second_one(
    bench_and_station: tuple[VirtualBench, Any],
) -> None:
    bench, station = bench_and_station
    shutter = station["exposure_shutter"]
    station["exposure_source"].turn_on(Q_(1.0, "A"))
    shutter.fire(Q_(500, "ms"))
    (_, shot_end), *_ = bench.devices["exposure_shutter"].schedule
    # One "ens?" exchange on the 9600-baud link, timed on the virtual clock.
    start = bench.now()
    assert shutter.enabled is True
    exchange = bench.now() - start
    # Half an exchange before the end: an "ens?" sent now is answered 1 while
    # the shot is open, and an "ens" sent after that answer arrives after the
    # shot ended - it would start a new one.
    bench.advance(shot_end - exchange / 2 - bench.now())
    assert bench.safe_state_report()["exposure_shutter"] == {"open": True, "enabled": True}
    safe_from = bench.now()

    shutter.safe_state()

    assert "ens" not in shutter_commands(bench, safe_from)
    assert shutter.closed is True
    bench.advance(5.0)  # long enough for any second shot to have run and been logged
    assert bench.safe_state_report()["exposure_shutter"] == {"open": False, "enabled": False}
    assert len(bench.light_log) == 1, bench.light_log
    assert bench.light_log[0]["duration"] == pytest.approx(0.5, abs=0.02)


def test_safe_state_during_a_timed_shot_waits_it_out(
    bench_and_station: tuple[VirtualBench, Any],
) -> None:
    bench, station = bench_and_station
    shutter = station["exposure_shutter"]
    shutter.fire(Q_(2000, "ms"))
    bench.advance(0.5)
    safe_from = bench.now()

    shutter.safe_state()

    assert "ens" not in shutter_commands(bench, safe_from)
    assert shutter.closed is True
    (shot,) = bench.light_log
    # Waited for the shot's own end (within one poll), no cut, no second shot.
    assert shot["duration"] == pytest.approx(2.0, abs=0.02)
    assert bench.now() - (shot["start"] + shot["duration"]) < 0.2
    bench.advance(5.0)
    assert len(bench.light_log) == 1


def test_safe_state_in_manual_mode_closes_by_one_toggle(
    bench_and_station: tuple[VirtualBench, Any],
) -> None:
    bench, station = bench_and_station
    shutter = station["exposure_shutter"]
    shutter.open_manual()
    bench.advance(0.3)
    safe_from = bench.now()

    shutter.safe_state()

    assert shutter_commands(bench, safe_from).count("ens") == 1
    assert bench.safe_state_report()["exposure_shutter"] == {"open": False, "enabled": False}
    (opening,) = bench.light_log
    # 0.3 s held open, plus the 9600-baud exchanges around it (closed?, ens?, mode?, ens).
    assert 0.3 < opening["duration"] < 0.4
