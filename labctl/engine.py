"""The run engine: durable steps, resume, quarantine, safe state, interlocks, retries.

A protocol is an ordinary Python function that calls process steps. Every
step that touches hardware goes through :meth:`Run.step`, which

1. on resume, returns the recorded result of a step that finished - no
   instrument is touched (a repeatable set-up step that holds no wafer, such
   as bringing the plate to temperature, is done again: the safe state that
   ended the last process undid it); a step that *started and never finished* leaves its
   wafer quarantined (its physical state is unknown) unless the step is
   declared repeatable (measurements are); a quarantined wafer's later steps
   are skipped - and on an unattended bench :meth:`Run.wafer_part` starts that
   wafer's part of the experiment again on a new wafer from the cassette
   (bounded by the ``spare_wafers`` parameter; see below);
2. otherwise stops here if a stop was requested (first Ctrl-C: "stop at the
   next safe point"), holds while an interlock is tripped (bounded), then
   journals the step as *started* - committed to disk - before anything
   moves, runs it, and journals it as *finished* with its results, time
   series and measurements in one commit.

Replacement wafers: a quarantine found on resume (a wafer-changing step cut
short, or one that failed) costs the wafer, not the night's slot. Unattended,
the part is done again on ``<slot>-r<n>`` (``W01`` -> ``W01-r1`` -> ``W01-r2``),
a new wafer id, so nothing physical is ever done twice on any wafer. The
decision is journaled - the replacement's ``new wafer`` step carries
``replaces`` - and taken from the journal when it holds one, so a second
resume takes the same path; the wafers table links the two (``replaces``) and
an event says so. An attended run keeps the quarantine for its operator.

:func:`execute` wraps a whole protocol: whatever the exit - completed,
aborted, failed, interlocked - the bench is put in its safe state and the
exit status and reason are recorded. A run found *running* whose process is
gone was killed: :func:`recover_killed_runs` records that and puts the bench
in safe state before anything else starts.

The engine knows instruments only through small protocols: a station whose
roles have ``safe_state()``, and a :class:`WaferHandler`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from . import __version__
from .clock import Clock
from .errors import (
    CommunicationError,
    HardwareStateError,
    InputError,
    InstrumentError,
    InterlockTrip,
    LabctlError,
    StorageError,
)
from .progress import StepProgress, describe_step
from .store import RunStore, now_text
from .units import Q_, Quantity, canonical_unit

__all__ = [
    "SAFE_STATE_ORDER",
    "SPARE_WAFERS",
    "STOP_REQUEST",
    "BandInterlock",
    "Run",
    "RunAborted",
    "StepContext",
    "WaferHandler",
    "WaferQuarantined",
    "execute",
    "new_run_id",
    "park_wafers_of",
    "recover_killed_runs",
    "safe_state",
]

log = logging.getLogger(__name__)

#: Roles put in safe state, in this order: light first, then motion and heat.
#: The LED goes off before the shutter is touched: switching a source off
#: cannot make light, so a timed shot in flight ends dark at once, and the
#: shutter (whose only command, ``ens``, toggles) can be left to close itself.
SAFE_STATE_ORDER = (
    "exposure_source",
    "exposure_shutter",
    "spin_coater",
    "hotplate",
    "exposure_stage",
)
#: Query retries (with reconnect) before an instrument counts as silent.
QUERY_RETRIES = 3
#: The event another process records to ask a run to stop at its next safe
#: point (``labctl web``: ``POST /api/runs/{id}/stop``); its message says who
#: asked. The runner reads it at every safe point (``protocols.runner.StopRequests``).
STOP_REQUEST = "stop_request"
#: Fault injection for the kill/resume tests and the fault campaign:
#: ``LABCTL_INJECT_KILL="seq=12,phase=during"`` sends this process SIGKILL at
#: step 12 just after it is journaled (``started``), at its first reading
#: (``during``) or just after it is journaled finished (``finished``);
#: ``phase=stop`` requests a stop (as a first Ctrl-C) there instead, and
#: ``phase=term`` sends the process SIGTERM; ``once=<marker path>`` strikes in
#: the first process only (a supervised queue resumes in a new one).
INJECT_ENV = "LABCTL_INJECT_KILL"
#: While a step runs, its samples so far are committed at most this often (s of
#: wall time), so a reader of the store (``labctl web``) draws the trace as it
#: grows; a step shorter than this (every step on virtual time) writes them all
#: with its end, in one commit, as before.
LIVE_SAMPLE_PERIOD = 0.5
#: The run parameter that bounds replacement wafers per run (0: none). A run
#: whose recorded parameters lack it (made before replacements) gets none.
SPARE_WAFERS = "spare_wafers"


def _injection() -> tuple[int, str] | None:
    spec = os.environ.get(INJECT_ENV)
    if not spec:
        return None
    fields = dict(item.split("=", 1) for item in spec.split(",") if "=" in item)
    return int(fields.get("seq", "0")), fields.get("phase", "started")


_INJECTION = _injection()
#: ``once=<path>`` in the spec: strike only if that marker file does not exist yet.
_INJECTION_ONCE = dict(
    item.split("=", 1) for item in os.environ.get(INJECT_ENV, "").split(",") if "=" in item
).get("once")


def _maybe_inject(run: Run, seq: int, phase: str) -> None:
    if _INJECTION is None or _INJECTION[0] != seq:
        return
    kind = _INJECTION[1]
    if kind == "stop" or kind == "term":
        if phase != "during":
            return
    elif kind != phase:
        return
    if _INJECTION_ONCE:
        # One strike across processes (a supervisor's resumed child is spared):
        # the first process to get here creates the marker file and strikes.
        try:
            os.close(os.open(_INJECTION_ONCE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return
    if kind == "stop":
        run.stop_requested.set()
    elif kind == "term":
        # As a user would: SIGTERM to the process they started (the supervisor,
        # which forwards it), or to this one when nobody supervises it.
        supervised = os.environ.get("LABCTL_SUPERVISED") == "1"
        os.kill(os.getppid() if supervised else os.getpid(), signal.SIGTERM)
    else:
        os.kill(os.getpid(), signal.SIGKILL)


class RunAborted(LabctlError):
    """The operator (or SIGTERM) stopped the run."""


class WaferQuarantined(LabctlError):
    """A wafer's physical state is unknown or unsafe: the rest of the run skips it."""

    def __init__(self, wafer_id: str, reason: str) -> None:
        self.wafer_id = wafer_id
        self.reason = reason
        super().__init__(f"wafer {wafer_id} quarantined: {reason}")


class ProtocolChanged(InputError):
    """On resume, the protocol asked for a different step than the journal holds."""


class WaferHandler(Protocol):
    """Whatever moves wafers and does manual actions: an operator, a robot, the simulator.

    A handler that can tell where a wafer is also has ``where(wafer_id) -> str | None``
    (a tool name, ``"cassette"``, or None for a wafer it does not know); the
    engine then takes its word over the journal's.
    """

    attended: bool

    def new_wafer(self, wafer_id: str) -> None: ...

    def load(self, wafer_id: str, station: str) -> None: ...

    def unload(self, station: str) -> None: ...

    def manual(self, action: str) -> None: ...


def new_run_id(protocol: str, clock_now: datetime | None = None) -> str:
    stamp = (clock_now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{protocol}-{uuid.uuid4().hex[:6]}"


def software_versions() -> dict[str, str]:
    versions = {"labctl": __version__, "python": platform.python_version()}
    for package in ("pyvisa", "pyvisa_py", "pyvisa_sim", "pint", "serial"):
        module = sys.modules.get(package)
        if module is not None:
            versions[package] = str(getattr(module, "__version__", getattr(module, "VERSION", "?")))
    return versions


# -- results to and from JSON ---------------------------------------------------------


def encode(value: Any) -> Any:
    """JSON-able form of a step result: quantities keep their units."""
    if isinstance(value, Quantity):
        return {"__quantity__": [value.magnitude, f"{value.units:~}" or ""]}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": str(value)}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__quantity__" in value:
            magnitude, unit = value["__quantity__"]
            return Q_(magnitude, unit) if unit else Q_(magnitude)
        if "__float__" in value:
            return float(value["__float__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


# -- interlocks --------------------------------------------------------------------------


@dataclass
class BandInterlock:
    """Trips outside ``target +/- tolerance``; clears inside ``tolerance - hysteresis``.

    ``relative`` makes the tolerance a fraction of the target.
    """

    name: str
    channel: str
    tolerance: float
    hysteresis: float
    relative: bool = False
    target: float | None = None
    tripped: bool = False
    message: str = ""

    def arm(self, target: float) -> None:
        self.target = target
        self.tripped = False

    def disarm(self) -> None:
        self.target = None
        self.tripped = False

    def update(self, value: float, unit: str) -> bool:
        """Feed a reading; return True while tripped."""
        if self.target is None:
            return False
        scale = abs(self.target) if self.relative else 1.0
        deviation = abs(value - self.target)
        if not self.tripped and deviation > self.tolerance * scale:
            self.tripped = True
            self.message = (
                f"{self.channel} {value:.4g} {unit} is off target {self.target:.4g} {unit} "
                f"by more than {self.tolerance * scale:.3g} {unit}"
            )
        elif self.tripped and deviation < (self.tolerance - self.hysteresis) * scale:
            self.tripped = False
        return self.tripped


def default_interlocks() -> dict[str, BandInterlock]:
    """The bench's watchers: plate temperature, spin speed, irradiance drift."""
    return {
        "plate_temperature": BandInterlock("plate temperature", "plate_temperature", 3.0, 1.0),
        "spin_speed": BandInterlock("spin speed", "spin_speed", 0.05, 0.02, relative=True),
        "irradiance": BandInterlock("irradiance drift", "irradiance", 0.05, 0.02, relative=True),
    }


# -- the run -----------------------------------------------------------------------------


@dataclass
class StepContext:
    """What a step function gets: its run, its journal number, time series, retries."""

    run: Run
    seq: int
    name: str
    wafer_id: str | None
    started: float
    #: (channel, s in the step, value, canonical unit, bench time s, wall time ISO UTC)
    samples: list[tuple[Any, ...]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    #: How many of ``samples`` are in the store already (see LIVE_SAMPLE_PERIOD).
    flushed: int = 0
    _flushed_at: float = field(default_factory=lambda: time.monotonic())

    @property
    def station(self) -> Any:
        return self.run.station

    @property
    def clock(self) -> Clock:
        return self.run.clock

    def elapsed(self) -> float:
        return self.run.clock.monotonic() - self.started

    def stamp(self) -> dict[str, Any]:
        """Now on both clocks: ``bench_time`` (s since the run started), ``wall_time`` (UTC)."""
        return {"bench_time": self.run.bench_time(), "wall_time": now_text()}

    def record(self, channel: str, value: Any) -> tuple[float, str]:
        """Record a point of a time series (no interlock); return (magnitude, unit spelling)."""
        magnitude = float(value.magnitude)
        unit = canonical_unit(value.units)
        self.samples.append(
            (channel, self.elapsed(), magnitude, unit, self.run.bench_time(), now_text())
        )
        if time.monotonic() - self._flushed_at >= LIVE_SAMPLE_PERIOD:
            self._flush_live()
        return magnitude, unit

    def _flush_live(self) -> None:
        """Commit the samples so far (a long step on a real or served bench)."""
        self._flushed_at = time.monotonic()
        try:
            self.run.store.add_samples(self.run.run_id, self.seq, self.unflushed())
        except LabctlError as exc:
            # Kept in memory and written with the step's end: a failing disk
            # is the step's end's to report, not a reading's.
            log.warning("live samples of step %d not written yet: %s", self.seq, exc)
            return
        self.flushed = len(self.samples)

    def unflushed(self) -> list[tuple[Any, ...]]:
        """The samples not yet in the store."""
        return self.samples[self.flushed :]

    def sample(self, channel: str, value: Any) -> None:
        """Record a point of a time series and feed the channel's interlock."""
        _maybe_inject(self.run, self.seq, "during")
        magnitude, unit = self.record(channel, value)
        interlock = self.run.interlocks.get(channel)
        if interlock is not None and interlock.update(magnitude, unit):
            raise InterlockTrip(interlock.message, interlock=interlock.name)

    def read(self, role: str, reader: Callable[[Any], Any], what: str) -> Any:
        """A query with bounded retries and reconnects; then the instrument is silent."""
        _maybe_inject(self.run, self.seq, "during")
        driver = self.run.station[role]
        for attempt in range(1, QUERY_RETRIES + 2):
            try:
                return reader(driver)
            except CommunicationError as exc:
                self.run.event("retry", f"{what}: attempt {attempt} failed: {exc}")
                if attempt > QUERY_RETRIES:
                    raise InterlockTrip(
                        f"{role} silent: {what} failed {attempt} times ({exc})",
                        interlock="instrument silent",
                    ) from exc
                try:
                    driver.reconnect()
                except LabctlError as reconnect_error:
                    self.run.event("retry", f"{role}: reconnect failed: {reconnect_error}")
        raise AssertionError("unreachable")

    def event(self, kind: str, message: str) -> None:
        self.run.event(kind, message)

    def checkpoint(self) -> None:
        """A point inside a step where fault injection may strike (tests, fault campaign)."""
        _maybe_inject(self.run, self.seq, "during")


class Run:
    """One run in progress: identity, store, station, handler, journal replay."""

    def __init__(
        self,
        *,
        store: RunStore,
        run_id: str,
        station: Any,
        clock: Clock,
        handler: WaferHandler,
        parameters: dict[str, Any],
        formulation: Any = None,
        interlocks: dict[str, BandInterlock] | None = None,
        hold_limit: float = 600.0,
        progress: Callable[[StepProgress], None] | None = None,
        expected_steps: int | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.station = station
        self.clock = clock
        self.handler = handler
        #: wafer -> (station, run clock s) of its last arrival, in this process:
        #: a bake is timed from the wafer's landing on the plate.
        self.arrivals: dict[str, tuple[str, float]] = {}
        self.parameters = parameters
        self.formulation = formulation
        self.interlocks = interlocks if interlocks is not None else default_interlocks()
        self.hold_limit = hold_limit
        self.progress = progress or (lambda event: None)
        #: Steps the protocol plans in all (progress shows step n of it); see expect_remaining.
        self.expected_steps = expected_steps
        #: The run clock's reading at bench time 0: a resumed run goes on from its journal.
        self._bench_zero = clock.monotonic() - store.last_bench_time(run_id)
        self._journal = {step["seq"]: step for step in store.steps(run_id)}
        self._seq = 0
        self.quarantined: dict[str, str] = {
            w: r["reason"] for w, r in store.wafers(run_id).items() if r["state"] == "quarantined"
        }
        self.stop_requested = threading.Event()
        self.replayed = 0
        self.executed = 0
        #: Where each wafer should be, from the protocol's own steps (transfers
        #: return it), replayed or executed.
        self.locations: dict[str, str] = {}
        #: The step that last set each wafer's location (moves after it override it).
        self._located: dict[str, int] = {}
        #: The last step replayed or journaled by this process: a move made now
        #: comes after it. A recovering process starts from the journal's last.
        self.position = 0
        #: Replacement wafers (quarantined -> its replacement, and back), as
        #: decided in this execution of the script - a resume decides the same.
        self.replacements: dict[str, str] = {}
        self.replaces: dict[str, str] = {}
        #: Quarantined wafers whose part was not made good, and why not.
        self.unreplaced: dict[str, str] = {}

    @property
    def formulation_hash(self) -> str | None:
        return self.formulation.content_hash() if self.formulation is not None else None

    def event(self, kind: str, message: str) -> None:
        log.info("%s: %s", kind, message)
        self.store.event(self.run_id, kind, message)

    def quarantine(self, wafer_id: str, reason: str) -> None:
        if wafer_id not in self.quarantined:
            self.quarantined[wafer_id] = reason
            self.store.set_wafer(self.run_id, wafer_id, "quarantined", reason)
            self.event("quarantine", f"wafer {wafer_id}: {reason}")

    def check_stop(self) -> None:
        """A safe point: honour a requested stop."""
        if self.stop_requested.is_set():
            raise RunAborted("stopped by the operator at a safe point")

    def step(
        self,
        name: str,
        function: Callable[[StepContext], Any],
        *,
        wafer: str | None = None,
        parameters: dict[str, Any] | None = None,
        repeatable: bool = False,
    ) -> Any:
        """Run (or replay) one durable step; see the module docstring."""
        self._seq += 1
        seq = self._seq
        params = encode(parameters or {})
        entry = self._journal.get(seq)
        if entry is not None:
            if (
                entry["name"] != name
                or entry["wafer_id"] != wafer
                or entry["parameters"]
                != json.loads(json.dumps(params, sort_keys=True, default=str))
            ):
                raise ProtocolChanged(
                    f"the journal has step {seq} as {entry['name']} on {entry['wafer_id']}, "
                    f"the protocol now asks for {name} on {wafer}",
                    field=f"run {self.run_id}",
                )
            # A repeatable step that holds no wafer sets an instrument up (plate
            # at temperature, irradiance calibrated). The safe state that ended
            # the last process undid it, so it is done again, not replayed.
            setup = repeatable and wafer is None
            if entry["status"] == "finished" and not setup:
                self.position = seq
                self.replayed += 1
                self._report(seq, name, wafer, parameters, replayed=True)
                result = decode(entry["result"])
                self._track(seq, wafer, result)
                return result
            if entry["status"] == "started" and not repeatable:
                # The process died inside it: whatever it did is a fact the
                # journal keeps (as interrupted), even if the wafer is skipped.
                reason = f"step {seq} ({name}) started and never finished: physical state unknown"
                self.store.step_failed(self.run_id, seq, "interrupted", reason)
                entry = {**entry, "status": "interrupted", "error": reason}
            if entry["status"] == "skipped" or (wafer is not None and wafer in self.quarantined):
                self._skip(seq, name, wafer, params)
            if entry["status"] == "interrupted" and not repeatable:
                reason = entry["error"] or f"step {seq} ({name}) interrupted"
                if wafer is not None:
                    self.quarantine(wafer, reason)
                    raise WaferQuarantined(wafer, reason)
                raise HardwareStateError(reason)
            if entry["status"] in ("failed", "interlocked") and not repeatable and wafer:
                self.quarantine(wafer, entry["error"] or f"step {seq} ({name}) failed")
                raise WaferQuarantined(wafer, entry["error"] or "")
        if wafer is not None and wafer in self.quarantined:
            self._skip(seq, name, wafer, params)
        self.check_stop()
        self.hold_interlocks()
        if wafer is not None and name != "new wafer":
            self._ensure_in_place(wafer, name)
        started = self.clock.monotonic()
        self.store.step_started(
            self.run_id, seq, name, wafer, repeatable, params, bench_time=started - self._bench_zero
        )
        self.position = seq
        _maybe_inject(self, seq, "started")
        self._report(seq, name, wafer, parameters)
        context = StepContext(self, seq, name, wafer, started)
        try:
            result = function(context)
        except InterlockTrip as exc:
            self._failed(context, "interlocked", str(exc), repeatable)
            raise
        except (CommunicationError, InstrumentError, HardwareStateError) as exc:
            self._failed(context, "failed", str(exc), repeatable)
            raise
        except BaseException as exc:  # KeyboardInterrupt, a bug: the step did not finish
            self.store.add_samples(self.run_id, seq, context.unflushed())
            self.store.step_failed(
                self.run_id,
                seq,
                "interrupted",
                f"{type(exc).__name__}: {exc}",
                bench_time=self.bench_time(),
            )
            if wafer is not None and not repeatable:
                self.quarantine(
                    wafer, f"step {seq} ({name}) interrupted: {type(exc).__name__}: {exc}"
                )
            raise
        self.store.step_finished(
            self.run_id,
            seq,
            encode(result),
            samples=context.unflushed(),
            measurements=context.measurements,
            bench_time=self.bench_time(),
        )
        self.executed += 1
        _maybe_inject(self, seq, "finished")
        self._track(seq, wafer, result)
        return result

    def bench_time(self) -> float:
        """Seconds on the run's clock since the run started (a resume goes on from its journal)."""
        return self.clock.monotonic() - self._bench_zero

    def expect_remaining(self, steps: int) -> None:
        """The protocol's plan changed: ``steps`` more steps after the ones made so far.

        What progress shows as the total (an adaptive protocol adding a wafer,
        or deciding against one); never below the steps already made.
        """
        self.expected_steps = self._seq + max(0, steps)

    def _report(
        self,
        seq: int,
        name: str,
        wafer: str | None,
        parameters: dict[str, Any] | None,
        *,
        replayed: bool = False,
    ) -> None:
        """Tell the progress display about a step; its failure never touches the run."""
        total = None if self.expected_steps is None else max(self.expected_steps, seq)
        try:
            self.progress(
                StepProgress(
                    run_id=self.run_id,
                    seq=seq,
                    total=total,
                    name=name,
                    wafer=wafer,
                    detail=describe_step(name, parameters),
                    bench_time=self.bench_time(),
                    wall_time=datetime.now(UTC),
                    replayed=replayed,
                )
            )
        except Exception as exc:  # a display (a closed pipe...) must not stop the bench
            log.warning("progress display failed: %s", exc)

    def _track(self, seq: int, wafer: str | None, result: Any) -> None:
        """Steps that move a wafer say where it ended up (``location``)."""
        if wafer is not None and isinstance(result, dict) and "location" in result:
            self.locations[wafer] = result["location"]
            self._located[wafer] = seq

    # -- where the wafers are ------------------------------------------------------------

    def where(self, wafer: str) -> str | None:
        """Where ``wafer`` physically is: a tool, ``"cassette"``, or None if nobody can tell.

        The handler's word when it can tell (a robot, the bench's handler);
        otherwise the journal's: the protocol's last move of the wafer,
        overridden by the engine's own journaled moves since (parking at an
        exit, bringing back on resume). A move that started and never ended
        leaves the place unknown.
        """
        locate = getattr(self.handler, "where", None)
        if locate is not None:
            told = locate(wafer)
            return None if told is None else str(told)
        place: str | None = self.locations.get(wafer, "cassette")
        since = self._located.get(wafer, 0)
        for move in self.store.moves(self.run_id):
            if move["wafer_id"] != wafer or move["after_seq"] < since:
                continue
            place = str(move["destination"]) if move["status"] == "finished" else None
        return place

    def move(self, wafer: str, destination: str, reason: str) -> None:
        """Move a wafer on the engine's own account, journaled before and after.

        One handler action per move (a tool to the cassette, or the cassette
        to a tool); the protocol's own transfers are steps, not moves.
        """
        origin = self.where(wafer)
        if origin is None:
            raise HardwareStateError(f"wafer {wafer}: nobody can tell where it is")
        if origin == destination:
            return
        if "cassette" not in (origin, destination):
            self.move(wafer, "cassette", reason)
            origin = "cassette"
        move_id = self.store.move_started(
            self.run_id,
            wafer,
            after_seq=self.position,
            origin=origin,
            destination=destination,
            reason=reason,
        )
        try:
            if destination == "cassette":
                self.handler.unload(origin)
            else:
                self.handler.load(wafer, destination)
        except BaseException as exc:
            self.store.move_ended(move_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
        self.store.move_ended(move_id, "finished")
        self.event("move", f"wafer {wafer}: {origin} -> {destination} ({reason})")

    def _ensure_in_place(self, wafer: str, name: str) -> None:
        """Before a step acts on ``wafer``: it is where the protocol put it, or is brought back.

        (A transfer only needs to know where the wafer is: it starts from there.)

        A resume after an exit that parked the wafer brings it back from the
        cassette; a wafer nobody can find, or that cannot be brought back, is
        quarantined - the step is refused, nothing acts on the wrong place.
        """
        expected = self.locations.get(wafer, "cassette")
        try:
            actual = self.where(wafer)
        except (CommunicationError, InstrumentError) as exc:
            actual, error = None, f"the handler cannot say where it is ({exc})"
        else:
            error = "nobody can tell where it is (a move was interrupted)"
        if actual == expected or (actual is not None and name == "transfer"):
            return  # a transfer takes the wafer from wherever it really is
        if actual is not None:
            try:
                self.move(wafer, expected, f"back where the protocol left it, before {name}")
                if self.where(wafer) == expected:
                    return
                error = f"still not on {expected} after bringing it back"
            except (LabctlError, ValueError) as exc:
                error = f"on {actual}, and it could not be brought back to {expected}: {exc}"
        reason = f"before {name}: wafer {wafer} should be on {expected}; {error}"
        self.quarantine(wafer, reason)
        raise WaferQuarantined(wafer, reason)

    def confirm_at(self, wafer: str, tool: str) -> str:
        """Evidence that ``wafer`` is on ``tool`` now: ``"handler"`` or ``"journal"``.

        Raises :class:`HardwareStateError` when the handler (or the journal)
        places it elsewhere - an exposure is never recorded on a wafer that
        was not under the beam.
        """
        place = self.where(wafer)
        if place != tool:
            raise HardwareStateError(
                f"wafer {wafer} is not on {tool} (it is {'unknown' if place is None else place})"
            )
        return "handler" if getattr(self.handler, "where", None) is not None else "journal"

    def park(self, wafer: str, reason: str) -> None:
        """Take a wafer off whatever tool holds it into the cassette (unattended handlers).

        Journaled as a move, so a resume knows and brings it back; an attended
        run leaves the wafers where they are for the operator.
        """
        if getattr(self.handler, "attended", True):
            return
        try:
            place = self.where(wafer)
            if place in (None, "cassette"):
                return
            self.move(wafer, "cassette", reason)
        except Exception as exc:  # recorded, never masks the run's own outcome
            log.error("could not park wafer %s: %s", wafer, exc)
            with contextlib.suppress(Exception):
                self.event("park", f"wafer {wafer} could not be parked: {exc}")

    def _skip(self, seq: int, name: str, wafer: str | None, params: Any) -> None:
        reason = f"wafer {wafer} is quarantined"
        self.store.step_skipped(
            self.run_id, seq, name, wafer, params, reason, bench_time=self.bench_time()
        )
        raise WaferQuarantined(wafer or "", self.quarantined.get(wafer or "", reason))

    def _failed(self, context: StepContext, status: str, message: str, repeatable: bool) -> None:
        self.store.add_samples(self.run_id, context.seq, context.unflushed())
        self.store.step_failed(
            self.run_id, context.seq, status, message, bench_time=self.bench_time()
        )
        self.event(status, f"step {context.seq} ({context.name}): {message}")
        if context.wafer_id is not None and not repeatable:
            self.quarantine(
                context.wafer_id, f"step {context.seq} ({context.name}) {status}: {message}"
            )

    def hold_interlocks(self) -> None:
        """Before a step: wait (bounded) while any interlock is tripped."""
        tripped = [i for i in self.interlocks.values() if i.tripped]
        if not tripped:
            return
        waited = 0.0
        self.event("hold", "; ".join(i.message for i in tripped))
        while any(i.tripped for i in self.interlocks.values()):
            if waited >= self.hold_limit:
                names = ", ".join(i.name for i in self.interlocks.values() if i.tripped)
                raise InterlockTrip(f"still tripped after {waited:g} s: {names}", interlock=names)
            self.clock.sleep(1.0)
            waited += 1.0
            self.check_stop()

    # -- replacement wafers -----------------------------------------------------------

    @property
    def spare_limit(self) -> int:
        """Replacement wafers this run may use (the ``spare_wafers`` parameter; 0 if absent)."""
        return int(self.parameters.get(SPARE_WAFERS, 0) or 0)

    def replaced_wafer(self, wafer: str) -> str | None:
        """The quarantined wafer that ``wafer`` replaces, if it is a replacement."""
        return self.replaces.get(wafer)

    def wafer_part(self, wafer: str, part: Callable[[str], Any]) -> tuple[str, Any] | None:
        """One wafer's part of the experiment; unattended, a quarantine is made good.

        ``part(wafer_id)`` makes the wafer's steps. A quarantine ends that wafer's
        part, not the run: the rest of its steps are skipped and an unattended
        handler parks it. Then, unattended and while spares last, the part
        starts again on a replacement (a new wafer id: see the module
        docstring). Returns ``(the wafer that did the part, what part returned)``
        or None when the part was lost (attended, or no spare left).
        """
        current = wafer
        while True:
            begun = self._seq
            try:
                result = part(current)
            except WaferQuarantined as exc:
                self.event(
                    "skip", f"wafer {exc.wafer_id}: rest of its steps skipped ({exc.reason})"
                )
                # The tools are freed for the next wafer; nothing else is done to it.
                self.park(current, "quarantined")
                replacement = self._replacement(current, exc.reason)
                if replacement is None:
                    return None
                if self.expected_steps is not None:
                    # Progress: the part is made again in full; the plan had it once.
                    self.expected_steps += self._seq - begun
                current = replacement
                continue
            if current in self.quarantined:
                return None
            self.store.set_wafer(self.run_id, current, "done")
            return current, result

    def _replacement(self, wafer: str, reason: str) -> str | None:
        """The wafer that takes over the quarantined ``wafer``'s part, or None.

        The journal decides first: if it holds a step after this point, that is
        the path the run took (a ``new wafer`` step that ``replaces`` this wafer,
        or something else - then no replacement). Only past the journal's end is
        a new decision made, from what the journal replays the same way every
        time (the replacements so far, the recorded ``spare_wafers``), so a
        resume after any kill takes the same path.
        """
        if getattr(self.handler, "attended", True):
            return None  # the operator decides what becomes of the slot
        limit = self.spare_limit
        used = len(self.replacements)
        following = self._journal.get(self._seq + 1)
        if following is not None:
            parameters = following["parameters"]
            if (
                following["name"] == "new wafer"
                and isinstance(parameters, dict)
                and parameters.get("replaces") == wafer
                and following["wafer_id"]
            ):
                return self._replace(wafer, str(following["wafer_id"]), reason)
        if following is not None or used >= limit:
            if used >= limit:
                why = (
                    f"no spare wafer left ({SPARE_WAFERS} = {limit}, all used)"
                    if limit
                    else f"no spare wafers ({SPARE_WAFERS} = 0)"
                )
            else:
                why = "the journal went on without a replacement"
            self.unreplaced[wafer] = why
            message = f"wafer {wafer} not replaced: {why}"
            if not any(e["message"] == message for e in self.store.events(self.run_id)):
                self.event("replace", message)
            return None
        slot, attempt = wafer, 1
        while slot in self.replaces:
            slot, attempt = self.replaces[slot], attempt + 1
        # Every wafer the run has named so far (the journal to this point, the
        # same at every resume that gets here) and the replacements decided.
        taken = {s["wafer_id"] for s in self.store.steps(self.run_id)} | set(self.replaces)
        candidate = f"{slot}-r{attempt}"
        while candidate in taken:  # a name the run used already for another wafer
            attempt += 1
            candidate = f"{slot}-r{attempt}"
        return self._replace(wafer, candidate, reason)

    def _replace(self, wafer: str, replacement: str, reason: str) -> str:
        """Record that ``replacement`` takes over ``wafer``'s part (once in the store)."""
        self.replacements[wafer] = replacement
        self.replaces[replacement] = wafer
        if replacement not in self.store.wafers(self.run_id):
            self.store.set_wafer(self.run_id, replacement, "pending", replaces=wafer)
            self.event(
                "replace",
                f"wafer {replacement} replaces {wafer} (quarantined: {reason}); "
                f"spare {len(self.replacements)} of {self.spare_limit}",
            )
        return replacement

    @contextmanager
    def wafer_scope(self, wafer_id: str) -> Iterator[None]:
        """Steps of one wafer: a quarantine ends this wafer's part, not the run.

        No replacement here (a ``with`` block cannot run again): the standard
        experiments use :meth:`wafer_part`.
        """
        try:
            yield
        except WaferQuarantined as exc:
            self.event("skip", f"wafer {exc.wafer_id}: rest of its steps skipped ({exc.reason})")
            # The tools are freed for the next run; nothing else is done to it.
            self.park(wafer_id, "quarantined")
        else:
            if wafer_id not in self.quarantined:
                self.store.set_wafer(self.run_id, wafer_id, "done")


def failures_line(failures: list[str]) -> str:
    """Safe-state failures in one readable line: a bench that is gone fails every
    role with much the same words, and five of them made a line of 1,300
    characters. Every failure is in the run's events in full (``safe_state``)."""
    if len(failures) <= 2:
        return "; ".join(failures)
    roles = [failure.split(":", 1)[0] for failure in failures]
    return f"{len(failures)} roles ({', '.join(roles)}); first {failures[0]} (all in the events)"


def safe_state(station: Any, record: Callable[[str, str], None] | None = None) -> list[str]:
    """Shutter closed, source off, spinner stopped, hotplate to standby, stage stopped.

    Every role is attempted even if an earlier one fails; returns the failures.
    """
    failures = []
    for role in SAFE_STATE_ORDER:
        try:
            driver = station[role]
        except KeyError:
            continue
        action = getattr(driver, "safe_state", None)
        if action is None:
            continue
        try:
            try:
                action()
            except CommunicationError:
                # A lost link is the likeliest reason: reopen it once and try again.
                driver.reconnect()
                action()
            except StorageError:
                # A failing disk under a simulated instrument's files is reported
                # once; the instrument itself goes on: try again.
                action()
            message = f"{role}: safe"
        except Exception as exc:  # every role must be tried, whatever one raises
            failures.append(f"{role}: {exc}")
            message = f"{role}: FAILED: {exc}"
        if record:
            try:
                record("safe_state", message)
            except Exception as exc:  # a failing disk must not stop the bench going safe
                log.error("could not record %r: %s", message, exc)
    return failures


@contextmanager
def _signals(run: Run) -> Iterator[None]:
    """First SIGINT: stop at the next safe point. Second SIGINT or SIGTERM: abort now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_int = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)

    def on_interrupt(signum: int, frame: Any) -> None:
        if run.stop_requested.is_set():
            raise KeyboardInterrupt
        run.stop_requested.set()
        print(
            "\nlabctl: stopping at the next safe point (Ctrl-C again aborts now)", file=sys.stderr
        )

    parent = os.getppid()

    def on_terminate(signum: int, frame: Any) -> None:
        # A supervised child is sent SIGTERM when its supervisor dies (kill -9
        # of the `labctl` the operator started): say which it was.
        if os.getppid() != parent:
            raise RunAborted("terminated: its supervising labctl process died (SIGTERM)")
        raise RunAborted("terminated (SIGTERM)")

    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def execute(run: Run, protocol: Callable[[Run], Any]) -> tuple[str, str]:
    """Run ``protocol`` under safe-state and status recording; return (status, reason)."""
    run.store.mark_running(run.run_id)
    status, reason = "failed", "unknown"
    try:
        with _signals(run):
            protocol(run)
        # A quarantined wafer whose part a replacement did costs nothing but the wafer.
        lost = {w: r for w, r in run.quarantined.items() if w not in run.replacements}
        replaced = "".join(f"; wafer {new} replaced {old}" for old, new in run.replacements.items())
        if lost:
            status = "incomplete"
            reason = (
                f"{len(lost)} wafer(s) quarantined: "
                + "; ".join(
                    f"{w}: {r}"
                    + (f" (not replaced: {run.unreplaced[w]})" if w in run.unreplaced else "")
                    for w, r in lost.items()
                )
                + replaced
            )
        else:
            status, reason = (
                "completed",
                f"{run.executed} steps executed, {run.replayed} replayed from the journal"
                + replaced,
            )
    except RunAborted as exc:
        status, reason = "aborted", str(exc)
    except KeyboardInterrupt:
        status, reason = "aborted", "aborted by the operator (second Ctrl-C)"
    except InterlockTrip as exc:
        status, reason = "interlocked", str(exc)
    except LabctlError as exc:
        status, reason = "failed", str(exc)
    except Exception as exc:
        status, reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
        raise
    finally:
        failures = safe_state(run.station, run.event)
        if failures:
            reason += "; SAFE STATE INCOMPLETE: " + failures_line(failures)
        if status != "completed":
            _park_wafers(run)
        try:
            run.store.finish_run(run.run_id, status, reason)
        except LabctlError as exc:
            # The store cannot take it (a failing disk): the bench is safe all the
            # same; the next start finds the run "running" and records it killed.
            log.error(
                "could not record the end of run %s (%s: %s): %s", run.run_id, status, reason, exc
            )
            reason += f"; NOT RECORDED: {exc}"
    return status, reason


def _park_wafers(run: Run) -> None:
    """After a run that did not complete, an unattended handler clears the tools (journaled).

    Every wafer the journal names, not only those whose moves finished: a
    step cut short may have loaded one (the handler says where it really is).
    """
    wafers = dict.fromkeys(run.locations)
    try:
        wafers.update(dict.fromkeys(s["wafer_id"] for s in run.store.steps(run.run_id)))
    except LabctlError as exc:  # a failing store: park what this process knows
        log.error("could not read the journal of %s: %s", run.run_id, exc)
    for wafer_id in wafers:
        if wafer_id:
            run.park(wafer_id, "the run ended")


def recover_killed_runs(
    store: RunStore,
    station: Any,
    handler_for: Callable[[str], WaferHandler] | None = None,
) -> list[str]:
    """Runs left *running* by a dead process: make the bench safe, record them killed.

    With ``handler_for(run_id)`` (an unattended handler), each killed run's
    wafers are then taken off the tools into the cassette - journaled moves,
    so its resume brings them back - and the tools are free for what comes next.
    """
    killed = [r["run_id"] for r in store.interrupted_runs()]
    if not killed:
        return []
    failures = safe_state(station)
    for run_id in killed:
        store.event(run_id, "killed", f"process {os.getpid()} found it running with no process")
        for failure in failures:
            store.event(run_id, "safe_state", f"FAILED: {failure}")
        store.finish_run(
            run_id,
            "killed",
            "the process died mid-run; bench put in safe state"
            + (f" (incomplete: {'; '.join(failures)})" if failures else ""),
        )
        if handler_for is not None:
            park_wafers_of(store, run_id, station, handler_for(run_id))
    return killed


def park_wafers_of(store: RunStore, run_id: str, station: Any, handler: WaferHandler) -> None:
    """Park every wafer of a run that is not running here (a killed one), journaled."""
    run = Run(
        store=store,
        run_id=run_id,
        station=station,
        clock=station.clock,
        handler=handler,
        parameters={},
    )
    run.position = store.last_seq(run_id)
    wafers = dict.fromkeys(s["wafer_id"] for s in store.steps(run_id) if s["wafer_id"])
    for wafer_id in wafers:
        run.park(wafer_id, "its run was killed")


def utc_now() -> str:
    return now_text()
