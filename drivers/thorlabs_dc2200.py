"""Thorlabs DC2200 high-power LED driver (exposure source), SCPI over USBTMC.

USB vendor 0x1313, product 0x80C8; ``\\n`` terminations; standard SCPI, so
the driver sends short forms (``SOUR1:CCUR:CURR`` is Thorlabs' own
``SOURCE1:CCURENT:CURRENT``, spelling included). Framing and the
``SYST:ERR?`` check after each set command live in :mod:`drivers.scpi`.

Assumed (seen in one unattributed driver, not in Thorlabs' public text):
``SOUR1:CURR:LIM?`` (the LED head's current limit), ``SOUR1:CURR:LIM:TRIP?``
and ``OUTP1:PROT:INTL:TRIP?``. No command to *set* the limit, nor LED-head
information, was found; the driver reads the limit at connect and refuses a
current above it (and above :data:`MAX_CURRENT`, the driver's own maximum).
The ``*IDN?`` reply is assumed to have the usual four fields.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labctl.errors import GarbledReply
from labctl.units import Q_, U

from .base import control, measurement
from .scpi import ScpiInstrument

__all__ = ["MAX_CURRENT", "ThorlabsDC2200"]

#: The DC2200's maximum LED current in constant-current mode (A).
MAX_CURRENT = 10.0

_ON_OFF = {"1": True, "0": False, "ON": True, "OFF": False}


def _flag(text: str) -> bool:
    try:
        return _ON_OFF[text.strip().upper()]
    except KeyError:
        raise ValueError(text) from None


class ThorlabsDC2200(ScpiInstrument):
    """LED driver for the exposure source. Currents in A."""

    maker: ClassVar[str] = "Thorlabs"
    model: ClassVar[str] = "DC2200"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Allowed LED current; narrowed to the head's limit at connect.
        self.current_range: tuple[Any, Any] = (Q_(0.0, U.A), Q_(MAX_CURRENT, U.A))

    mode = control(
        "SOUR1:MODE?",
        "SOUR1:MODE {}",
        "Operating mode: constant_current, pwm or constant_brightness.",
        values={"constant_current": "CC", "pwm": "PWM", "constant_brightness": "CB"},
    )
    current_setpoint = control(
        "SOUR1:CCUR:CURR?",
        "SOUR1:CCUR:CURR {}",
        "LED current in constant-current mode (A).",
        unit=U.A,
        limits="current_range",
        fmt="{:.4f}",
    )
    brightness = control(
        "SOUR1:CBR:BRIG?",
        "SOUR1:CBR:BRIG {}",
        "Brightness in constant-brightness mode (percent of the limit).",
        unit=U.percent,
        limits=(0.0, 100.0),
        fmt="{:.2f}",
    )
    pwm_current = control(
        "SOUR1:PWM:CURR?",
        "SOUR1:PWM:CURR {}",
        "LED current while PWM is high (A).",
        unit=U.A,
        limits="current_range",
        fmt="{:.4f}",
    )
    pwm_frequency = control(
        "SOUR1:PWM:FREQ?",
        "SOUR1:PWM:FREQ {}",
        "PWM frequency (Hz).",
        unit=U.Hz,
        limits=(1.0, 20000.0),
        fmt="{:.1f}",
    )
    pwm_duty_cycle = control(
        "SOUR1:PWM:DCYC?",
        "SOUR1:PWM:DCYC {}",
        "PWM duty cycle (percent).",
        unit=U.percent,
        limits=(1.0, 99.0),
        fmt="{:.1f}",
    )
    pwm_count = control(
        "SOUR1:PWM:COUN?",
        "SOUR1:PWM:COUN {}",
        "Number of PWM pulses (0 = run on).",
        limits=(0, 1_000_000),
        parse=int,
        fmt="{:.0f}",
    )
    output_enabled = control(
        "OUTP1:STAT?",
        "OUTP1:STAT {}",
        "LED output on (True) or off.",
        values={True: "ON", False: "OFF"},
        parse=_flag,
    )
    led_current = measurement("SENS3:CURR:DATA?", "Measured LED current (A).", unit=U.A)
    current_limit = measurement("SOUR1:CURR:LIM?", "The LED head's current limit (A).", unit=U.A)
    limit_tripped = measurement(
        "SOUR1:CURR:LIM:TRIP?", "True when the current limit has tripped.", parse=_flag
    )
    interlock_tripped = measurement(
        "OUTP1:PROT:INTL:TRIP?", "True when the output interlock is open.", parse=_flag
    )

    def _configure_session(self) -> None:
        self.clear_status()
        limit = self.current_limit
        if limit.magnitude <= 0:
            raise GarbledReply(f"current limit {limit:~P} is not positive", instrument=self.name)
        self.current_range = (Q_(0.0, U.A), Q_(min(limit.magnitude, MAX_CURRENT), U.A))
        self.mode = "constant_current"

    def reset(self) -> None:
        """``*RST``: the instrument's defaults (output off)."""
        self.send("*RST")

    def turn_on(self, current: Any) -> None:
        """Constant-current output at ``current`` (A)."""
        self.current_setpoint = current
        self.output_enabled = True

    def turn_off(self) -> None:
        """Output off."""
        self.output_enabled = False

    def safe_state(self) -> None:
        """Source off."""
        self.turn_off()
