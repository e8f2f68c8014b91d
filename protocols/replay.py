"""Replay a recorded session: the same protocol, answered byte for byte by the recording.

``labctl replay FILE`` (and :func:`labctl.testing.assert_replays`) call
:func:`replay`. It reads the recording (``docs/recording.md``), builds the
recorded station with transports that answer from it
(:class:`labctl.recording.ReplayTransport`) on a clock that gives back the
recorded readings (:class:`labctl.recording.ReplayClock`), and runs the
recorded protocol with the recorded parameters, formulation and run id
through the same engine a run goes through - the wafer handler's lock and
clock, every role's connection, the protocol, safe state at its exit. The
first exchange that differs from the recording - a byte written, a read's
terminator, a handler call - stops it and is reported; nothing real is
touched and no time is waited.

The runs a recorded run found killed and recovered first (``recover``) are
not replayed: the replay's store is new and has none.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.engine import Run, decode, execute
from labctl.errors import InputError, LabctlError
from labctl.formulation import parse_formulation
from labctl.names import RUN_ID, check_name
from labctl.plugins import protocol, protocol_names
from labctl.recording import (
    RecordingEnded,
    ReplayMismatch,
    ReplaySession,
    ReplayStop,
    read_recording,
)
from labctl.station import Station
from labctl.store import RunStore

from .handlers import SocketHandler
from .runner import _NamespacedHandler, served_clock

__all__ = ["ReplayOutcome", "replay"]


@dataclass
class ReplayOutcome:
    """What a replay found."""

    path: Path
    run_id: str
    protocol: str
    #: Exchanges the replay made that equal the recording's.
    matched: int
    #: Recorded exchanges not replayed by design (the recovery of runs found killed).
    skipped: int
    #: Exchanges in the recording.
    recorded: int
    #: The recording has its end (``mark end``); False: its run was cut short.
    complete: bool
    #: How the replayed run ended (None: it never started).
    status: str | None
    reason: str
    #: How the recorded run ended (None: the recording does not say).
    recorded_status: str | None
    #: The first difference, one line; None when everything matched.
    mismatch: str | None
    #: The exchange number of the first difference.
    mismatch_exchange: int | None
    seconds: float
    #: Where the replayed run is stored (None: a temporary directory, gone).
    data_dir: Path | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def _protocol(name: str, source: str) -> Any:
    """The recorded protocol, found by name as the run found it (``labctl.protocols``)."""
    if name not in protocol_names():
        raise InputError(
            f"the recorded protocol {name!r} is not one of {', '.join(protocol_names())}",
            source=source,
            field="header run.protocol",
        )
    return protocol(name)


@contextlib.contextmanager
def _data_directory(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="labctl-replay-") as temporary:
        yield Path(temporary)


def replay(
    path: str | Path, data_dir: Path | None = None, *, allow_import: bool = False
) -> ReplayOutcome:
    """Replay the recording at ``path``; the replayed run is stored in ``data_dir``.

    ``data_dir`` None: a temporary directory, removed afterwards.
    ``allow_import``: the recorded station may name ``"module:Class"``
    drivers. A file that is not a good recording, a protocol this labctl
    does not have, or a ``data_dir`` that holds the recorded run already is
    an :class:`InputError` (one line); a difference is in the outcome.
    """
    started = time.perf_counter()
    path = Path(path)
    source = str(path)
    recording = read_recording(path)
    run_record = recording.run
    protocol = _protocol(run_record["protocol"], source)
    try:
        parameters = decode(run_record.get("parameters") or {})
    except (LabctlError, ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"the recorded parameters do not read: {exc}", source=source, field="header run"
        ) from None
    recorded_formulation = recording.header["formulation"]
    formulation_source = f"{path} (formulation {recorded_formulation.get('source', '?')})"
    try:
        table = tomllib.loads(recorded_formulation["content"])
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"the recorded formulation is not TOML: {exc}",
            source=source,
            field="header formulation",
        ) from None
    formulation = parse_formulation(table, source=formulation_source)
    session = ReplaySession(recording)
    config = session.station_config(allow_import=allow_import)
    # Once the replay has stopped, the run unwinds through errors that say only
    # that: its warnings (a wafer not parked ...) are noise beside the one line.
    quiet_before = logging.root.manager.disable
    session.on_stop = lambda: logging.disable(logging.CRITICAL)
    # The run's own id again (the handler's wafer names carry it): checked as any run id.
    run_id = check_name(run_record["run_id"], RUN_ID, source=source, field="header run.run_id")
    status: str | None = None
    reason = ""
    with _data_directory(data_dir) as directory:
        store = RunStore(directory)
        guard: SocketHandler | None = None
        station: Station | None = None
        try:
            if any(r["run_id"] == run_id for r in store.runs()):
                raise InputError(
                    f"already holds run {run_id}: replay into another directory",
                    source=str(directory),
                    field="--data",
                )
            store.save_formulation(
                formulation.content_hash(),
                formulation.name,
                formulation_source,
                recorded_formulation["content"],
                formulation.canonical(),
            )
            store.create_run(
                {
                    **run_record,
                    "formulation_hash": formulation.content_hash(),
                    "software": run_record.get("software") or {},
                    "operator": run_record.get("operator") or "replay",
                    "attended": bool(run_record.get("attended")),
                    "simulated": bool(run_record.get("simulated")),
                }
            )
            try:
                session.phase("setup")
                if config.handler is not None:
                    # As the runner does: hold the bench, read its clock - on the recorded line.
                    guard = SocketHandler.from_station(config)
                    guard.stream_hook = session.stream_hook
                    owner = recording.info("connect", "handler_owner")
                    guard.lock(owner if isinstance(owner, str) else "replay")
                    served_clock(config, guard)
                station = Station(
                    config, clock=session.clock, transport_factory=session.transport_factory
                )
                session.phase("connect")
                results = station.connect()
                failed = [r for r in results if not r.ok]
                if failed:
                    raise InputError(
                        "; ".join(f"{r.role}: {r.error}" for r in failed),
                        field="station connect",
                    )
                session.phase("run")
                handler = session.handler(
                    _NamespacedHandler(guard, run_id) if guard is not None else None
                )
                store.set_station(run_id, {r.role: station[r.role].snapshot() for r in results})
                run = Run(
                    store=store,
                    run_id=run_id,
                    station=station,
                    clock=station.clock,
                    handler=handler,
                    parameters=parameters,
                    formulation=formulation,
                    expected_steps=protocol.expected_steps(parameters),
                )
                run.stop_requested = ReplayStop(session)  # type: ignore[assignment]
                status, reason = execute(run, protocol.function)
                session.finish()
            except (ReplayMismatch, RecordingEnded):
                pass  # kept by the session
            except LabctlError as exc:
                if session.mismatch is None and session.ended is None:
                    # As recorded, when the recording stops here: the run never started.
                    reason = str(exc)
                    with contextlib.suppress(ReplayMismatch):
                        session.finish()
            except Exception as exc:  # a driver that cannot take a recorded reply
                if session.mismatch is None:
                    session.fail(
                        f"exchange #{session.cursor}: the replay failed there with"
                        f" {type(exc).__name__}: {exc}",
                        session.cursor,
                        None,
                    )
        finally:
            session.finished = True  # links closed now are not part of the session
            if station is not None:
                station.close()
            if guard is not None:
                guard.close()
            store.close()
            logging.disable(quiet_before)
    mismatch = session.mismatch
    message = None if mismatch is None else str(mismatch)
    recorded_end = recording.end
    recorded_status = None if recorded_end is None else recorded_end.get("status")
    if message is None and recording.complete and status != recorded_status:
        message = (
            f"every exchange matched, but the replayed run ended {status} ({reason})"
            f" where the recorded one ended {recorded_status}"
        )
    return ReplayOutcome(
        path=path,
        run_id=run_id,
        protocol=protocol.name,
        matched=session.matched,
        skipped=session.skipped,
        recorded=len(recording.events),
        complete=recording.complete,
        status=status,
        reason=reason,
        recorded_status=recorded_status,
        mismatch=message,
        mismatch_exchange=None if mismatch is None else mismatch.exchange,
        seconds=time.perf_counter() - started,
        data_dir=data_dir,
    )
