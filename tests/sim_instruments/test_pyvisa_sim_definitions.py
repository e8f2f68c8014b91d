"""The drivers against the pyvisa-sim definitions - in process, over a pty, over TCP.

Each instrument has one exercise (connect, a setting, a reading, an error
reply); it runs three ways: through pyvisa-sim as a VISA backend, and with
the same definition answering at the far end of a real pseudo-terminal
(pyserial) or a real loopback TCP socket (pyvisa-py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.intras_sck300p import IntrasSCK300P
from drivers.newport_esp300 import NewportESP300
from drivers.thorlabs_dc2200 import ThorlabsDC2200
from drivers.thorlabs_pm100d import ThorlabsPM100D
from drivers.thorlabs_sc10 import ThorlabsSC10
from drivers.torrey_pines_sc import TorreyPinesHotplate
from drivers.woollam_completeease import WoollamCompleteEASE
from labctl.errors import InstrumentError
from labctl.transport import LinkSettings, SerialTransport, VisaTransport
from labctl.units import Q_
from tests.links import device_responder, pyvisa_sim_device


def exercise_spin_coater(spinner: IntrasSCK300P) -> None:
    assert spinner.connect().firmware == "MIM-nano 1.0.3"
    spinner.motor_on()
    spinner.target_speed = Q_(3000, "rpm")
    assert spinner.speed == Q_(0, "rpm")  # a table spinner never spins up
    spinner.pwm = 250
    with pytest.raises(InstrumentError) as info:
        spinner.ask("SetPWM,1001")  # past the driver's check: the controller refuses too
    assert info.value.code == 2


def exercise_hotplate(plate: TorreyPinesHotplate) -> None:
    identity = plate.connect()
    assert (identity.model, identity.serial) == ("HP61", "TP061234")
    plate.heat_to(Q_(110, "degC"))
    assert plate.setpoint == Q_(110.0, "degC")
    assert plate.plate_temperature == Q_(25.0, "degC")
    with pytest.raises(InstrumentError, match="bad syntax"):
        plate.send("n400.0")  # the plate's own range check


def exercise_source(source: ThorlabsDC2200) -> None:
    assert source.connect().model == "DC2200"
    assert source.current_range[1] == Q_(1.0, "A")
    source.turn_on(Q_(0.5, "A"))
    assert source.current_setpoint == Q_(0.5, "A")
    assert source.output_enabled is True
    source.turn_off()
    assert source.output_enabled is False
    with pytest.raises(InstrumentError) as info:
        source.send("SOUR1:CCUR:CURR 5.0000")  # above the head limit
    assert info.value.code == -100


def exercise_shutter(shutter: ThorlabsSC10) -> None:
    assert shutter.connect().firmware == "1.07"
    assert shutter.closed is True
    assert shutter.enabled is False
    shutter.repeat_count = 10
    shutter.fire(Q_(250, "ms"))
    with pytest.raises(InstrumentError, match="CMD_ARG_INVALID"):
        shutter.send("mode=6")


def exercise_meter(meter: ThorlabsPM100D) -> None:
    assert meter.connect().serial == "P0009084"
    assert meter.sensor is not None and meter.sensor.name == "S120VC"
    assert meter.wavelength == Q_(365.0, "nm")
    assert meter.power == Q_(4.20021615e-06, "W")
    assert meter.ask("Measure:Scalar:POWer") == "4.20021615E-06"
    assert meter.irradiance().m_as("uW/cm**2") == pytest.approx(4.20021615 / 0.709)
    with pytest.raises(InstrumentError):
        meter.send("SENS:CORR:WAV 5000.0")


def exercise_stage(stage: NewportESP300) -> None:
    assert stage.connect().model == "ESP301"
    axis = stage.axis(1)
    assert axis.move_to(Q_(12.5, "mm")) == Q_(12.5, "mm")
    axis.motor_on()
    with pytest.raises(InstrumentError) as info:
        stage.send("1XX")
    assert info.value.code == 6


def exercise_ellipsometer(ellipsometer: WoollamCompleteEASE) -> None:
    ellipsometer.connect()
    assert ellipsometer.recipes() == ["Resist on Si", "Resist on Si map 49"]
    assert not ellipsometer.busy
    ellipsometer.move_to(Q_(10, "mm"), Q_(0, "mm"))
    result = ellipsometer.run_recipe("Resist on Si", "site_001")
    assert result.thickness == Q_(512.30, "nm") and result.mse == 2.35
    with pytest.raises(InstrumentError, match="recipe not found"):
        ellipsometer.run_recipe("No such recipe", "site_001")


@dataclass
class Case:
    driver: type
    file: str
    resource: str
    exercise: Callable[[Any], None]
    settings: dict[str, Any]
    serial: bool  # which real link: pty (serial instruments) or TCP


CASES = {
    "spin_coater": Case(
        IntrasSCK300P, "intras_sck300p.yaml", "ASRL1::INSTR", exercise_spin_coater, {}, True
    ),
    "hotplate": Case(
        TorreyPinesHotplate, "torrey_pines_sc.yaml", "ASRL2::INSTR", exercise_hotplate, {}, True
    ),
    "exposure_source": Case(
        ThorlabsDC2200,
        "thorlabs_dc2200.yaml",
        "USB0::0x1313::0x80C8::M00412345::INSTR",
        exercise_source,
        {},
        False,
    ),
    "exposure_shutter": Case(
        ThorlabsSC10, "thorlabs_sc10.yaml", "ASRL3::INSTR", exercise_shutter, {}, True
    ),
    "exposure_meter": Case(
        ThorlabsPM100D,
        "thorlabs_pm100d.yaml",
        "USB0::0x1313::0x8078::P0009084::INSTR",
        exercise_meter,
        {"aperture_area": "0.709 cm**2", "wavelength": "365 nm"},
        False,
    ),
    "exposure_stage": Case(
        NewportESP300, "newport_esp300.yaml", "ASRL4::INSTR", exercise_stage, {"axes": [1, 2]}, True
    ),
    "ellipsometer": Case(
        WoollamCompleteEASE,
        "woollam_completeease.yaml",
        "TCPIP0::127.0.0.1::4444::SOCKET",
        exercise_ellipsometer,
        {},
        False,
    ),
}

LINK = LinkSettings(timeout=1.0, resync_quiet=0.05)


@pytest.mark.parametrize("role", CASES)
def test_driver_against_its_pyvisa_sim_definition(role: str, sim_definitions: Path) -> None:
    case = CASES[role]
    transport = VisaTransport(case.resource, LINK, backend=f"{sim_definitions / case.file}@sim")
    driver = case.driver(transport, name=role, settings=case.settings)
    try:
        case.exercise(driver)
    finally:
        driver.close()


@pytest.mark.parametrize("role", CASES)
def test_driver_over_a_real_link_to_the_same_definition(
    role: str, sim_definitions: Path, pty_peer: Any, tcp_peer: Any
) -> None:
    case = CASES[role]
    device = pyvisa_sim_device(sim_definitions / case.file, case.resource)
    if case.serial:
        peer = pty_peer(device_responder(device))
        transport: Any = SerialTransport(peer.port, LINK)
    else:
        peer = tcp_peer(device_responder(device))
        transport = VisaTransport(f"TCPIP0::127.0.0.1::{peer.port}::SOCKET", LINK, backend="@py")
    driver = case.driver(transport, name=role, settings=case.settings)
    try:
        case.exercise(driver)
    finally:
        driver.close()
    assert peer.received  # the bytes really crossed the link


def test_definitions_load_from_the_installed_package() -> None:
    import sim_instruments

    for name in sim_instruments.DEFINITIONS:
        path = sim_instruments.definition_path(name)
        assert path.is_file(), path
        assert path.read_text(encoding="utf-8").lstrip().startswith("#")


def test_every_package_of_the_tree_is_installed() -> None:
    """A subpackage missing from the distribution fails only on a fresh machine: catch it here."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [
        ".".join(p.parent.relative_to(root).parts)
        for top in ("labctl", "drivers", "protocols", "sim_instruments")
        for p in (root / top).rglob("__init__.py")
    ]
    import fnmatch

    missing = [p for p in packages if not any(fnmatch.fnmatch(p, pattern) for pattern in include)]
    assert missing == []
