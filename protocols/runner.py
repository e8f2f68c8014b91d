"""Compose a run: recipe, formulation, station (real or simulated), handler, store, engine.

This is what ``labctl run`` and ``labctl resume`` call. Everything a user
gives is validated before any instrument is touched: the protocol name, the
recipe and ``--set`` values, the formulation file, the station file, and
whether an unattended run has someone (a handler) to move its wafers.
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.benchlock import BenchLock, held_by_parent
from labctl.clock import Clock, ScaledClock
from labctl.engine import (
    STOP_REQUEST,
    Run,
    decode,
    encode,
    execute,
    new_run_id,
    recover_killed_runs,
    software_versions,
)
from labctl.errors import InputError, LabctlError, RecipeError
from labctl.files import file_bytes
from labctl.formulation import Formulation, load_formulation, parse_formulation
from labctl.plugins import ProtocolSpec as Protocol
from labctl.plugins import open_bench, protocol
from labctl.progress import StepProgress
from labctl.recording import NullRecorder, Recorder
from labctl.shipper import start_shipping
from labctl.station import Station, StationConfig, load_station
from labctl.store import RunStore

from .handlers import BenchHandler, OperatorHandler, SocketHandler
from .recipes import load_recipe, resolve_parameters

log = logging.getLogger(__name__)

__all__ = [
    "STOP_REQUEST",
    "RunOutcome",
    "RunRequest",
    "StopRequests",
    "expected_steps",
    "recover",
    "resume",
    "safe_bench",
    "start",
    "validate",
]


@dataclass
class RunRequest:
    """What ``labctl run`` was asked to do."""

    protocol: str
    data_dir: Path
    formulation: Path
    sim: bool = False
    station: Path | None = None
    recipe: Path | None = None
    overrides: Sequence[str] = ()
    unattended: bool = False
    operator: str = field(default_factory=lambda: _user())
    seed: int = 0
    prompt: Callable[[str], str] | None = None
    #: The station file is trusted to name ``"module:Class"`` drivers (``--allow-import``).
    allow_import: bool = False
    #: Record every byte of the session to this file (``--record``; ``docs/recording.md``).
    record: Path | None = None


@dataclass
class RunOutcome:
    run_id: str
    status: str
    reason: str
    data_dir: Path
    measurements: int
    steps_executed: int
    steps_replayed: int
    quarantined: dict[str, str]
    #: Runs found killed (and recovered) before this one started.
    recovered: list[str] = field(default_factory=list)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _protocol(name: str) -> Protocol:
    """The protocol registered as ``name`` (``labctl.protocols``); InputError if none."""
    return protocol(name)


def validate(
    request: RunRequest,
) -> tuple[Protocol, dict[str, Any], dict[str, Any] | None, Formulation]:
    """Everything checked, nothing moved: (protocol, parameters, recipe table, formulation)."""
    protocol = _protocol(request.protocol)
    if not request.sim and request.station is None:
        raise InputError("give --sim or --station FILE", field="station")
    if request.sim and request.station is not None:
        raise InputError(
            "--sim runs on the virtual bench and --station on the bench of a station file:"
            " give one of them",
            field="--sim --station",
        )
    recipe_table = None
    source = "recipe"
    if request.recipe is not None:
        named, recipe_table = load_recipe(request.recipe)
        source = str(request.recipe)
        if named is not None and named != protocol.name:
            raise RecipeError(
                f"the recipe is for {named!r}, not {protocol.name!r}",
                source=source,
                field="protocol",
            )
    parameters = resolve_parameters(
        protocol.parameters, recipe_table, request.overrides, recipe_source=source
    )
    check_parameters(protocol, parameters, source)
    formulation = load_formulation(request.formulation)
    if request.station is not None:
        from labctl.station import load_station

        # The whole station file, checked before a run is recorded or a port opens.
        config = load_station(request.station, allow_import=request.allow_import)
        if request.unattended and not request.sim and config.handler is None:
            raise InputError(
                "an unattended run needs a wafer handler for its transfers and manual steps; "
                "this station has none (add [handler] address, run attended, or --sim)",
                field="--unattended",
            )
    return protocol, parameters, recipe_table, formulation


def check_parameters(protocol: Protocol, values: dict[str, Any], source: str) -> None:
    """Checks across parameters that the per-value ranges cannot express."""
    if protocol.name == "contrast-curve":
        if values["dose_min"] >= values["dose_max"]:
            raise RecipeError(
                f"dose_min {values['dose_min']:~P} must be below dose_max {values['dose_max']:~P}",
                source=source,
                field="parameters.dose_min",
            )
        import math

        side = math.ceil(math.sqrt(values["fields"]))
        reach = (side - 1) / 2 * values["field_pitch"].m_as("mm") * math.sqrt(2) + 2.5
        if reach > 40.0:
            raise RecipeError(
                f"{values['fields']} fields at {values['field_pitch']:~P} reach {reach:.1f} mm "
                "from the centre; the usable wafer radius is 40 mm",
                source=source,
                field="parameters.field_pitch",
            )


class _Simulation:
    """The in-process virtual bench of a data directory, with the resist of a formulation.

    Found by name (``labctl.benches``: ``virtual``), as ``--sim`` asks.
    """

    def __init__(self, data_dir: Path, seed: int, formulation: Formulation | None) -> None:
        self.bench: Any = open_bench(
            "virtual", data_dir=data_dir, seed=seed, formulation=formulation
        )

    def station(self) -> Station:
        station: Station = self.bench.station()
        return station

    def close(self) -> None:
        self.bench.close()


class _Bench:
    """The bench a run drives, held for it alone: station, handler, locks.

    Opening it takes the data directory's bench lock (unless a supervisor
    holds it for this process) and, on a bench with a wafer handler, the
    handler's own lock - both before any instrument port opens - then
    connects every role and recovers whatever a killed run left behind.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        sim: bool,
        station_file: Path | None,
        seed: int,
        formulation: Formulation | None,
        unattended: bool,
        prompt: Callable[[str], str] | None = None,
        lock: bool = True,
        wait: float = 0.0,
        on_wait: Callable[[str], None] | None = None,
        allow_import: bool = False,
        recorder: Recorder | None = None,
    ) -> None:
        self.store = store
        self.sim = sim
        recorder = recorder or NullRecorder()
        self.unattended = unattended
        self.prompt = prompt
        self.recovered: list[str] = []
        self._lock = BenchLock(store.data_dir)
        self._simulation: _Simulation | None = None
        self._guard: SocketHandler | None = None
        self.station: Station | None = None
        try:
            if lock and not held_by_parent(store.data_dir):
                self._lock.acquire(wait=wait, on_wait=on_wait)
            if sim:
                self._simulation = _Simulation(store.data_dir, seed, formulation)
                self.station = self._simulation.station()
                recorder.begin(self.station.config)
                self.station = recorder.station(self.station)
            else:
                assert station_file is not None
                config = load_station(station_file, allow_import=allow_import)
                recorder.begin(config)
                clock = None
                if config.handler is not None:
                    self._guard = SocketHandler.from_station(config)
                    recorder.attach_handler(self._guard)
                    self._guard.lock(
                        f"labctl pid {os.getpid()} data {store.data_dir.resolve()}",
                        wait=wait,
                        on_wait=on_wait,
                    )
                    clock = served_clock(config, self._guard)
                self.station = recorder.station(Station(config, clock=clock))
            recorder.phase("connect")
            results = self.station.connect()
            failed = [r for r in results if not r.ok]
            if failed:
                raise InputError(
                    "; ".join(f"{r.role}: {r.error}" for r in failed), field="station connect"
                )
            self.roles = [r.role for r in results]
            recorder.phase("recover")
            self.recovered = recover_killed_runs(store, self.station, self.handler_for)
        except BaseException:
            self.close()
            raise

    def handler_for(self, run_id: str) -> Any:
        """The wafer handler a run uses on this bench (its wafers prefixed by its id)."""
        if self._simulation is not None:
            return _NamespacedHandler(BenchHandler(self._simulation.bench), run_id)
        if self.unattended and self._guard is not None:
            return _NamespacedHandler(self._guard, run_id)
        return OperatorHandler(self.prompt)

    def close(self) -> None:
        if self.station is not None:
            self.station.close()
        if self._simulation is not None:
            self._simulation.close()
        if self._guard is not None:
            self._guard.close()
        self._lock.release()




class StopRequests(threading.Event):
    """A run's stop request that another process can make through the store.

    Set in this process as before (a first Ctrl-C; the queue's cancel, through
    ``inner``), or by a :data:`STOP_REQUEST` event of the run recorded after
    this process took the run up. The engine asks at every safe point, so the
    run stops before its next step, as after a first Ctrl-C.
    """

    def __init__(self, inner: threading.Event, store: RunStore, run_id: str) -> None:
        super().__init__()
        self._inner = inner
        self._store = store
        self._run_id = run_id
        # Requests from an earlier process of this run (stopped, now resumed) are spent.
        self._mark = store.event_mark()

    def is_set(self) -> bool:
        if self._inner.is_set():
            return True
        try:
            asked = self._store.events_since(self._run_id, self._mark)
        except LabctlError:
            return False  # a store that cannot be read asks for nothing
        if any(event["kind"] == STOP_REQUEST for event in asked):
            self._inner.set()
            return True
        return False

    def set(self) -> None:
        self._inner.set()

    def clear(self) -> None:
        self._inner.clear()


def served_clock(config: StationConfig, handler: SocketHandler) -> Clock | None:
    """The clock a run on a served bench waits on: the one its handler publishes.

    The bench's word wins over the station file's ``[clock]``: a file kept
    from an earlier ``labctl sim serve`` (the same bench restarted at another
    speed) must not time bakes 100x wrong. ``None`` (a handler that keeps no
    clock, as a real one): the file's ``[clock]`` if any, else real time.
    """
    published = handler.clock()
    if published is None:
        return None
    speed, epoch = published
    if config.clock_speed is not None and config.clock_speed != speed:
        # (The epoch moves at every restart of the server: only the speed is news.)
        log.warning(
            "%s: [clock] says %gx real time; the served bench runs %gx: using the bench's",
            config.source,
            config.clock_speed,
            speed,
        )
    return ScaledClock(speed, epoch=epoch)


def _run(
    request_sim: bool,
    station_file: Path | None,
    store: RunStore,
    run_id: str,
    protocol: Protocol,
    parameters: dict[str, Any],
    formulation: Formulation,
    seed: int,
    prompt: Callable[[str], str] | None,
    progress: Callable[[StepProgress], None] | None,
    unattended: bool = False,
    lock: bool = True,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    allow_import: bool = False,
    stop: threading.Event | None = None,
    recorder: Recorder | None = None,
) -> tuple[str, str, Run, list[str]]:
    recorder = recorder or NullRecorder()
    bench = _Bench(
        store,
        sim=request_sim,
        station_file=station_file,
        seed=seed,
        formulation=formulation,
        unattended=unattended,
        prompt=prompt,
        lock=lock,
        wait=wait,
        on_wait=on_wait,
        allow_import=allow_import,
        recorder=recorder,
    )
    try:
        assert bench.station is not None
        station = bench.station
        handler = recorder.handler(bench.handler_for(run_id))
        snapshot = {role: station[role].snapshot() for role in bench.roles}
        recorder.phase("run", station=snapshot)
        store.set_station(run_id, snapshot)
        run = Run(
            store=store,
            run_id=run_id,
            station=station,
            clock=station.clock,
            handler=handler,
            parameters=parameters,
            formulation=formulation,
            progress=progress,
            expected_steps=protocol.expected_steps(parameters),
        )
        if stop is not None:
            # Someone else may ask for the stop (the queue: `labctl queue cancel`).
            run.stop_requested = stop
        run.stop_requested = StopRequests(run.stop_requested, store, run_id)
        run.stop_requested = recorder.stop_event(run.stop_requested)
        status, reason = execute(run, protocol.function)
        recorder.end(status, reason)
        return status, reason, run, bench.recovered
    finally:
        bench.close()


def recover(
    data_dir: Path,
    *,
    sim: bool,
    station_file: Path | None,
    seed: int = 0,
    unattended: bool = True,
    lock: bool = True,
    allow_import: bool = False,
) -> list[str]:
    """After a run process died: bench safe, the death recorded, its wafers parked.

    What a supervisor calls the moment its child dies (and what every run
    does anyway before it starts). Returns the ids of the runs found killed.
    ``lock=False`` when the caller holds the bench lock already.
    """
    store = RunStore(data_dir)
    try:
        bench = _Bench(
            store,
            sim=sim,
            station_file=station_file,
            seed=seed,
            formulation=None,
            unattended=unattended,
            lock=lock,
            wait=30.0,
            allow_import=allow_import,
        )
        bench.close()
        return bench.recovered
    finally:
        store.close()


def safe_bench(
    data_dir: Path,
    *,
    sim: bool,
    station_file: Path | None,
    seed: int = 0,
    allow_import: bool = False,
) -> list[str]:
    """Put the bench in its safe state without the store (it may be what failed).

    Returns the roles that could not be made safe.
    """
    from labctl.engine import safe_state

    simulation = _Simulation(data_dir, seed, None) if sim else None
    try:
        if simulation is not None:
            station = simulation.station()
        else:
            assert station_file is not None
            station = Station.from_file(station_file, allow_import=allow_import)
        station.connect()
        try:
            return safe_state(station)
        finally:
            station.close()
    except LabctlError as exc:
        return [str(exc)]
    finally:
        if simulation is not None:
            simulation.close()


class _NamespacedHandler:
    """A handler's wafers are shared by every run on the bench: prefix the run id."""

    attended = False

    def __init__(self, inner: Any, run_id: str) -> None:
        self.inner = inner
        self.prefix = run_id

    def _id(self, wafer: str) -> str:
        return f"{self.prefix}/{wafer}"

    def new_wafer(self, wafer_id: str) -> None:
        self.inner.new_wafer(self._id(wafer_id))

    def load(self, wafer_id: str, station: str) -> None:
        self.inner.load(self._id(wafer_id), station)

    def unload(self, station: str) -> None:
        self.inner.unload(station)

    def manual(self, action: str) -> None:
        self.inner.manual(action)

    def where(self, wafer_id: str) -> str | None:
        place = self.inner.where(self._id(wafer_id))
        return None if place is None else str(place)


def start(
    request: RunRequest,
    progress: Callable[[StepProgress], None] | None = None,
    on_created: Callable[[str], None] | None = None,
    *,
    lock: bool = True,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RunOutcome:
    """Validate, record, run. Raises :class:`InputError` before anything moves.

    ``on_created(run_id)`` is called once the run is recorded, before it starts
    (the overnight queue keeps the id, so a crash can be resumed). ``stop``, once
    set, stops the run at its next safe point, as a first Ctrl-C does.
    """
    protocol, parameters, recipe_table, formulation = validate(request)
    store = RunStore(request.data_dir)
    recorder: Recorder | None = None
    # To the lab store as the run goes, if one is set (never holds up or fails the run).
    shipper = start_shipping(request.data_dir)
    try:
        run_id = new_run_id(protocol.name)
        # The bytes validated above (a queued run's stored copy: labctl.files.stored_files).
        content = file_bytes(request.formulation).decode("utf-8")
        store.save_formulation(
            formulation.content_hash(),
            formulation.name,
            str(request.formulation),
            content,
            formulation.canonical(),
        )
        created = {
            "run_id": run_id,
            "protocol": protocol.name,
            "parameters": encode(parameters),
            "recipe": recipe_table,
            "formulation_hash": formulation.content_hash(),
            "software": software_versions(),
            "operator": request.operator,
            "attended": not (request.unattended or request.sim),
            "simulated": request.sim,
            "seed": request.seed,
        }
        if request.record is not None:
            recorder = _recorder(request.record, created, request, formulation, content)
        store.create_run(created)
        if on_created is not None:
            on_created(run_id)
        try:
            status, reason, run, recovered = _run(
                request.sim,
                request.station,
                store,
                run_id,
                protocol,
                parameters,
                formulation,
                request.seed,
                request.prompt,
                progress,
                request.unattended,
                lock,
                wait,
                on_wait,
                allow_import=request.allow_import,
                stop=stop,
                recorder=recorder,
            )
        except LabctlError as exc:
            # The bench never opened (busy, a port missing, a refused file):
            # nothing moved; the record says so instead of "created" forever.
            if store.run(run_id)["status"] == "created":
                store.finish_run(run_id, "failed", f"never started, nothing moved: {exc}")
            raise
        return _outcome(store, run_id, status, reason, run, recovered)
    finally:
        if shipper is not None:
            shipper.stop()
        if recorder is not None:
            recorder.close()
        store.close()


def _recorder(
    path: Path,
    created: dict[str, Any],
    request: RunRequest,
    formulation: Formulation,
    content: str,
) -> Recorder:
    """The recording of a new run (``--record``): its header, before anything is created."""
    try:
        return Recorder.create(
            path,
            run={**created, "unattended": request.unattended},
            formulation={
                "source": str(request.formulation),
                "hash": formulation.content_hash(),
                "content": content,
            },
        )
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source=str(path), field="--record") from None


def resume(
    run_id: str,
    data_dir: Path,
    *,
    station: Path | None = None,
    prompt: Callable[[str], str] | None = None,
    progress: Callable[[StepProgress], None] | None = None,
    lock: bool = True,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    allow_import: bool = False,
    stop: threading.Event | None = None,
) -> RunOutcome:
    """Re-run a run's protocol: finished steps replay from the journal, nothing is done twice.

    ``allow_import``: ``station`` is trusted to name ``"module:Class"`` drivers;
    ``stop``: as in :func:`start`.
    """
    store = RunStore(data_dir, create=False)
    shipper = start_shipping(data_dir)
    try:
        record = store.run(run_id)
        run_id = record["run_id"]
        if record["status"] == "completed":
            raise InputError("the run completed; nothing to resume", field=f"run {run_id}")
        protocol = _protocol(record["protocol"])
        parameters = decode(record["parameters"])
        stored = store.formulation(record["formulation_hash"])
        if stored is None:
            raise InputError("its formulation is missing from the store", field=f"run {run_id}")
        formulation = parse_formulation(tomllib.loads(stored["content"]), source=stored["source"])
        if not record["simulated"] and station is None:
            raise InputError(
                "resuming a run on real hardware needs --station FILE", field="station"
            )
        status, reason, run, recovered = _run(
            bool(record["simulated"]),
            station,
            store,
            run_id,
            protocol,
            parameters,
            formulation,
            record["seed"] or 0,
            prompt,
            progress,
            not record["attended"],
            lock,
            wait,
            on_wait,
            allow_import=allow_import,
            stop=stop,
        )
        return _outcome(store, run_id, status, reason, run, recovered)
    finally:
        if shipper is not None:
            shipper.stop()
        store.close()


def _outcome(
    store: RunStore, run_id: str, status: str, reason: str, run: Run, recovered: list[str]
) -> RunOutcome:
    return RunOutcome(
        run_id=run_id,
        status=status,
        reason=reason,
        data_dir=store.data_dir,
        measurements=len(store.measurement_rows(run_id)),
        steps_executed=run.executed,
        steps_replayed=run.replayed,
        quarantined=dict(run.quarantined),
        recovered=[r for r in recovered if r != run_id],
    )


def expected_steps(name: str, parameters: dict[str, Any]) -> int | None:
    """The steps protocol ``name`` plans for ``parameters`` (None: it does not say)."""
    return _protocol(name).expected_steps(parameters)
