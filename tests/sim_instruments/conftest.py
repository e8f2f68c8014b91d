"""Fixtures for the virtual bench: a fresh bench and its connected station."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from labctl.units import Q_
from sim_instruments.bench import VirtualBench


@pytest.fixture(autouse=True)
def _quiet_banner(caplog: pytest.LogCaptureFixture) -> None:
    # The spinner's power-up banner is drained (and logged) at connect.
    caplog.set_level(logging.ERROR, logger="labctl.transport")


@pytest.fixture
def bench() -> Iterator[VirtualBench]:
    virtual = VirtualBench(seed=7)
    yield virtual
    virtual.close()


@pytest.fixture
def station(bench: VirtualBench) -> Any:
    connected = bench.station()
    results = connected.connect()
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    return connected


def coat(
    bench: VirtualBench, station: Any, wafer_id: str, speed: float = 3000, seconds: float = 30
) -> None:
    """Spin-coat a new wafer the way a protocol would (the dispense is manual)."""
    spinner = station["spin_coater"]
    bench.new_wafer(wafer_id)
    bench.load(wafer_id, "spin_coater")
    bench.dispense_resist()
    spinner.spin(Q_(500, "rpm"))
    spinner.wait(Q_(3, "s"))
    spinner.spin(Q_(speed, "rpm"))
    spinner.wait(Q_(seconds, "s"))
    spinner.stop()
    bench.unload("spin_coater")


def bake(
    bench: VirtualBench, station: Any, wafer_id: str, temperature: float, seconds: float
) -> None:
    plate = station["hotplate"]
    plate.heat_to(Q_(temperature, "degC"))
    plate.wait(Q_(300, "s"))  # let the plate get there
    bench.load(wafer_id, "hotplate")
    plate.wait(Q_(seconds, "s"))
    bench.unload("hotplate")


def develop(bench: VirtualBench, station: Any, wafer_id: str, seconds: float = 60) -> None:
    spinner = station["spin_coater"]
    bench.load(wafer_id, "spin_coater")
    bench.dispense_developer()
    spinner.wait(Q_(seconds, "s"))
    bench.rinse()
    spinner.spin(Q_(3000, "rpm"))
    spinner.wait(Q_(15, "s"))
    spinner.stop()
    bench.spin_dry()
    bench.unload("spin_coater")
