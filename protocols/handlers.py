"""Who moves the wafers: an operator at the bench, or the simulated wafer handler.

The engine asks a :class:`labctl.engine.WaferHandler` to create, load and
unload wafers and to do the manual actions (dispense resist, dispense
developer, rinse, dry). Attended runs prompt the operator; unattended runs
need a handler that serves those steps - on the virtual bench, the bench's
own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BenchHandler", "OperatorHandler", "SocketHandler"]

MANUAL_ACTIONS = ("dispense resist", "dispense developer", "rinse", "dry")
STATION_NAMES = {
    "spin_coater": "the spin coater chuck",
    "hotplate": "the hotplate",
    "exposure_stage": "the exposure stage",
    "ellipsometer": "the ellipsometer stage",
}


class OperatorHandler:
    """A person does it: each action is a prompt, confirmed with Enter."""

    attended = True

    def __init__(self, prompt: Callable[[str], str] | None = None) -> None:
        self.prompt = prompt or input

    def _ask(self, text: str) -> str:
        return self.prompt(f"[operator] {text} - press Enter when done: ")

    def new_wafer(self, wafer_id: str) -> None:
        answer = self._ask(f"take a clean wafer and label it {wafer_id} (or type its id)").strip()
        if answer and answer != wafer_id:
            raise ValueError(f"wafer id {answer!r} given where {wafer_id!r} was expected")

    def load(self, wafer_id: str, station: str) -> None:
        self._ask(f"put wafer {wafer_id} on {STATION_NAMES.get(station, station)}")

    def unload(self, station: str) -> None:
        self._ask(f"take the wafer off {STATION_NAMES.get(station, station)} into the cassette")

    def manual(self, action: str) -> None:
        self._ask(f"{action} on the wafer on the spin coater")


class BenchHandler:
    """The virtual bench's wafer handler: serves every transfer and manual action."""

    attended = False

    def __init__(self, bench: Any) -> None:
        self.bench = bench

    def new_wafer(self, wafer_id: str) -> None:
        if wafer_id not in self.bench.wafers:
            self.bench.new_wafer(wafer_id)

    def load(self, wafer_id: str, station: str) -> None:
        self.bench.load(wafer_id, station)

    def unload(self, station: str) -> None:
        self.bench.unload(station)

    def park(self, wafer_id: str) -> str | None:
        """Take a (quarantined) wafer off its tool into the cassette; return the tool."""
        wafer = self.bench.wafers.get(wafer_id)
        if wafer is None or wafer.location == "cassette":
            return None
        tool = str(wafer.location)
        self.bench.unload(tool)
        return tool

    def manual(self, action: str) -> None:
        if action == "dispense resist":
            self.bench.dispense_resist()
        elif action == "dispense developer":
            self.bench.dispense_developer()
        elif action == "rinse":
            self.bench.rinse()
        elif action == "dry":
            self.bench.spin_dry()
        else:
            raise ValueError(f"unknown manual action {action!r}")


class SocketHandler:
    """A wafer handler reached over TCP, speaking labctl's handler protocol.

    ``docs/instruments/wafer_handler.md``: one ASCII line per command, one
    reply line, ``OK[ value]`` or ``ERR reason``. Serves unattended runs on a
    bench that has one (the served virtual bench does).
    """

    attended = False

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self.timeout = timeout
        self._stream: Any = None

    def _call(self, command: str) -> str:
        import socket

        from labctl.errors import InstrumentError, LinkLost

        for attempt in (1, 2):
            try:
                if self._stream is None:
                    connection = socket.create_connection(self.address, timeout=self.timeout)
                    self._stream = connection.makefile("rwb")
                self._stream.write(command.encode("ascii") + b"\n")
                self._stream.flush()
                reply = self._stream.readline().decode("ascii", "replace").strip()
                if not reply:
                    raise OSError("the handler closed the connection")
                break
            except OSError as exc:
                self._stream = None
                if attempt == 2 or command.split()[0] not in ("WHERE", "TIME"):
                    # An action is never re-sent blindly: the caller decides.
                    raise LinkLost(f"wafer handler {self.address}: {exc}") from exc
        if reply.startswith("ERR"):
            raise InstrumentError(reply[4:], instrument="wafer handler", command=command)
        return str(reply[3:])

    def new_wafer(self, wafer_id: str) -> None:
        from labctl.errors import InstrumentError

        try:
            self._call(f"WHERE {wafer_id}")  # it exists already (a resumed run): keep it
        except InstrumentError:
            self._call(f"NEW {wafer_id}")

    def load(self, wafer_id: str, station: str) -> None:
        self._call(f"LOAD {wafer_id} {station}")

    def unload(self, station: str) -> None:
        self._call(f"UNLOAD {station}")

    def manual(self, action: str) -> None:
        commands = {
            "dispense resist": "DISPENSE RESIST",
            "dispense developer": "DISPENSE DEVELOPER",
            "rinse": "RINSE",
            "dry": "DRY",
        }
        self._call(commands[action])

    def park(self, wafer_id: str) -> str | None:
        from labctl.errors import InstrumentError

        try:
            where = self._call(f"WHERE {wafer_id}")
        except InstrumentError:
            return None
        if where in ("", "cassette"):
            return None
        self._call(f"UNLOAD {where}")
        return where
