"""The declarative driver base.

A driver is a class with one descriptor line per instrument command
(PyMeasure's ``control`` / ``measurement`` are the model)::

    class Hotplate(Instrument):
        setpoint = control("s", "n{:.1f}", "Plate setpoint.", unit=U.degC,
                           limits="temperature_limits")
        plate_temperature = measurement("p", "Plate temperature.", unit=U.degC)

and one place where its framing lives: :meth:`Instrument._exchange` turns a
command string into bytes on the wire and the reply bytes back into text (or
an :class:`~labctl.errors.InstrumentError`). Nothing in ``__init__`` touches
the instrument; :meth:`Instrument.connect` and :meth:`Instrument.identify` do.

Values cross the driver boundary as pint quantities from
:mod:`labctl.units`. A setter checks dimension and range *before* a byte is
sent and raises :class:`~labctl.errors.SetpointError` naming the command, the
value and the allowed range.

The station-file settings a driver accepts are declared the same way, as
data: ``station_settings = Settings(Setting(...), ...)`` (see
:mod:`labctl.settings`). The station checks a file against them when it
loads, before any port opens; the driver receives them converted
(quantities, defaults filled in) in :attr:`Instrument.settings`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from labctl.clock import Clock, RealClock
from labctl.errors import GarbledReply, SetpointError
from labctl.settings import Settings, declared_settings
from labctl.transport import LinkSettings, Transport
from labctl.units import Q_, Quantity, U, fast_quantity

__all__ = [
    "Identity",
    "Instrument",
    "control",
    "measurement",
    "setting",
]


@dataclass(frozen=True)
class Identity:
    """Who an instrument says it is. Unknown parts are ``"unknown"``."""

    maker: str
    model: str
    serial: str
    firmware: str

    def __str__(self) -> str:
        return f"{self.maker} {self.model} s/n {self.serial} fw {self.firmware}"


class control:  # noqa: N801 - reads like PyMeasure's declarative helpers
    """One instrument command pair: a property with getter and/or setter.

    ``get_command`` and ``set_command`` are the command texts (``set_command``
    with one ``{}`` field, filled with the value formatted by ``fmt``).
    ``unit`` is a cached unit from :data:`labctl.units.U` (``None`` for
    unit-less values). ``limits`` is a ``(low, high)`` pair in ``unit``, or
    the name of a driver attribute holding one (ranges that depend on the
    model found at connect).
    ``values`` restricts the value: a mapping user value -> wire value, or a
    sequence of allowed values. ``parse`` turns reply text into a number or
    string; ``fmt`` formats the wire value.
    """

    def __init__(
        self,
        get_command: str | None,
        set_command: str | None,
        doc: str,
        *,
        unit: Any = None,
        limits: tuple[Any, Any] | str | None = None,
        values: Mapping[Any, Any] | Sequence[Any] | None = None,
        parse: Callable[[str], Any] = float,
        fmt: str = "{:g}",
    ) -> None:
        self.get_command = get_command
        self.set_command = set_command
        self.unit = unit
        self.limits = limits
        self.values = values
        self.parse = parse
        self.fmt = fmt
        self.__doc__ = doc
        self.name = "?"
        self._reverse: dict[Any, Any] | None = None
        if isinstance(values, Mapping):
            self._reverse = {str(v): k for k, v in values.items()}

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instrument: Instrument | None, owner: type | None = None) -> Any:
        if instrument is None:
            return self
        if self.get_command is None:
            raise AttributeError(f"{self.name} is write-only")
        return self.read(instrument)

    def __set__(self, instrument: Instrument, value: Any) -> None:
        if self.set_command is None:
            raise AttributeError(f"{self.name} is read-only")
        wire = self.validate(instrument, value)
        value_text = str(wire) if isinstance(self.values, Mapping) else self.fmt.format(wire)
        instrument._write_setting(self.set_command.format(value_text), value_text)

    def _show(self, magnitude: Any) -> str:
        number = f"{magnitude:g}" if isinstance(magnitude, int | float) else str(magnitude)
        if self.unit is None:
            return number
        return f"{number} {self.unit:~P}"

    # -- pieces a driver may call directly ---------------------------------

    def read(self, instrument: Instrument) -> Any:
        assert self.get_command is not None
        reply = instrument.ask(self.get_command)
        reverse = self._reverse
        if reverse is not None and reply in reverse:
            return reverse[reply]
        try:
            number = self.parse(reply)
        except (ValueError, KeyError) as exc:
            expected = f"one of {sorted(reverse)}" if reverse is not None else "a number"
            raise instrument._garbled(
                f"{self.get_command!r} answered {reply!r}, expected {expected}"
            ) from exc
        if self.unit is None:
            return number
        return fast_quantity(number, self.unit)

    def validate(self, instrument: Instrument, value: Any) -> Any:
        """The wire value for ``value``, or :class:`SetpointError`; sends nothing."""
        field = f"{self.name} ({(self.set_command or '').split('{')[0].rstrip(',= ')})"
        if isinstance(self.values, Mapping):
            if value not in self.values:
                raise SetpointError(
                    f"{value!r} is not one of {list(self.values)}",
                    source=instrument.name,
                    field=field,
                )
            return self.values[value]
        if self.unit is not None:
            if not isinstance(value, Quantity):
                raise SetpointError(
                    f"{value!r} has no unit; give a quantity in {self.unit:~P}",
                    source=instrument.name,
                    field=field,
                )
            if value._units == self.unit._units:
                magnitude = value._magnitude
            elif value.dimensionality == self.unit.dimensionality:
                magnitude = value.m_as(self.unit)
            else:
                raise SetpointError(
                    f"{value:~P} is not a {self.unit:~P} quantity",
                    source=instrument.name,
                    field=field,
                )
        else:
            magnitude = value
            if self.values is None and (
                isinstance(magnitude, bool) or not isinstance(magnitude, int | float)
            ):
                raise SetpointError(
                    f"{value!r} is not a number", source=instrument.name, field=field
                )
        if self.values is not None and magnitude not in self.values:
            raise SetpointError(
                f"{magnitude!r} is not one of {list(self.values)}",
                source=instrument.name,
                field=field,
            )
        if isinstance(magnitude, float) and not math.isfinite(magnitude):
            raise SetpointError(
                f"{magnitude!r} is not a finite number", source=instrument.name, field=field
            )
        limits = self.limits
        if isinstance(limits, str):
            limits = getattr(instrument, limits)
        if limits is not None:
            low, high = limits
            low_m = low.m_as(self.unit) if isinstance(low, Quantity) else low
            high_m = high.m_as(self.unit) if isinstance(high, Quantity) else high
            if not low_m <= magnitude <= high_m:
                raise SetpointError(
                    f"{self._show(magnitude)} is outside the allowed range "
                    f"{self._show(low_m)} to {self._show(high_m)}",
                    source=instrument.name,
                    field=field,
                )
        return magnitude


def measurement(
    get_command: str,
    doc: str,
    *,
    unit: Any = None,
    values: Mapping[Any, Any] | None = None,
    parse: Callable[[str], Any] = float,
) -> control:
    """A read-only :class:`control`: one query, parsed, with its unit."""
    return control(get_command, None, doc, unit=unit, values=values, parse=parse)


def setting(
    set_command: str,
    doc: str,
    *,
    unit: Any = None,
    limits: tuple[Any, Any] | str | None = None,
    values: Mapping[Any, Any] | Sequence[Any] | None = None,
    fmt: str = "{:g}",
) -> control:
    """A write-only :class:`control`."""
    return control(None, set_command, doc, unit=unit, limits=limits, values=values, fmt=fmt)


class Instrument:
    """Base of every driver: a transport, a name, a clock - and no I/O in ``__init__``.

    Subclasses set :attr:`maker`, :attr:`model`, :attr:`link_defaults` and
    implement :meth:`_exchange` (the framing) and :meth:`identify`.
    """

    maker: ClassVar[str] = "unknown"
    model: ClassVar[str] = "unknown"
    #: Link settings the real instrument uses; a station file may override.
    link_defaults: ClassVar[LinkSettings] = LinkSettings()
    #: The ``[roles.<role>.settings]`` keys this driver accepts (none here).
    station_settings: ClassVar[Settings] = Settings()

    def __init__(
        self,
        transport: Transport,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.transport = transport
        self.name = name or f"{self.model} at {transport.name}"
        self.clock: Clock = clock or RealClock()
        #: Station-file settings, checked against :attr:`station_settings` and
        #: converted (quantities), every declared key present (``None``: not
        #: given and no default). A station hands them over checked already;
        #: checking again costs microseconds and covers a driver built by hand.
        self.settings: dict[str, Any] = declared_settings(type(self)).validate(
            settings or {}, source=self.name, prefix="settings"
        )
        self.identity: Identity | None = None

    # -- framing: one place per driver ---------------------------------------

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        """Send one command and return the reply text; raise on an error reply."""
        raise NotImplementedError

    def ask(self, command: str) -> str:
        """Send a query; return the reply text with framing removed."""
        with self.transport.lock:
            return self._exchange(command)

    def send(self, command: str) -> str:
        """Send a command that changes something; return whatever it answers."""
        with self.transport.lock:
            return self._exchange(command, expect_reply=False)

    def _write_setting(self, command: str, value_text: str) -> None:
        """How a :class:`control` setter sends; drivers that confirm override."""
        self.send(command)

    def _garbled(self, message: str) -> GarbledReply:
        """Build a :class:`GarbledReply` and mark the link for resynchronization."""
        self.transport.mark_suspect()
        return GarbledReply(message, instrument=self.name)

    # -- session ----------------------------------------------------------

    def connect(self) -> Identity:
        """Open the link, identify the instrument and set up the session."""
        self.transport.open()
        self.identity = self.identify()
        self._configure_session()
        return self.identity

    def identify(self) -> Identity:
        """Ask the instrument who it is."""
        raise NotImplementedError

    def _configure_session(self) -> None:
        """Put the instrument into the state the driver assumes (after connect)."""

    def reconnect(self) -> None:
        """Reopen the link and restore the session (after a lost link)."""
        self.transport.reconnect()
        self._configure_session()

    def close(self) -> None:
        """Close the link. The instrument keeps its state."""
        self.transport.close()

    def snapshot(self) -> dict[str, Any]:
        """Identity and settings for a run record (no I/O beyond identity)."""
        identity = self.identity
        return {
            "name": self.name,
            "driver": f"{type(self).__module__}.{type(self).__qualname__}",
            "maker": identity.maker if identity else self.maker,
            "model": identity.model if identity else self.model,
            "serial": identity.serial if identity else "unknown",
            "firmware": identity.firmware if identity else "unknown",
            "link": self.transport.name,
            "settings": declared_settings(type(self)).show(self.settings),
        }

    def wait(self, duration: Any) -> None:
        """Wait on this driver's clock (virtual in simulation)."""
        self.clock.sleep(duration)

    def elapsed_since(self, start: float) -> Any:
        """Time since ``start`` (a ``clock.monotonic()`` reading), as a quantity."""
        return Q_(self.clock.monotonic() - start, U.s)
