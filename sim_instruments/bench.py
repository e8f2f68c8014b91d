"""The virtual bench: seven simulated instruments coupled through shared wafers and time.

pyvisa-sim answers from a table; it cannot couple instruments, evolve in
time or carry a wafer from one tool to the next. This bench can:

* wafers (:mod:`sim_instruments.wafer`) move between the spin coater, the
  hotplate, the exposure stage and the ellipsometer; a tool acts only on the
  wafer it holds;
* every instrument (:mod:`sim_instruments.devices`) speaks its real wire
  protocol over that state, on the bench's clock - a
  :class:`~labctl.clock.VirtualClock` in process (deterministic, a night in
  seconds) or a real-time clock when served (``labctl sim serve``);
* faults are injected per instrument, seeded (:meth:`VirtualBench.inject`);
* the true values used are reported (:meth:`VirtualBench.true_thickness`,
  :meth:`VirtualBench.true_exposures`, :meth:`VirtualBench.true_contrast`);
* with a data directory, wafers and instruments are saved at every change
  and every executed command is appended to a log, so a run killed mid-way
  and resumed continues on the same wafers - as real hardware would. Every
  one of those files goes through :class:`BenchFiles`: a full disk, a
  read-only one or an I/O error is a :class:`~labctl.errors.StorageError`
  naming the file (a run fails with that reason), never an ``OSError`` a
  transport would take for a lost link.

Reach it in process with :meth:`VirtualBench.station` (drivers unchanged,
through :class:`BenchTransport`) or over real links with
:mod:`sim_instruments.serve`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from labctl.clock import Clock, VirtualClock
from labctl.errors import InputError, InstrumentTimeout, LinkLost, StorageError
from labctl.private import new_file, open_append, private_dir
from labctl.transport import LinkSettings, Transport
from labctl.units import Q_, U

from . import physics
from .devices import (
    CompleteEaseSim,
    DC2200Sim,
    ESP301Sim,
    HotplateSim,
    PM100DSim,
    SC10Sim,
    SCK300PSim,
    SimDevice,
)
from .devices.base import COMM_FAULTS, PHYSICAL_FAULTS, Fault
from .physics import BenchParameters, ResistParameters
from .wafer import Wafer

__all__ = ["DISK_FULL_ENV", "FAULT_KINDS", "TOOLS", "BenchFiles", "BenchTransport", "VirtualBench"]

#: Device classes by role, in the order they evolve (the stage before the
#: shutter, so light lands where the stage is).
DEVICES: dict[str, type[SimDevice]] = {
    "exposure_stage": ESP301Sim,
    "exposure_source": DC2200Sim,
    "exposure_shutter": SC10Sim,
    "exposure_meter": PM100DSim,
    "spin_coater": SCK300PSim,
    "hotplate": HotplateSim,
    "ellipsometer": CompleteEaseSim,
}
#: Places that hold a wafer.
TOOLS = ("spin_coater", "hotplate", "exposure_stage", "ellipsometer")
FAULT_KINDS = (*COMM_FAULTS, *PHYSICAL_FAULTS)
STATE_VERSION = 1
#: The bench's state journal (one JSON line per change) and its compaction size.
STATE_FILE = "state.jsonl"
STATE_COMPACT_BYTES = 4_000_000
#: Test hook, like :data:`labctl.engine.INJECT_ENV`: ``LABCTL_SIM_DISK_FULL=N``
#: lets a bench with a data directory write its files N times, then fails every
#: further write as a full disk does (``ENOSPC``). Read when the bench is made;
#: does nothing when unset. The disk-fault tests use it through the CLI.
DISK_FULL_ENV = "LABCTL_SIM_DISK_FULL"


class BenchFiles:
    """Every read and write of the bench's data directory, and its one error mapping.

    ``OSError`` - no space (``ENOSPC``), read-only (``EROFS``), an I/O error
    (``EIO``) - becomes :class:`~labctl.errors.StorageError` naming the file:
    a :class:`~labctl.errors.LabctlError`, so the engine records a failure
    with that reason, and not a communication error, so no transport retries
    it or reconnects for it.

    A failing write is raised once, to the command that met it; after that
    the bench carries on in memory, as the instruments it stands in for
    would - a safe-state sequence is never cut short by a disk - and every
    later write is still tried, counted in :attr:`unsaved` when it fails.
    Once each file that failed has been written again, the next failure is
    news and is raised. (A nearly full disk takes a short log line and
    refuses a long state line: a success elsewhere does not end it.) An
    append cut short is undone, so a journal never keeps half a line.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        hook = os.environ.get(DISK_FULL_ENV, "").strip()
        #: Writes left before the injected full disk (None: no injection).
        self.writes_left: int | None = int(hook) if hook else None
        #: The failure raised, while some file that failed has not been written since.
        self.failure: StorageError | None = None
        #: Writes lost after it (the state is saved whole at the next one that works).
        self.unsaved = 0
        self._failing: set[Path] = set()
        self._appending: dict[Path, int] = {}

    @contextlib.contextmanager
    def _mapped(self, path: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StorageError.from_os_error(exc, path) from exc

    def _written(self, path: Path, write: Callable[[], None]) -> bool:
        """Do ``write``; False if it failed after a failure already raised."""
        try:
            write()
        except OSError as exc:
            first = not self._failing
            self._failing.add(path)
            if not first:
                self.unsaved += 1
                return False
            self.failure = StorageError.from_os_error(exc, path)
            raise self.failure from exc
        self._failing.discard(path)
        if not self._failing:
            self.failure = None
        return True

    def _write_all(self, fd: int, data: bytes, *, append: bool) -> None:
        if self.writes_left is not None:
            if self.writes_left <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.writes_left -= 1
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(fd, view[written:])
        except OSError:
            if append and written:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, os.fstat(fd).st_size - written)
            raise

    def make_directories(self) -> None:
        with self._mapped(self.directory):
            # Owner-only (or group-readable when asked): the wafers carry the formulation.
            private_dir(self.directory / "wafers")

    def read(self, path: Path) -> bytes:
        with self._mapped(path):
            return path.read_bytes()

    def last_lines(self, path: Path, block: int = 1 << 16) -> Iterator[bytes]:
        """The lines of ``path``, last first, read back from its end ``block`` bytes at a time.

        The state journal grows to megabytes between compactions and a
        restore wants its last line: reading it whole, at every bench a run
        opens, left the process's heap 2 MB larger for good (glibc keeps a
        freed block that large) - half of a queue's first-night growth.
        """
        with self._mapped(path), open(path, "rb") as stream:
            end = stream.seek(0, os.SEEK_END)
            carry = b""
            while end > 0:
                start = max(0, end - block)
                stream.seek(start)
                lines = (stream.read(end - start) + carry).split(b"\n")
                end = start
                # The first piece may begin mid-line: it waits for the block before it.
                carry = lines.pop(0) if end > 0 else b""
                yield from (line for line in reversed(lines) if line)
            if carry:
                yield carry

    def append(self, path: Path, data: bytes) -> bool:
        """``data`` at the end of ``path``, whole or not at all; False if lost (see above)."""

        def write() -> None:
            fd = self._appending.get(path)
            if fd is None:
                fd = open_append(path)
                self._appending[path] = fd
            self._write_all(fd, data, append=True)

        return self._written(path, write)

    def replace(self, path: Path, data: bytes) -> bool:
        """``path`` holds ``data`` (written aside, renamed into place); False if lost."""
        self._close(path)
        temporary = path.with_suffix(".tmp")

        def write() -> None:
            try:
                fd = new_file(temporary)
                try:
                    self._write_all(fd, data, append=False)
                finally:
                    os.close(fd)
                os.replace(temporary, path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise

        return self._written(path, write)

    def _close(self, path: Path) -> None:
        fd = self._appending.pop(path, None)
        if fd is not None:
            # Every write on it has returned: a failing close loses nothing more.
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        for path in list(self._appending):
            self._close(path)


class WaferShelf(MutableMapping[str, Wafer]):
    """The bench's wafers by id: those in use in memory, the rest on disk.

    A bench with a data directory keeps a wafer in memory while it is on a
    tool, changed since it was saved, or among the last :data:`RECENT`
    touched; a finished wafer is read back from ``wafers/<id>.json`` when
    asked for. A night of 1,500 runs left 3,000 wafers (each with its
    exposures and events) in memory before. Without a data directory every
    wafer stays in memory - there is nowhere else.
    """

    RECENT = 8

    def __init__(self, bench: VirtualBench) -> None:
        self._bench = bench
        self._live: OrderedDict[str, Wafer] = OrderedDict()

    def _path(self, wafer_id: str) -> Path | None:
        return None if self._bench.data_dir is None else self._bench._wafer_path(wafer_id)

    def __getitem__(self, wafer_id: str) -> Wafer:
        wafer = self._live.get(wafer_id)
        if wafer is not None:
            self._live.move_to_end(wafer_id)
            return wafer
        path = self._path(wafer_id)
        files = self._bench.files
        if path is None or files is None or not path.exists():
            raise KeyError(wafer_id)
        wafer = Wafer.from_dict(json.loads(files.read(path).decode("utf-8")))
        self._live[wafer_id] = wafer
        return wafer

    def __contains__(self, wafer_id: object) -> bool:
        if not isinstance(wafer_id, str):
            return False
        if wafer_id in self._live:
            return True
        path = self._path(wafer_id)
        return path is not None and path.exists()

    def __setitem__(self, wafer_id: str, wafer: Wafer) -> None:
        self._live[wafer_id] = wafer
        self._live.move_to_end(wafer_id)

    def __delitem__(self, wafer_id: str) -> None:
        del self._live[wafer_id]

    def _ids(self) -> list[str]:
        ids = dict.fromkeys(self._live)
        directory = None if self._bench.data_dir is None else self._bench.data_dir / "wafers"
        if directory is not None and directory.is_dir():
            for path in directory.glob("*.json"):
                ids.setdefault(unquote(path.stem), None)
        return list(ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids())

    def __len__(self) -> int:
        return len(self._ids())

    def live(self) -> list[str]:
        """The ids of the wafers in memory now."""
        return list(self._live)

    def settle(self, keep: set[str]) -> None:
        """Let finished wafers go from memory: every one saved, not in ``keep``
        (on a tool, or unsaved), beyond the :data:`RECENT` last touched."""
        if self._bench.data_dir is None:
            return
        # Only wafers back in the cassette: one on its way between tools may
        # still be in a caller's hands.
        spare = [
            w for w, wafer in self._live.items() if w not in keep and wafer.location == "cassette"
        ]
        for wafer_id in spare[: max(0, len(spare) - self.RECENT)]:
            del self._live[wafer_id]


class VirtualBench:
    """The whole simulated bench. Thread-safe; deterministic for a given seed."""

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        seed: int = 0,
        clock: Clock | None = None,
        resist: ResistParameters | None = None,
        parameters: BenchParameters | None = None,
    ) -> None:
        self.seed = seed
        self.clock: Clock = clock or VirtualClock()
        self.parameters = parameters or BenchParameters()
        self.resist = resist or ResistParameters()
        self.lock = threading.RLock()
        self.data_dir = Path(data_dir) / "bench" if data_dir is not None else None
        self.files = BenchFiles(self.data_dir) if self.data_dir is not None else None
        self.wafers = WaferShelf(self)
        self.holders: dict[str, str | None] = dict.fromkeys(TOOLS)
        self.devices: dict[str, SimDevice] = {
            role: cls(self, seed * 1000 + index)
            for index, (role, cls) in enumerate(DEVICES.items())
        }
        self.outputs: dict[str, list[tuple[float, int, bytes]]] = {role: [] for role in DEVICES}
        self._sequence = 0
        #: Wafers this bench has made, ever: the index that seeds each new
        #: wafer's own variation, so a seed reproduces a run on a fresh bench
        #: whatever the run is called (ids carry the run id, which carries the
        #: wall-clock time).
        self.wafers_made = 0
        self.command_log: list[dict[str, Any]] = []
        self.fault_log: list[dict[str, Any]] = []
        self.light_log: list[dict[str, Any]] = []
        self._dirty = False
        self._light_delivered = False
        self._dirty_wafers: set[str] = set()
        #: Size of the state journal (None: not started by this bench yet).
        self._state_bytes: int | None = None
        self._time_offset = 0.0
        restored = False
        if self.files is not None:
            self.files.make_directories()
            restored = self._restore()
        if not restored:
            for role, device in self.devices.items():
                banner = device.banner()
                if banner:
                    self._queue(role, self.now(), banner)
            try:
                self.save()
            except StorageError:
                self.close()
                raise

    # -- time ---------------------------------------------------------------------

    def now(self) -> float:
        """Bench time (s): the clock plus the time restored from a saved bench."""
        return self._time_offset + self.clock.monotonic()

    def _evolve_all(self, now: float) -> None:
        for device in self.devices.values():
            device.evolve(now)

    def advance(self, seconds: float) -> None:
        """Let time pass (virtual clock) and bring the physics up to date."""
        with self.lock:
            self.clock.sleep(seconds)
            self._evolve_all(self.now())

    # -- the wire -----------------------------------------------------------------

    def device(self, role: str) -> SimDevice:
        try:
            return self.devices[role]
        except KeyError:
            raise InputError(
                f"no such instrument; roles: {', '.join(DEVICES)}", field=role
            ) from None

    def deliver(self, role: str, data: bytes) -> None:
        """Bytes from the host arrive at ``role``'s instrument now."""
        with self.lock:
            device = self.device(role)
            now = self.now()
            self._evolve_all(now)
            before = device.state() if not self._dirty else None
            for ready, reply in device.receive(data, now):
                self._queue(role, ready, reply)
            # A setter that set what was already set (mode=3 before every
            # field) changes nothing physical: no save.
            if (
                self._dirty
                and before is not None
                and not self._light_delivered
                and not device.faults
                and device.state() == before
            ):
                self._dirty = False
            self._save_if_changed()

    def _queue(self, role: str, ready: float, data: bytes) -> None:
        self._sequence += 1
        queue = self.outputs[role]
        queue.append((ready, self._sequence, data))
        queue.sort()

    def take_output(self, role: str, until: float) -> bytes:
        """Reply bytes of ``role`` that are on the wire by ``until`` (s)."""
        with self.lock:
            queue = self.outputs[role]
            out = bytearray()
            while queue and queue[0][0] <= until:
                out += queue.pop(0)[2]
            return bytes(out)

    def next_ready(self, role: str) -> float | None:
        with self.lock:
            queue = self.outputs[role]
            return queue[0][0] if queue else None

    def reconnect(self, role: str) -> None:
        """The link to ``role`` is re-established: pending bytes are gone."""
        with self.lock:
            device = self.device(role)
            device.link_down = False
            device._input.clear()
            self.outputs[role].clear()

    # -- wafers --------------------------------------------------------------------

    def new_wafer(self, wafer_id: str) -> Wafer:
        """A clean wafer in the cassette."""
        with self.lock:
            if wafer_id in self.wafers:
                raise InputError("a wafer with this id exists", field=f"wafer {wafer_id}")
            rng = __import__("random").Random(f"{self.seed}:wafer:{self.wafers_made}")
            self.wafers_made += 1
            wafer = Wafer(
                wafer_id,
                diameter=self.parameters.wafer_diameter,
                shape=(rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)),
                temperature=self.parameters.room_temperature,
            )
            wafer.record(self.now(), "created")
            self.wafers[wafer_id] = wafer
            self._dirty_wafers.add(wafer_id)
            self.save()
            return wafer

    def wafer_on(self, tool: str) -> Wafer | None:
        wafer_id = self.holders.get(tool)
        return self.wafers[wafer_id] if wafer_id is not None else None

    def load(self, wafer_id: str, tool: str) -> None:
        """Put a wafer from the cassette onto ``tool``."""
        with self.lock:
            if tool not in TOOLS:
                raise InputError(f"not a wafer station; stations: {', '.join(TOOLS)}", field=tool)
            if wafer_id not in self.wafers:
                raise InputError("no such wafer", field=f"wafer {wafer_id}")
            wafer = self.wafers[wafer_id]
            if wafer.location != "cassette":
                raise InputError(f"the wafer is on {wafer.location}", field=f"wafer {wafer_id}")
            if self.holders[tool] is not None:
                raise InputError(f"{self.holders[tool]} is already there", field=tool)
            now = self.now()
            self._evolve_all(now)
            self.holders[tool] = wafer_id
            wafer.location = tool
            wafer.record(now, "load", tool)
            if tool == "hotplate":
                hotplate = self.devices["hotplate"]
                assert isinstance(hotplate, HotplateSim)
                hotplate.wafer_loaded(wafer)
            self._dirty_wafers.add(wafer_id)
            self.changed()
            self._save_if_changed()

    def unload(self, tool: str) -> str:
        """Take the wafer off ``tool`` back to the cassette; return its id."""
        with self.lock:
            wafer = self.wafer_on(tool)
            if wafer is None:
                raise InputError("holds no wafer", field=tool)
            now = self.now()
            self._evolve_all(now)
            self.holders[tool] = None
            wafer.location = "cassette"
            wafer.temperature = self.parameters.room_temperature
            wafer.record(now, "unload", tool)
            self._dirty_wafers.add(wafer.wafer_id)
            self.changed()
            self._save_if_changed()
            return wafer.wafer_id

    def _spinner(self) -> SCK300PSim:
        spinner = self.devices["spin_coater"]
        assert isinstance(spinner, SCK300PSim)
        return spinner

    def dispense_resist(self, resist: ResistParameters | None = None) -> None:
        """A puddle of resist on the wafer on the spin coater (a manual step)."""
        with self.lock:
            wafer = self._require("spin_coater")
            now = self.now()
            self._evolve_all(now)
            wafer.dispense(resist or self.resist, now)
            self._dirty_wafers.add(wafer.wafer_id)
            self.changed()
            self._save_if_changed()

    def dispense_developer(self) -> None:
        """A developer puddle on the wafer on the spin coater."""
        self._puddle("developer")

    def rinse(self) -> None:
        """DI water replaces the developer: development stops."""
        self._puddle("water")

    def spin_dry(self) -> None:
        self._puddle(None)

    def _puddle(self, kind: str | None) -> None:
        with self.lock:
            wafer = self._require("spin_coater")
            now = self.now()
            self._evolve_all(now)
            spinner = self._spinner()
            spinner.puddle = kind
            wafer.record(now, "puddle", kind or "dry")
            self._dirty_wafers.add(wafer.wafer_id)
            self.changed()
            self._save_if_changed()

    def _require(self, tool: str) -> Wafer:
        wafer = self.wafer_on(tool)
        if wafer is None:
            raise InputError("holds no wafer", field=tool)
        return wafer

    # -- light -----------------------------------------------------------------------

    def _source(self) -> DC2200Sim:
        source = self.devices["exposure_source"]
        assert isinstance(source, DC2200Sim)
        return source

    def _stage_position(self) -> tuple[float, float]:
        stage = self.devices["exposure_stage"]
        assert isinstance(stage, ESP301Sim)
        return stage.position()

    def _beam_on_meter(self) -> bool:
        x, y = self._stage_position()
        mx, my = self.parameters.meter_position
        aperture_radius = math.sqrt(self.parameters.meter_aperture / math.pi) * 10.0  # mm
        return math.hypot(x - mx, y - my) <= aperture_radius

    def light_on_meter(self) -> float:
        """Irradiance (mW/cm^2) on the meter head now."""
        shutter = self.devices["exposure_shutter"]
        assert isinstance(shutter, SC10Sim)
        if not shutter.is_open() or not self._beam_on_meter():
            return 0.0
        return self._source().irradiance()

    def deliver_light(self, start: float, end: float) -> None:
        """The shutter was open from ``start`` to ``end``: dose what is under the beam."""
        duration = end - start
        if duration <= 0 or not math.isfinite(duration):
            return
        irradiance = self._source().irradiance()
        x, y = self._stage_position()
        target = "meter" if self._beam_on_meter() else "none"
        wafer = self.wafer_on("exposure_stage")
        dose = irradiance * duration
        if target == "none" and wafer is not None and math.hypot(x, y) <= wafer.radius:
            target = f"wafer {wafer.wafer_id}"
            from .wafer import Exposure

            wafer.exposures.append(
                Exposure(x, y, self.parameters.field_size, dose, start, irradiance, duration)
            )
            wafer.record(start, "exposure", f"{dose:.3f} mJ/cm2 at ({x:.2f}, {y:.2f}) mm")
            self._dirty_wafers.add(wafer.wafer_id)
            self._light_delivered = True
            self.changed()
        entry = {
            "start": start,
            "duration": duration,
            "irradiance": irradiance,
            "dose": dose,
            "target": target,
            "x": x,
            "y": y,
        }
        if self.files is not None:
            self._append("light.jsonl", entry)
        else:
            self.light_log.append(entry)

    # -- faults ------------------------------------------------------------------------

    def inject(
        self,
        role: str,
        kind: str,
        *,
        start: float | None = None,
        count: int = 1,
        probability: float = 1.0,
        delay: float = 5.0,
    ) -> Fault:
        """Inject a fault into ``role`` from bench time ``start`` (default: now).

        Communication faults (``no_reply``, ``late_reply``, ``garbled_reply``,
        ``link_lost``, ``instrument_error``) hit the next ``count`` replies
        (``count=-1``: every reply), each with ``probability``, drawn from the
        instrument's seeded generator. Physical faults (``heater_runaway``,
        ``lamp_failure``, ``spinner_stall``) last from ``start`` on.
        """
        with self.lock:
            device = self.device(role)
            if kind not in FAULT_KINDS:
                raise InputError(f"unknown fault; faults: {', '.join(FAULT_KINDS)}", field=kind)
            if kind in PHYSICAL_FAULTS and PHYSICAL_FAULTS[kind] != role:
                raise InputError(f"a {kind} happens on the {PHYSICAL_FAULTS[kind]}", field=role)
            if not 0.0 < probability <= 1.0:
                raise InputError("probability must be in (0, 1]", field="probability")
            fault = Fault(kind, self.now() if start is None else start, count, probability, delay)
            device.faults.append(fault)
            self.changed()
            self._save_if_changed()
            return fault

    def clear_faults(self, role: str | None = None) -> None:
        with self.lock:
            for name, device in self.devices.items():
                if role is None or name == role:
                    device.faults.clear()
            self.changed()
            self._save_if_changed()

    # -- logs --------------------------------------------------------------------------

    def log_command(self, role: str, time: float, line: bytes, reply: bytes | None) -> None:
        entry = {
            "t": round(time, 6),
            "role": role,
            "command": line.decode("latin-1"),
            "reply": None if reply is None else reply.decode("latin-1"),
        }
        if self.files is not None:
            # On disk only: a bench serving a night must not grow in memory.
            self._append("commands.jsonl", entry)
        else:
            self.command_log.append(entry)

    def _append(self, name: str, entry: dict[str, Any]) -> None:
        assert self.files is not None
        self.files.append(self.files.directory / name, (json.dumps(entry) + "\n").encode("utf-8"))

    def log_fault(self, role: str, time: float, kind: str, line: bytes) -> None:
        self.fault_log.append(
            {"t": time, "role": role, "fault": kind, "command": line.decode("latin-1")}
        )

    def commands(self, role: str | None = None) -> list[dict[str, Any]]:
        """Every command executed (this process, or all of them from the data directory)."""
        entries = self.command_log
        path = None if self.data_dir is None else self.data_dir / "commands.jsonl"
        if path is not None and self.files is not None and path.exists():
            text = self.files.read(path).decode("utf-8")
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [e for e in entries if role is None or e["role"] == role]

    # -- ground truth --------------------------------------------------------------------

    def true_thickness(self, wafer_id: str, x: Any, y: Any) -> Any:
        """The film thickness (nm quantity) at (x, y) as the bench has it now."""
        with self.lock:
            self._evolve_all(self.now())
            return Q_(self.wafers[wafer_id].thickness_at(x.m_as(U.mm), y.m_as(U.mm)), U.nm)

    def true_exposures(self, wafer_id: str) -> list[dict[str, Any]]:
        """Every field exposed on a wafer: position, dose delivered, irradiance, time."""
        with self.lock:
            self._evolve_all(self.now())
            return [
                {
                    "x": Q_(e.x, U.mm),
                    "y": Q_(e.y, U.mm),
                    "dose": Q_(e.dose, U.mJ_per_cm2),
                    "irradiance": Q_(e.irradiance, U.mW_per_cm2),
                    "duration": Q_(e.duration, U.s),
                }
                for e in self.wafers[wafer_id].exposures
            ]

    def true_contrast(
        self,
        *,
        resist: ResistParameters | None = None,
        thickness: Any = None,
        peb_temperature: Any = None,
        peb_time: Any = None,
        develop_time: Any = None,
        soft_bake_temperature: Any = None,
        soft_bake_time: Any = None,
        wafer_id: str | None = None,
    ) -> dict[str, Any]:
        """The resist's true contrast curve for a process, and its figures.

        The curve is the simulator's own noise-free physics - the functions
        the develop step uses (:func:`~sim_instruments.physics.developed_thickness`:
        absorbance through the film, gel point, gel fraction, anchoring,
        dissolution) - for a wafer's own record (``wafer_id``: its film,
        solvent when exposed and after the PEB, PEB integral with its
        solvent history, develop time; ``thickness`` overrides the film as
        exposed), or for a process: ``thickness`` (film before exposure),
        ``peb_temperature``, ``peb_time``, ``develop_time`` and optionally
        the soft bake (default 100 degC, 60 s), baked ideally
        (:func:`~sim_instruments.physics.process_history`). It is not
        labctl's estimate; the figures follow the one definition of
        docs/analysis.md (:func:`~sim_instruments.physics.contrast_construction`):

        - x = log10(dose / (mJ/cm2)), y = NRT = thickness after development /
          thickness before exposure.
        - plateau P = the NRT the film keeps at high dose where the curve has
          levelled off: the supremum of NRT from the last dose on the floor
          up to where the curve stops rising - the first dose after which it
          rises by less than 0.1 % over a decade - or 1000x that floor dose.
        - S = the maximum of dy/dx (per decade, the steepest part of the
          transition), at the point (x*, y*); forward differences on a grid
          of 4000 points per decade around it, so the slope of a kink (the
          steepest slope right at the onset) is found one-sided.
        - Dg: where the tangent y = y* + S (x - x*) reaches 0:
          log10 Dg = x* - y*/S.
        - D100: where the tangent reaches P: log10 D100 = x* + (P - y*)/S.
        - gamma = 1 / log10(D100/Dg) (= S/P).
        - onset = the lowest dose where NRT reaches 5 % of P (the first dose
          with film).
        - D50 = the dose where NRT reaches P/2.

        Returns ``dg``, ``d100``, ``onset``, ``d50`` (mJ/cm2 quantities;
        ``gel_dose`` is ``dg`` for older callers), ``gamma`` and ``plateau``
        (floats), ``max_slope`` (S, per decade, a float) and ``nrt``, the
        curve: a callable from a dose in mJ/cm2 (float) to the NRT.
        """
        if wafer_id is not None:
            with self.lock:
                self._evolve_all(self.now())
                wafer = self.wafers[wafer_id]
                resist = wafer.resist_parameters
                assert resist is not None
                thermal = wafer.thermal_dose
                develop = wafer.develop_time
                exposed_solvent = (
                    wafer.solvent if wafer.solvent_before_peb is None else wafer.solvent_before_peb
                )
                solvent_now = wafer.solvent
                exposed_film = (
                    wafer.thickness_before_exposure(0.0, 0.0)
                    if thickness is None
                    else thickness.m_as(U.nm)
                )
        else:
            resist = resist or self.resist
            exposed_solvent, solvent_now, thermal = physics.process_history(
                resist,
                physics.DEFAULT_SOFT_BAKE_TEMPERATURE
                if soft_bake_temperature is None
                else soft_bake_temperature.m_as(U.degC),
                physics.DEFAULT_SOFT_BAKE_TIME
                if soft_bake_time is None
                else soft_bake_time.m_as(U.s),
                peb_temperature.m_as(U.degC),
                peb_time.m_as(U.s),
            )
            develop = develop_time.m_as(U.s)
            exposed_film = thickness.m_as(U.nm)
        # The film as it goes into the developer: the solvent the PEB drove out
        # is gone (the PEB shrink is applied layer by layer in the physics).
        film = exposed_film * (1.0 - exposed_solvent) / (1.0 - solvent_now)
        chemistry: ResistParameters = resist

        def nrt(dose: float) -> float:
            if exposed_film <= 0:
                return 0.0
            kept = physics.developed_thickness(chemistry, film, dose, thermal, develop)
            return kept / exposed_film

        figures = physics.contrast_construction(nrt)
        dose_unit = U.mJ_per_cm2
        return {
            "dg": Q_(figures["dg"], dose_unit),
            "gel_dose": Q_(figures["dg"], dose_unit),
            "d100": Q_(figures["d100"], dose_unit),
            "onset": Q_(figures["onset"], dose_unit),
            "d50": Q_(figures["d50"], dose_unit),
            "gamma": float(figures["gamma"]),
            "plateau": float(figures["plateau"]),
            "max_slope": float(figures["max_slope"]),
            "nrt": nrt,
        }

    def safe_state_report(self) -> dict[str, dict[str, Any]]:
        """The simulators' own view of the bench (for checking safe state)."""
        with self.lock:
            self._evolve_all(self.now())
            return {role: device.safe_state_report() for role, device in self.devices.items()}

    # -- persistence ----------------------------------------------------------------------

    def changed(self) -> None:
        self._dirty = True
        for tool, wafer_id in self.holders.items():
            if wafer_id is not None and tool:
                self._dirty_wafers.add(wafer_id)

    def _save_if_changed(self) -> None:
        if self._dirty:
            self.save()

    def _wafer_path(self, wafer_id: str) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "wafers" / f"{quote(wafer_id, safe='')}.json"

    def save(self) -> None:
        """Write the bench's state to the data directory, if it has one.

        The instruments and the wafers on the tools (what changes with time)
        are appended as one JSON line to ``state.jsonl``, one ``write()`` per
        change - a quarter of the cost of rewriting and renaming a file; the
        restore takes the last complete line, so a process killed at any
        moment leaves the previous or the new state, never half of one. The
        journal is compacted to its last line past :data:`STATE_COMPACT_BYTES`.
        A wafer in the cassette is written to ``wafers/<id>.json`` (atomic
        rename) when it gets there. (Surviving a power cut would need an fsync
        per change; a killed process does not.)
        """
        if self.data_dir is None or self.files is None:
            self._dirty = self._light_delivered = False
            self._dirty_wafers.clear()
            return
        held = {wafer_id for wafer_id in self.holders.values() if wafer_id is not None}
        for wafer_id in sorted(self._dirty_wafers - held):
            data = json.dumps(self.wafers[wafer_id].to_dict()).encode("utf-8")
            if self.files.replace(self._wafer_path(wafer_id), data):
                self._dirty_wafers.discard(wafer_id)
        self._dirty_wafers -= held  # saved in the state line below, as every time
        self.wafers.settle(held | self._dirty_wafers)
        devices = {
            role: {
                "state": device.state(),
                "now": device.now,
                "faults": [f.to_dict() for f in device.faults],
                "link_down": device.link_down,
                "commands_executed": device.commands_executed,
            }
            for role, device in self.devices.items()
        }
        line = (
            json.dumps(
                {
                    "version": STATE_VERSION,
                    "time": self.now(),
                    "seed": self.seed,
                    "holders": self.holders,
                    "wafers_made": self.wafers_made,
                    "held_wafers": {w: self.wafers[w].to_dict() for w in sorted(held)},
                    "devices": devices,
                }
            )
            + "\n"
        ).encode("utf-8")
        path = self.data_dir / STATE_FILE
        if self._state_bytes is None or self._state_bytes + len(line) > STATE_COMPACT_BYTES:
            # Start (or compact) the journal: its last state alone, renamed into place.
            if self.files.replace(path, line):
                self._state_bytes = len(line)
        elif self.files.append(path, line):
            self._state_bytes += len(line)
        self._dirty = self._light_delivered = False

    def _restore(self) -> bool:
        assert self.data_dir is not None
        assert self.files is not None
        path = self.data_dir / STATE_FILE
        if not path.exists():
            return False
        state = None
        for line in self.files.last_lines(path):
            try:
                state = json.loads(line)
                break
            except ValueError:  # a line cut short by a crash: the one before stands
                continue
        if state is None:
            return False
        self._time_offset = state["time"] - self.clock.monotonic()
        self.holders = {tool: state["holders"].get(tool) for tool in TOOLS}
        # The wafers on the tools are in the state line; the rest are read from
        # wafers/<id>.json when asked for (a state line of an older bench
        # also lists every wafer: they are all on disk).
        for wafer_id, data in state.get("held_wafers", {}).items():
            self.wafers[wafer_id] = Wafer.from_dict(data)
        self.wafers_made = state.get("wafers_made", len(state.get("wafers", ())))
        for role, saved in state["devices"].items():
            device = self.devices[role]
            device.restore(saved["state"])
            device.now = saved["now"]
            device.faults = [Fault(**f) for f in saved["faults"]]
            device.link_down = saved["link_down"]
            device.commands_executed = saved["commands_executed"]
            # The noise continues from a generator re-seeded by the command
            # count, not from the saved generator state (625 words a device,
            # most of the cost of a save): still deterministic for a seed.
            device.rng.seed(f"{self.seed}:{role}:{device.commands_executed}")
        return True

    def close(self) -> None:
        """Save (see :class:`BenchFiles` for a failing disk) and close the files."""
        with self.lock:
            try:
                self.save()
            finally:
                if self.files is not None:
                    self.files.close()

    # -- reaching it in process --------------------------------------------------------------

    def transport(self, role: str, settings: LinkSettings | None = None) -> BenchTransport:
        return BenchTransport(self, role, settings or LinkSettings())

    def station(self, path: str | Path | None = None) -> Any:
        """A :class:`labctl.station.Station` whose roles talk to this bench in process."""
        from labctl.station import Station, load_station

        from . import definition_path

        config = load_station(path or definition_path("bench_station.toml"))

        def factory(role_config: Any, settings: LinkSettings) -> Transport:
            return self.transport(role_config.resource, settings)

        return Station(config, clock=self.clock, transport_factory=factory)


class BenchTransport(Transport):
    """A transport to one instrument of an in-process bench, on the bench's clock.

    Reading waits by advancing the virtual clock to the moment the reply is
    on the wire (or to the timeout), so drivers, timeouts and instrument
    dynamics all run on one deterministic time line.
    """

    def __init__(self, bench: VirtualBench, role: str, settings: LinkSettings) -> None:
        super().__init__(f"{role} (virtual bench)", settings)
        self.bench = bench
        self.role = role
        self._rx = bytearray()
        bench.device(role)  # fail early on an unknown role

    def _check_link(self) -> None:
        if self.bench.devices[self.role].link_down:
            raise LinkLost("link lost (injected)", instrument=self.name)

    def _open(self) -> None:
        if self.bench.devices[self.role].link_down:
            self.bench.reconnect(self.role)
        self._rx.clear()

    def _close(self) -> None:
        self._rx.clear()

    def _apply_timeout(self, timeout: float) -> None:
        pass

    def _write(self, data: bytes) -> None:
        self._check_link()
        self.bench.deliver(self.role, data)

    def _wait_for(self, done: Callable[[], bool]) -> None:
        bench = self.bench
        deadline = bench.now() + self._timeout
        while True:
            self._rx += bench.take_output(self.role, bench.now())
            if done():
                return
            self._check_link()
            ready = bench.next_ready(self.role)
            now = bench.now()
            if ready is None or ready > deadline:
                bench.clock.sleep(max(0.0, deadline - now))
                self._rx.clear()
                raise InstrumentTimeout(
                    f"no complete reply within {self._timeout:g} s", instrument=self.name
                )
            bench.clock.sleep(max(0.0, ready - now))

    def _read_until(self, terminator: bytes) -> bytes:
        self._wait_for(lambda: terminator in self._rx)
        end = self._rx.find(terminator) + len(terminator)
        frame = bytes(self._rx[:end])
        del self._rx[:end]
        return frame

    def _read_exact(self, count: int) -> bytes:
        self._wait_for(lambda: len(self._rx) >= count)
        frame = bytes(self._rx[:count])
        del self._rx[:count]
        return frame

    def _now(self) -> float:
        return self.bench.now()

    def _take_pending(self) -> bytes:
        junk = bytes(self._rx) + self.bench.take_output(self.role, self.bench.now())
        self._rx.clear()
        return junk

    def _drain(self, quiet: float, limit: float) -> bytes:
        junk = bytearray(self._rx)
        self._rx.clear()
        bench = self.bench
        start = bench.now()
        while bench.now() - start < limit:
            bench.clock.sleep(quiet)
            chunk = bench.take_output(self.role, bench.now())
            if not chunk:
                break
            junk += chunk
        return bytes(junk)


def wall_time() -> float:
    """Wall-clock seconds, for benchmarks of simulated time."""
    return time.perf_counter()
