"""Torrey Pines Scientific SC-series / EchoTherm hotplate, over its ASCII serial protocol.

Wire format (``shared/domain/instruments.md``): commands end with ``\\r``,
replies end with ``\\r\\n``; no echo, no prompt; bad syntax answers ``e``.

===========  =====================================================
``v``        model and version, ``SC25 v1.0``
``V``        8-character serial number
``n<T>``     set and store the setpoint (C) -> ``ok``
``s``        setpoint, or ``off`` when idle
``p``        plate temperature (``-10.0``), or an error code
``i``/``I``  set / clear idle (idle removes plate power) -> ``ok``
``m<0-9>``   stirring speed (stirring models) -> ``ok``; ``m`` reads it
===========  =====================================================

Assumed (not in the public record), each kept in one constant here:

* link settings 9600 8N1 (:data:`LINK`);
* the bench's model is a 350 C HP-series hotplate; the setpoint range comes
  from the model the instrument reports (:data:`MODEL_RANGES`), and a station
  file may narrow it with ``temperature_range``;
* the setpoint is sent with one decimal (``n110.0``) and read back the same;
* a ``p`` reply that is not a number is the instrument's error code;
* setting a setpoint does not leave idle: ``I`` is sent to heat.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labctl.errors import GarbledReply, InputError, InstrumentError
from labctl.settings import Rule, Setting, Settings, list_of, quantity
from labctl.transport import LinkSettings
from labctl.units import Q_, U, fast_quantity

from .base import Identity, Instrument, control

__all__ = ["MODEL_RANGES", "TorreyPinesHotplate"]

LINK = LinkSettings(baud_rate=9600, timeout=1.0)

#: Setpoint range (C) by model-name prefix, as the public record gives it.
MODEL_RANGES: dict[str, tuple[float, float]] = {
    "SC": (-10.0, 110.0),
    "HP": (10.0, 350.0),
}

#: Setpoints any known model takes (C): what a station file may give.
TEMPERATURE_LIMITS = (
    min(low for low, _ in MODEL_RANGES.values()),
    max(high for _, high in MODEL_RANGES.values()),
)

_COMMAND_END = b"\r"
_REPLY_END = b"\r\n"


def _setpoint(text: str) -> float:
    if text == "off":
        return float("nan")
    return float(text)


class TorreyPinesHotplate(Instrument):
    """Hotplate for soft bake and post-exposure bake. Temperatures in degC."""

    maker: ClassVar[str] = "Torrey Pines Scientific"
    model: ClassVar[str] = "SC-series"
    link_defaults: ClassVar[LinkSettings] = LINK
    station_settings: ClassVar[Settings] = Settings(
        Setting(
            "temperature_range",
            list_of(
                quantity("degC", *TEMPERATURE_LIMITS), 2, increasing=True, names=("low", "high")
            ),
            "Setpoint range used instead of the model's; required for a model labctl lacks.",
        ),
        Setting(
            "standby_temperature",
            quantity("degC", *TEMPERATURE_LIMITS),
            "Standby setpoint; without it standby is idle (no plate power).",
        ),
        rules=(
            Rule(
                ("standby_temperature", "temperature_range"),
                "standby_temperature within temperature_range",
                lambda v: (
                    v["temperature_range"][0]
                    <= v["standby_temperature"]
                    <= v["temperature_range"][1]
                ),
            ),
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Allowed setpoints; set from the model at connect.
        self.temperature_range: tuple[Any, Any] = (Q_(10.0, U.degC), Q_(350.0, U.degC))

    setpoint = control(
        "s",
        "n{}",
        "Stored setpoint (degC); NaN degC while idle (``s`` answers ``off``).",
        unit=U.degC,
        limits="temperature_range",
        parse=_setpoint,
        fmt="{:.1f}",
    )
    stir_speed = control(
        "m",
        "m{}",
        "Stirring speed step 0-9 (stirring models only).",
        values=tuple(range(10)),
        parse=int,
        fmt="{:d}",
    )

    # -- framing ----------------------------------------------------------

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        raw = self.transport.query(command.encode("ascii") + _COMMAND_END, _REPLY_END)
        if not raw.endswith(_REPLY_END):
            raise self._garbled(f"reply {raw!r} to {command!r} does not end in CR LF")
        try:
            text = raw[:-2].decode("ascii")
        except UnicodeDecodeError:
            raise self._garbled(f"non-ASCII reply {raw!r} to {command!r}") from None
        if text == "e":
            raise InstrumentError("bad syntax", instrument=self.name, code="e", command=command)
        if not expect_reply and text != "ok":
            raise self._garbled(f"{command!r} answered {text!r}, expected 'ok'")
        return text

    # -- session ----------------------------------------------------------

    def identify(self) -> Identity:
        version = self.ask("v")
        model, _, firmware = version.partition(" v")
        if not model or not firmware:
            raise GarbledReply(
                f"'v' answered {version!r}, expected '<model> v<version>'", instrument=self.name
            )
        serial_number = self.ask("V")
        return Identity(self.maker, model, serial_number, firmware)

    def _configure_session(self) -> None:
        assert self.identity is not None
        model = self.identity.model
        prefix = next((p for p in MODEL_RANGES if model.startswith(p)), None)
        override = self.settings["temperature_range"]
        if override is not None:
            low, high = override
        elif prefix is not None:
            low, high = (Q_(v, U.degC) for v in MODEL_RANGES[prefix])
        else:
            raise InputError(
                f"model {model!r} has no known setpoint range; give temperature_range "
                "= [low, high] in the station file",
                source=self.name,
                field="settings.temperature_range",
            )
        self.temperature_range = (low, high)

    @property
    def plate_temperature(self) -> Any:
        """Measured plate temperature (degC)."""
        reply = self.ask("p")
        try:
            return fast_quantity(float(reply), U.degC)
        except ValueError:
            raise InstrumentError(
                "plate temperature unavailable", instrument=self.name, code=reply, command="p"
            ) from None

    @property
    def idle(self) -> bool:
        """True while idle (plate power off): ``s`` answers ``off``."""
        return self.ask("s") == "off"

    def heat_to(self, temperature: Any) -> None:
        """Store ``temperature`` (degC) as the setpoint and leave idle."""
        self.setpoint = temperature
        self.leave_idle()

    def enter_idle(self) -> None:
        """Set idle (``i``): plate power off, setpoint kept."""
        self.send("i")

    def leave_idle(self) -> None:
        """Clear idle (``I``): the plate regulates at its setpoint."""
        self.send("I")

    def standby(self) -> None:
        """Go to standby: the station's ``standby_temperature``, or idle (no power)."""
        standby = self.settings["standby_temperature"]
        if standby is None:
            self.enter_idle()
        else:
            self.heat_to(standby)

    def safe_state(self) -> None:
        """Hotplate to standby."""
        self.standby()
