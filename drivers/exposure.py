"""The exposure tool: a composite over LED source, shutter, power meter and stage.

It does what an operator does at a flood-exposure station, in order:

1. **calibrate** - move the meter under the beam, source on at the exposure
   current, open the shutter, average the meter, close; irradiance at the
   wafer plane = power / meter aperture area;
2. **plan** - turn a requested dose into a shutter open time
   (``t = D / E``, rounded to the SC10's whole milliseconds) and refuse a dose
   whose time falls outside the shutter's reliable window, naming both ends;
3. **fire** - move the stage to the field, check the LED current, open the
   shutter for ``t`` in single mode, wait, and confirm ``closed?`` reads 1;
4. **record** - the dose delivered, ``E x (t + shutter offset)``, next to the
   dose asked for, with the irradiance, times, LED current and calibration.

Doses are optical (mJ/cm^2). The unit model also accepts electron doses
(uC/cm^2, see :func:`labctl.units.dose_kind`); this tool refuses them with a
clear error, an e-beam writer would accept them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from labctl.clock import Clock, RealClock
from labctl.errors import HardwareStateError, SetpointError
from labctl.settings import Rule, Setting, Settings, fraction, integer, list_of, quantity
from labctl.units import Q_, U, dose_kind, format_quantity

from .newport_esp300 import EspAxis
from .thorlabs_dc2200 import MAX_CURRENT, ThorlabsDC2200
from .thorlabs_pm100d import ThorlabsPM100D
from .thorlabs_sc10 import MAX_TIME_MS, ThorlabsSC10

__all__ = [
    "EXPOSURE_SETTINGS",
    "Calibration",
    "ExposureRecord",
    "ExposureSettings",
    "ExposureTool",
]

#: How often ``closed?`` is polled after the open time has run out (s).
CLOSE_POLL = 0.01
#: Largest shutter offset a station may declare (ms, either sign).
MAX_SHUTTER_OFFSET_MS = 20.0


#: The ``[exposure]`` table of a station file: every key, its unit, range and
#: default. The station checks a file against it when it loads (the tool is
#: registered for that table in the ``labctl.composites`` entry-point group).
EXPOSURE_SETTINGS = Settings(
    Setting(
        "led_current",
        quantity("A", above=0, high=MAX_CURRENT, example="1.0 A"),
        "LED current for exposures and calibration; the LED head's own limit is read at connect.",
        default="1.0 A",
    ),
    Setting(
        "min_open_time",
        quantity("ms", 1, MAX_TIME_MS, example="20 ms"),
        "Shortest open time the shutter repeats reliably.",
        default="20 ms",
    ),
    Setting(
        "max_open_time",
        quantity("ms", 1, MAX_TIME_MS, example="600000 ms"),
        "Longest open time allowed (the SC10 takes six digits of ms).",
        default=f"{MAX_TIME_MS} ms",
    ),
    Setting(
        "shutter_offset",
        # A shutter's opening and closing delays differ by a few ms; tens of
        # ms would be a broken shutter or a mistyped sign.
        quantity("ms", -MAX_SHUTTER_OFFSET_MS, MAX_SHUTTER_OFFSET_MS, example="1.5 ms"),
        "Measured minus programmed open time (shutter calibration); added in the delivered dose.",
        default="0.0 ms",
    ),
    Setting(
        "meter_position",
        list_of(quantity("mm", -300, 300, example="-40 mm"), 2, names=("x", "y")),
        "Stage position that puts the meter head under the beam; travel is checked at connect.",
        default=["-40.0 mm", "0.0 mm"],
    ),
    Setting(
        "calibration_readings",
        integer(1, 1000),
        "Meter readings averaged in a calibration.",
        default=5,
    ),
    Setting(
        "settle_time",
        quantity("s", 0, 60, example="0.5 s"),
        "Wait after opening before reading the meter.",
        default="0.5 s",
    ),
    Setting(
        "calibration_max_age",
        quantity("s", above=0, high=86400, example="900 s"),
        "A calibration older than this is renewed before an exposure.",
        default="900.0 s",
    ),
    Setting(
        "current_tolerance",
        fraction(above=0, high=0.5),
        "Allowed LED current deviation from its setpoint before firing.",
        default=0.02,
    ),
    Setting(
        "close_timeout",
        quantity("s", above=0, high=60, example="1 s"),
        "Extra time allowed for the shutter to report closed.",
        default="1.0 s",
    ),
    Setting(
        "min_irradiance",
        quantity("mW/cm**2", 0, 1000, example="0.1 mW/cm**2"),
        "A calibration below this means the source is not lighting (LED, shutter, meter).",
        default="0.1 mW/cm**2",
    ),
    rules=(
        Rule(
            ("min_open_time", "max_open_time"),
            "min_open_time < max_open_time",
            lambda v: bool(v["min_open_time"] < v["max_open_time"]),
        ),
        Rule(
            ("shutter_offset", "min_open_time"),
            "min_open_time + shutter_offset > 0 ms (the shortest exposure must open)",
            lambda v: bool((v["min_open_time"] + v["shutter_offset"]).magnitude > 0),
        ),
    ),
)


_DEFAULTS = EXPOSURE_SETTINGS.defaults()


@dataclass(frozen=True)
class ExposureSettings:
    """The ``[exposure]`` table of a station file, as quantities (see :data:`EXPOSURE_SETTINGS`)."""

    #: LED current for exposures and for calibration (A).
    led_current: Any = field(default_factory=lambda: _DEFAULTS["led_current"])
    #: Shortest open time the shutter repeats reliably (ms).
    min_open_time: Any = field(default_factory=lambda: _DEFAULTS["min_open_time"])
    #: Longest open time allowed (ms); the SC10 takes at most 999999 ms.
    max_open_time: Any = field(default_factory=lambda: _DEFAULTS["max_open_time"])
    #: Measured open time minus programmed open time (ms), from a shutter
    #: calibration; added to the programmed time in the delivered dose.
    shutter_offset: Any = field(default_factory=lambda: _DEFAULTS["shutter_offset"])
    #: Stage position (mm) that puts the meter head under the beam.
    meter_position: tuple[Any, Any] = field(default_factory=lambda: _DEFAULTS["meter_position"])
    #: Meter readings averaged in a calibration.
    calibration_readings: int = field(default_factory=lambda: _DEFAULTS["calibration_readings"])
    #: Wait after opening before reading the meter (s).
    settle_time: Any = field(default_factory=lambda: _DEFAULTS["settle_time"])
    #: A calibration older than this is renewed before an exposure (s).
    calibration_max_age: Any = field(default_factory=lambda: _DEFAULTS["calibration_max_age"])
    #: Allowed LED current deviation from setpoint before firing (fraction).
    current_tolerance: float = field(default_factory=lambda: _DEFAULTS["current_tolerance"])
    #: Extra time allowed for the shutter to report closed (s).
    close_timeout: Any = field(default_factory=lambda: _DEFAULTS["close_timeout"])
    #: A calibration below this irradiance means the source is not lighting
    #: (a failed LED, a closed shutter, the meter not under the beam).
    min_irradiance: Any = field(default_factory=lambda: _DEFAULTS["min_irradiance"])

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str) -> ExposureSettings:
        """Build from a station file's ``[exposure]`` table, checked by :data:`EXPOSURE_SETTINGS`.

        Takes text with units (``"20 ms"``) or values a station converted
        already; raises :class:`~labctl.errors.InputError` naming the field.
        """
        return cls(**EXPOSURE_SETTINGS.validate(table, source=source, prefix="exposure"))


@dataclass(frozen=True)
class Calibration:
    """Irradiance at the wafer plane, measured with the meter."""

    irradiance: Any
    power: Any
    led_current: Any
    wavelength: Any
    readings: int
    measured_at: datetime
    monotonic: float


@dataclass(frozen=True)
class ExposureRecord:
    """What one exposure did: asked, delivered, and the evidence."""

    field_label: str
    position: tuple[Any, Any]
    dose_requested: Any
    dose_delivered: Any
    irradiance: Any
    open_time_programmed: Any
    open_time_effective: Any
    led_current: Any
    started_at: datetime
    calibration: Calibration


class ExposureTool:
    """Flood exposure through an LED, a timed shutter, a meter and a stage."""

    #: The station file's ``[exposure]`` table (the composite's own settings).
    station_settings: ClassVar[Settings] = EXPOSURE_SETTINGS

    def __init__(
        self,
        source: ThorlabsDC2200,
        shutter: ThorlabsSC10,
        meter: ThorlabsPM100D,
        x_axis: EspAxis,
        y_axis: EspAxis | None = None,
        *,
        settings: ExposureSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.source = source
        self.shutter = shutter
        self.meter = meter
        self.x_axis = x_axis
        self.y_axis = y_axis
        self.settings = settings or ExposureSettings()
        self.clock = clock or RealClock()
        self.calibration: Calibration | None = None

    @classmethod
    def from_station(cls, station: Any) -> ExposureTool:
        """Compose the tool from a :class:`labctl.station.Station`'s exposure roles."""
        config = station.config
        settings = ExposureSettings.from_table(config.exposure, config.source)
        stage = station["exposure_stage"]
        axes = list(stage.settings.get("axes") or (1,))
        return cls(
            station["exposure_source"],
            station["exposure_shutter"],
            station["exposure_meter"],
            stage.axis(axes[0]),
            stage.axis(axes[1]) if len(axes) > 1 else None,
            settings=settings,
            clock=station.clock,
        )

    # -- planning (no I/O) --------------------------------------------------

    def preflight(self) -> None:
        """Refuse settings the connected instruments cannot take - before a wafer is touched.

        The station file is checked against each driver's declared ranges at
        load; what only the instruments know (the LED head's current limit,
        read at connect) is checked here, with no I/O, so a protocol calls it
        before its first wafer rather than meeting it at the first calibration.
        """
        low, high = self.source.current_range
        current = self.settings.led_current
        if not low < current <= high:
            raise SetpointError(
                f"{format_quantity(current)} is above what the LED head allows"
                f" ({format_quantity(high)}, its limit read at connect)"
                if current > high
                else f"{format_quantity(current)} is not a current the source can drive",
                source="station",
                field="exposure.led_current",
            )

    @staticmethod
    def _check_dose(dose: Any) -> None:
        try:
            kind = dose_kind(dose)
        except Exception:
            raise SetpointError(
                f"{dose!r} is not a dose (mJ/cm²)", source="exposure tool", field="dose"
            ) from None
        if kind != "optical":
            raise SetpointError(
                f"{dose:~P} is an electron dose; this tool delivers optical doses (mJ/cm²)",
                source="exposure tool",
                field="dose",
            )
        if dose.magnitude <= 0:
            raise SetpointError(
                f"{dose:~P} is not a positive dose", source="exposure tool", field="dose"
            )

    def open_time_for(self, dose: Any, irradiance: Any | None = None) -> Any:
        """Programmed open time (whole ms) for ``dose``; refuses what the shutter cannot do."""
        self._check_dose(dose)
        if irradiance is None:
            if self.calibration is None:
                raise HardwareStateError("no irradiance calibration yet: calibrate() first")
            irradiance = self.calibration.irradiance
        exact = (dose / irradiance).to(U.ms)
        low, high = self.settings.min_open_time, self.settings.max_open_time
        if not low <= exact <= high:
            raise SetpointError(
                f"{format_quantity(dose.to(U.mJ_per_cm2))} at "
                f"{format_quantity(irradiance.to(U.mW_per_cm2))} needs {format_quantity(exact)}, "
                f"outside the shutter's reliable {format_quantity(low)} to {format_quantity(high)}",
                source="exposure tool",
                field="dose",
            )
        return Q_(round(exact.magnitude), U.ms)

    def delivered_dose(self, open_time: Any, irradiance: Any) -> Any:
        """Dose delivered by ``open_time`` (programmed) at ``irradiance`` (mJ/cm^2)."""
        effective = open_time + self.settings.shutter_offset
        return (irradiance * effective).to(U.mJ_per_cm2)

    # -- hardware -----------------------------------------------------------

    def move_to(self, x: Any, y: Any | None = None) -> tuple[Any, Any]:
        """Move the stage; return the position read back (mm)."""
        x_read = self.x_axis.move_to(x)
        if self.y_axis is not None and y is not None:
            y_read = self.y_axis.move_to(y)
        else:
            y_read = Q_(0.0, U.mm) if y is None else y
        return x_read, y_read

    def calibrate(self) -> Calibration:
        """Measure the irradiance at the wafer plane with the meter."""
        s = self.settings
        meter_x, meter_y = s.meter_position
        self.move_to(meter_x, meter_y)
        self.source.turn_on(s.led_current)
        try:
            self.shutter.open_manual()
            self.clock.sleep(s.settle_time)
            readings = [self.meter.power for _ in range(s.calibration_readings)]
        finally:
            self.shutter.close_shutter()
        power = sum(readings[1:], readings[0]) / len(readings)
        irradiance = (power / self.meter.aperture_area).to(U.mW_per_cm2)
        if irradiance < s.min_irradiance:
            raise HardwareStateError(
                f"the meter reads {format_quantity(power.to(U.mW))} "
                f"({format_quantity(irradiance)}) with the source on at "
                f"{format_quantity(s.led_current)}: is the LED working? "
                f"(minimum {format_quantity(s.min_irradiance)})",
                instrument=self.meter.name,
            )
        self.calibration = Calibration(
            irradiance=irradiance,
            power=power.to(U.mW),
            led_current=self.source.led_current,
            wavelength=self.meter.wavelength,
            readings=len(readings),
            measured_at=self.clock.now(),
            monotonic=self.clock.monotonic(),
        )
        return self.calibration

    def calibration_is_fresh(self) -> bool:
        c = self.calibration
        if c is None:
            return False
        age = self.clock.monotonic() - c.monotonic
        return bool(age <= self.settings.calibration_max_age.m_as(U.s))

    def expose(self, dose: Any, x: Any, y: Any | None = None, *, label: str = "") -> ExposureRecord:
        """Deliver ``dose`` (mJ/cm^2) at stage position (x, y) and record it."""
        self._check_dose(dose)
        if self.calibration is not None:
            # Refuse an impossible dose before anything moves, even a recalibration.
            self.open_time_for(dose, self.calibration.irradiance)
        if not self.calibration_is_fresh():
            self.calibrate()
        assert self.calibration is not None
        calibration = self.calibration
        open_time = self.open_time_for(dose, calibration.irradiance)
        position = self.move_to(x, y)
        led_current = self.source.led_current
        expected = self.settings.led_current.m_as(U.A)
        if abs(led_current.m_as(U.A) - expected) > self.settings.current_tolerance * expected:
            raise HardwareStateError(
                f"LED current {format_quantity(led_current)} is not the calibrated "
                f"{format_quantity(self.settings.led_current)}",
                instrument=self.source.name,
            )
        started_at = self.clock.now()
        self.shutter.fire(open_time)
        self.clock.sleep(open_time)
        # A fixed number of polls, not a time comparison: the same count on
        # any clock, so a simulated run repeats byte for byte.
        polls = max(1, math.ceil(self.settings.close_timeout.m_as(U.s) / CLOSE_POLL))
        for _ in range(polls):
            if self.shutter.closed:
                break
            self.clock.sleep(CLOSE_POLL)
        else:
            self.safe_state()
            raise HardwareStateError(
                f"shutter still open {format_quantity(self.settings.close_timeout)} after "
                f"the {format_quantity(open_time)} exposure ended",
                instrument=self.shutter.name,
            )
        return ExposureRecord(
            field_label=label,
            position=position,
            dose_requested=dose,
            dose_delivered=self.delivered_dose(open_time, calibration.irradiance),
            irradiance=calibration.irradiance,
            open_time_programmed=open_time,
            open_time_effective=open_time + self.settings.shutter_offset,
            led_current=led_current,
            started_at=started_at,
            calibration=calibration,
        )

    def safe_state(self) -> None:
        """Source off, then shutter closed (confirmed) - both attempted.

        The source first: switching it off cannot make light, so a timed
        shot in flight goes dark at once while the shutter closes by itself.
        """
        errors: list[Exception] = []
        for action in (self.source.turn_off, self.shutter.close_shutter):
            try:
                action()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
