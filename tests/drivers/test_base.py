"""The declarative driver base: no I/O in __init__, documented commands, refusals."""

from __future__ import annotations

import importlib.metadata

import pytest

from drivers.base import Instrument, control
from labctl.errors import SetpointError
from labctl.testing import ScriptedTransport
from labctl.units import Q_, U

DRIVERS = [ep.load() for ep in importlib.metadata.entry_points(group="labctl.drivers")]


def test_seven_drivers_are_registered() -> None:
    assert len(DRIVERS) == 7


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_constructing_a_driver_sends_nothing(driver: type[Instrument]) -> None:
    transport = ScriptedTransport([])
    driver(transport)
    assert transport.written == []


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_every_command_descriptor_is_documented(driver: type[Instrument]) -> None:
    descriptors = [
        v for klass in driver.__mro__ for v in vars(klass).values() if isinstance(v, control)
    ]
    for descriptor in descriptors:
        assert descriptor.__doc__ and len(descriptor.__doc__) > 10, descriptor.name
    assert driver.__doc__ and (
        driver.__module__ and importlib.import_module(driver.__module__).__doc__
    )


def test_read_only_and_write_only_descriptors() -> None:
    class Meter(Instrument):
        reading = control("R?", None, "A reading (V).", unit=U.A)
        level = control(None, "L {}", "A level (A).", unit=U.A, limits=(0, 1))

    meter = Meter(ScriptedTransport([]))
    with pytest.raises(AttributeError, match="read-only"):
        meter.reading = Q_(1, "A")
    with pytest.raises(AttributeError, match="write-only"):
        _ = meter.level
    with pytest.raises(SetpointError, match=r"L\): 2 A is outside the allowed range 0 A to 1 A"):
        meter.level = Q_(2, "A")
    with pytest.raises(SetpointError, match="not a finite number"):
        meter.level = Q_(float("nan"), "A")
