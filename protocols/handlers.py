"""Who moves the wafers: an operator at the bench, or the simulated wafer handler.

The engine asks a :class:`labctl.engine.WaferHandler` to create, load and
unload wafers and to do the manual actions (dispense resist, dispense
developer, rinse, dry). Attended runs prompt the operator; unattended runs
need a handler that serves those steps - on the virtual bench, the bench's
own - or a wafer handler reached over TCP (:class:`labctl.handler.SocketHandler`,
the station file's ``[handler]``; re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labctl.engine import RunAborted
from labctl.errors import InputError
from labctl.handler import SocketHandler

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
        try:
            return self.prompt(f"[operator] {text} - press Enter when done: ")
        except EOFError:
            # Nobody can answer any more (stdin closed, a terminal gone): the
            # operator's abort, at this safe point, not an internal error.
            raise RunAborted(
                f"aborted: the operator's input closed at the prompt '{text}'"
            ) from None

    def new_wafer(self, wafer_id: str) -> None:
        answer = self._ask(f"take a clean wafer and label it {wafer_id} (or type its id)").strip()
        if answer and answer != wafer_id:
            raise InputError(
                f"the operator gave {answer!r} where {wafer_id!r} was expected",
                field="wafer id",
            )

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

    def where(self, wafer_id: str) -> str | None:
        """The tool holding the wafer, ``"cassette"``, or None for a wafer the bench lacks."""
        wafer = self.bench.wafers.get(wafer_id)
        return None if wafer is None else str(wafer.location)

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
