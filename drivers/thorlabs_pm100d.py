"""Thorlabs PM100D optical power meter (dose meter), SCPI over USBTMC.

USB vendor 0x1313, product 0x8078 (PM100USB: 0x8072); replies end with
``\\n``; standard SCPI. Framing lives in :mod:`drivers.scpi`.

Irradiance is power divided by the sensor's aperture area, a station setting
(``aperture_area``): the meter measures watts, not watts per area.

Assumed: ``SYST:ERR?`` answers in the SCPI form ``0,"No error"``; with no head
attached ``SYST:SENS:IDN?`` starts with ``no sensor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from labctl.errors import HardwareStateError, InputError
from labctl.settings import Setting, Settings, quantity
from labctl.units import Q_, U

from .base import control, measurement
from .scpi import ScpiInstrument

__all__ = ["SensorInfo", "ThorlabsPM100D"]

#: ``SYST:SENS:IDN?`` flag bits.
SENSOR_FLAGS = {
    1: "power sensor",
    2: "energy sensor",
    16: "response settable",
    32: "wavelength settable",
    64: "tau settable",
    256: "temperature sensor",
}


@dataclass(frozen=True)
class SensorInfo:
    """The attached sensor head, from ``SYST:SENS:IDN?``."""

    name: str
    serial: str
    calibration: str
    type: str
    subtype: str
    flags: int

    @property
    def is_power_sensor(self) -> bool:
        return bool(self.flags & 1)

    @property
    def wavelength_settable(self) -> bool:
        return bool(self.flags & 32)

    def describe_flags(self) -> list[str]:
        return [text for bit, text in SENSOR_FLAGS.items() if self.flags & bit]


class ThorlabsPM100D(ScpiInstrument):
    """Power meter at the wafer plane. Powers in W, wavelengths in nm."""

    maker: ClassVar[str] = "Thorlabs"
    model: ClassVar[str] = "PM100D"
    station_settings: ClassVar[Settings] = Settings(
        Setting(
            "aperture_area",
            # The largest Thorlabs head aperture (ES245C, 45 mm) is 15.9 cm^2.
            quantity("cm**2", above=0, high=20, example="0.709 cm**2"),
            "Sensor aperture area; turns the measured power into irradiance.",
            required=True,
        ),
        Setting(
            "wavelength",
            # Thorlabs photodiode and thermal heads span 185 nm to 25 um; the
            # attached head's own range is read and checked at connect.
            quantity("nm", 185, 25000, example="365 nm"),
            "Correction wavelength set at connect (when the head allows it).",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wavelength_range: tuple[Any, Any] = (Q_(200.0, U.nm), Q_(1100.0, U.nm))
        self.sensor: SensorInfo | None = None

    wavelength = control(
        "SENS:CORR:WAV?",
        "SENS:CORR:WAV {}",
        "Correction wavelength (nm); range from the sensor, read at connect.",
        unit=U.nm,
        limits="wavelength_range",
        fmt="{:.1f}",
    )
    averaging = control(
        "SENS:AVER?",
        "SENS:AVER {}",
        "Samples averaged per reading (about 3 ms each).",
        limits=(1, 10000),
        parse=int,
        fmt="{:.0f}",
    )
    auto_range = control(
        "SENS:RANGE:AUTO?",
        "SENS:RANGE:AUTO {}",
        "Automatic power range.",
        values={True: "ON", False: "OFF"},
        parse=lambda t: {"1": True, "0": False, "ON": True, "OFF": False}[t.strip().upper()],
    )
    power_unit = control(
        None,
        "SENS:POW:UNIT {}",
        "Power reading unit; the driver keeps W.",
        values={"W": "W", "dBm": "DBM"},
    )
    power = measurement("MEAS:POW?", "Measured optical power (W).", unit=U.W)
    energy = measurement("MEAS:ENER?", "Measured pulse energy (J, energy heads).", unit=U.J)
    configuration = measurement("CONF?", "What the meter is set to measure.", parse=str)
    calibration_message = measurement("CAL:STR?", "The head's calibration message.", parse=str)

    def read_sensor(self) -> SensorInfo:
        """``SYST:SENS:IDN?``: which head is attached."""
        reply = self.ask("SYST:SENS:IDN?")
        fields = [f.strip() for f in reply.split(",")]
        if fields and fields[0].lower() == "no sensor":
            raise HardwareStateError("no sensor head attached", instrument=self.name)
        if len(fields) != 6:
            raise self._garbled(f"SYST:SENS:IDN? answered {reply!r}, expected 6 fields")
        try:
            flags = int(fields[5])
        except ValueError:
            raise self._garbled(f"sensor flags {fields[5]!r} are not a number") from None
        name, serial, calibration, sensor_type, subtype = fields[:5]
        return SensorInfo(name, serial, calibration, sensor_type, subtype, flags)

    def _configure_session(self) -> None:
        self.clear_status()
        self.sensor = self.read_sensor()
        if not self.sensor.is_power_sensor:
            raise HardwareStateError(
                f"sensor {self.sensor.name} is not a power sensor", instrument=self.name
            )
        low = Q_(float(self.ask("SENS:CORR:WAV? MIN")), U.nm)
        high = Q_(float(self.ask("SENS:CORR:WAV? MAX")), U.nm)
        self.wavelength_range = (low, high)
        self.power_unit = "W"
        self.auto_range = True
        wavelength = self.settings["wavelength"]
        if wavelength is not None and self.sensor.wavelength_settable:
            self.wavelength = wavelength

    @property
    def aperture_area(self) -> Any:
        """The sensor's aperture area (cm^2), from the station settings."""
        area = self.settings["aperture_area"]
        if area is None:
            # Only a meter built by hand gets here: a station file must give it.
            raise InputError(
                "the meter's aperture area is needed to turn power into irradiance",
                source=self.name,
                field="settings.aperture_area",
            )
        return area

    def irradiance(self) -> Any:
        """Measured irradiance (mW/cm^2): power over the aperture area."""
        return (self.power / self.aperture_area).to(U.mW_per_cm2)
