"""What every simulated instrument shares: line framing, timing, log, faults."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from ..physics import BenchParameters
    from ..wafer import Wafer

__all__ = ["COMM_FAULTS", "PHYSICAL_FAULTS", "BenchView", "Fault", "SimDevice"]


class BenchView(Protocol):
    """What a simulated instrument may ask of the bench it sits on.

    The devices know the bench only through this (the bench passes itself),
    so no device module imports ``bench.py``, which imports the devices.
    """

    parameters: BenchParameters

    def changed(self) -> None:
        """The bench's state moved: save it, and bring the physics of held wafers along."""
        ...

    def wafer_on(self, tool: str) -> Wafer | None:
        """The wafer on ``tool`` (a role), if any."""
        ...

    def light_on_meter(self) -> float:
        """Irradiance reaching the power meter's head now (mW/cm^2)."""
        ...

    def deliver_light(self, start: float, end: float) -> None:
        """The shutter was open from ``start`` to ``end`` (bench s): expose what is under it."""
        ...

    def log_command(self, role: str, time: float, line: bytes, reply: bytes | None) -> None:
        """Record one command line and its reply (None: no reply) at bench time ``time``."""
        ...

    def log_fault(self, role: str, time: float, kind: str, line: bytes) -> None:
        """Record an injected fault that hit the reply to ``line``."""
        ...

#: Faults on the link or the reply, any instrument.
COMM_FAULTS = ("no_reply", "late_reply", "garbled_reply", "link_lost", "instrument_error")
#: Faults of the physics, each for one kind of instrument.
PHYSICAL_FAULTS = {
    "heater_runaway": "hotplate",
    "lamp_failure": "exposure_source",
    "spinner_stall": "spin_coater",
}


@dataclass
class Fault:
    """A fault to inject: from ``start`` (virtual s) on, ``count`` times or with ``probability``.

    Communication faults hit replies; ``count`` 0 with a probability means
    "each reply, with that probability, until the end". ``delay`` is how late
    a late reply comes (s).
    """

    kind: str
    start: float = 0.0
    count: int = 1
    probability: float = 1.0
    delay: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SimDevice:
    """Base of every simulated instrument.

    Subclasses set :attr:`input_terminator`, :attr:`baud_rate` (None for USB
    and TCP), :attr:`latency`, and implement :meth:`handle` (one command line
    in, reply bytes or ``None`` out), :meth:`evolve` (physics up to a time)
    and :meth:`error_reply`.
    """

    role: ClassVar[str] = ""
    input_terminator: ClassVar[bytes] = b"\n"
    baud_rate: ClassVar[int | None] = None
    #: Processing time before a reply starts (s).
    latency: ClassVar[float] = 0.001

    def __init__(self, bench: BenchView, seed: int) -> None:
        self.bench = bench
        self.rng = random.Random(seed)
        self.now = 0.0
        self._input = bytearray()
        self.faults: list[Fault] = []
        #: Set when a link_lost fault fires; cleared by the bench on reconnect.
        self.link_down = False
        self.commands_executed = 0

    # -- framing --------------------------------------------------------------

    def split_lines(self, data: bytes) -> list[bytes]:
        """Cut complete command lines out of the input stream."""
        self._input += data
        lines: list[bytes] = []
        terminator = self.input_terminator
        while True:
            index = self._input.find(terminator)
            if index < 0:
                return lines
            lines.append(bytes(self._input[:index]))
            del self._input[: index + len(terminator)]

    def receive(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Feed host bytes at ``now``; return ``(ready_time, reply bytes)`` pairs."""
        replies: list[tuple[float, bytes]] = []
        for line in self.split_lines(data):
            self.evolve(now)
            self.commands_executed += 1
            # Faults that decide what the instrument does with the command.
            before = self._pick_fault(("instrument_error", "link_lost"), now, line)
            if before is not None and before.kind == "link_lost":
                self.link_down = True
                self.bench.log_command(self.role, now, line, None)
                return replies
            if before is not None:
                reply, duration = self.error_reply(line), 0.0
            else:
                reply, duration = self.execute(line, now)
            self.bench.log_command(self.role, now, line, reply)
            if not reply:
                continue
            ready = now + self.latency + duration + self.transmission_time(len(line) + len(reply))
            # Faults that hit the reply on its way back.
            after = self._pick_fault(("no_reply", "late_reply", "garbled_reply"), now, line)
            if after is None:
                replies.append((ready, reply))
            elif after.kind == "late_reply":
                replies.append((ready + after.delay, reply))
            elif after.kind == "garbled_reply":
                replies.append((ready, self._garble(reply)))
        return replies

    def _pick_fault(self, kinds: tuple[str, ...], now: float, line: bytes) -> Fault | None:
        for fault in self.faults:
            if fault.kind not in kinds or now < fault.start or fault.count == 0:
                continue
            if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                continue
            if fault.count > 0:
                fault.count -= 1
            self.bench.log_fault(self.role, now, fault.kind, line)
            return fault
        return None

    def execute(self, line: bytes, now: float) -> tuple[bytes | None, float]:
        """Handle one line; return the reply and any extra time it takes (s)."""
        return self.handle(line), 0.0

    def transmission_time(self, count: int) -> float:
        return 0.0 if self.baud_rate is None else count * 10.0 / self.baud_rate

    # -- to implement ----------------------------------------------------------

    def handle(self, line: bytes) -> bytes | None:
        raise NotImplementedError

    def evolve(self, now: float) -> None:
        """Bring the physics up to ``now`` (s on the bench clock)."""
        self.now = max(self.now, now)

    def error_reply(self, line: bytes) -> bytes | None:
        """What the instrument answers when it refuses ``line`` (for injected errors)."""
        raise NotImplementedError

    def banner(self) -> bytes:
        """Bytes the instrument prints unasked at power-up."""
        return b""

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass

    def safe_state_report(self) -> dict[str, Any]:
        """The physical facts a test checks for "safe": speeds, powers, shutter."""
        return {}

    # -- faults ----------------------------------------------------------------

    def _garble(self, reply: bytes) -> bytes:
        """Corrupt a reply the way line noise does: one byte flipped, framing kept."""
        body = bytearray(reply)
        candidates = [i for i, b in enumerate(body) if 0x30 <= b <= 0x7A]
        if not candidates:
            return bytes(body)
        index = self.rng.choice(candidates)
        body[index] = body[index] ^ 0x04 if body[index] ^ 0x04 >= 0x20 else body[index] ^ 0x01
        return bytes(body)

    def physical_fault(self, kind: str) -> Fault | None:
        """The active physical fault ``kind``, if any."""
        for fault in self.faults:
            if fault.kind == kind and self.now >= fault.start:
                return fault
        return None

    def fault_start(self, kind: str) -> float | None:
        for fault in self.faults:
            if fault.kind == kind:
                return fault.start
        return None
