"""One poller for every open page: what changed in the store, read once, sent to all.

:meth:`LiveFeed.refresh` (in a worker thread, every ``period`` s) asks the
reader for its change mark - ``PRAGMA data_version``, microseconds - and
whether the processes it shows (the current run's, the queue runner's) are
still alive. Only when something changed does it read, and then only what
is new: samples, events and measurements after the last row id it saw, the
current run's journal, the queue. It builds one message, encodes it once,
and every page's stream gets the same bytes: twenty pages cost what one
does, and a page that only watches never reaches the store.

Messages (server-sent events, ``docs/web.md``):

- ``snapshot`` - the whole live state: ``status`` (the current run and its
  progress, the queue, the night's estimate), the latest trace of each
  channel, the current run's recent events and measurements. The first
  message of every stream, and sent again when the current run changes.
- ``update`` - ``status`` again, and only what is new: trace points (a
  trace marked ``reset`` starts over - a new step, or a step started again
  on resume), events, measurements.

Each message has a ``version``; an update applies to the version before it.
A page that missed one (a slow reader, dropped from the fan-out) is sent a
snapshot instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from ..store import CHANNEL_UNITS, _process_alive
from .views import CHANNELS, Views, event_json, measurement_json, step_json

__all__ = ["RESYNC", "LiveFeed", "dumps"]

log = logging.getLogger(__name__)

#: Recent events and measurements a snapshot carries.
RECENT_EVENTS = 200
RECENT_MEASUREMENTS = 60
#: Messages a page's stream may have waiting before it is sent a snapshot instead.
BACKLOG = 32
#: Put in a stream's queue for a page that fell behind: it is sent the whole state.
RESYNC = b""


class _Trace:
    """The latest step's points of one channel."""

    def __init__(self, channel: str, seq: int, step: dict[str, Any] | None) -> None:
        self.channel = channel
        self.seq = seq
        self.step = step
        self.points: list[list[float]] = []
        self.last_t = -1.0

    def header(self) -> dict[str, Any]:
        step = self.step or {}
        return {
            "channel": self.channel,
            "unit": CHANNELS[self.channel],
            "t_unit": "s",
            "seq": self.seq,
            "step": step.get("name"),
            "wafer": step.get("wafer"),
            "detail": step.get("detail"),
        }

    def json(self) -> dict[str, Any]:
        return {**self.header(), "reset": True, "points": list(self.points)}


def _value(row: dict[str, Any]) -> float:
    """A sample in its channel's unit (older stores may hold another spelling)."""
    value = float(row["value"])
    wanted = CHANNEL_UNITS.get(row["channel"])
    if wanted is None or row["unit"] == wanted:
        return value
    from ..units import Q_, canonical_unit

    try:
        if canonical_unit(row["unit"]) == wanted:
            return value
        return float(Q_(value, row["unit"]).m_as(wanted))
    except Exception:  # a unit pint cannot read: shown as recorded
        return value


class LiveFeed:
    """The live state of the page and its fan-out to every open stream."""

    def __init__(self, views: Views, *, period: float = 0.25) -> None:
        self.views = views
        self.reader = views.reader
        self.period = period
        self.version = 0
        self.closing = False
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._mark: Any = object()
        self._alive: tuple[Any, ...] = ()
        self._run_id: str | None = None
        self._after = {"samples": 0, "events": 0, "measurements": 0}
        self._traces: dict[str, _Trace] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self._measurements: deque[dict[str, Any]] = deque(maxlen=RECENT_MEASUREMENTS)
        self._status: dict[str, Any] = {}
        self._body: dict[str, Any] = {
            "status": {},
            "traces": {},
            "events": [],
            "measurements": [],
        }
        self._snapshot: bytes = _encode("snapshot", 0, self._body)
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self._last_status_at = 0.0
        #: Refreshes that read the store (for the benchmark and the tests).
        self.reads = 0

    # -- the poller -----------------------------------------------------------------

    def _alive_key(self) -> tuple[Any, ...]:
        pids = [self._status.get("run_pid"), *list(self._status.get("queue_pids", []))]
        return tuple((pid, _process_alive(pid)) for pid in pids if pid)

    def refresh(self, *, force: bool = False) -> bytes | None:
        """Read what changed; return the encoded message for every stream (None: nothing).

        One refresh at a time (the poller's; one after an action): they take turns.
        """
        with self._refreshing:
            return self._refresh(force)

    def _refresh(self, force: bool) -> bytes | None:
        mark = self.reader.change_mark()
        alive = self._alive_key()
        # The wall clock and the estimate move on without a write: at most once a second.
        stale = time.monotonic() - self._last_status_at > 1.0 and self._status.get("live")
        if not force and mark == self._mark and alive == self._alive and not stale:
            return None
        self.reads += 1
        try:
            message = self._read()
        except BaseException:
            self._run_id = None  # read it all again next time
            raise
        self._mark = mark
        self._alive = self._alive_key()
        self._last_status_at = time.monotonic()
        version = self.version + 1
        # Built here, off the event loop: a page that connects gets these bytes at once.
        body = self._snapshot_body()
        snapshot = _encode("snapshot", version, body)
        with self._lock:
            self.version = version
            self._body = body
            self._snapshot = snapshot
        return snapshot if message is None else _encode("update", version, message)

    def _current(self) -> dict[str, Any] | None:
        running = self.reader.running()
        if running:
            return running[0]
        latest = self.reader.runs(1)
        return latest[0] if latest else None

    def _read(self) -> dict[str, Any] | None:
        """Bring the state up to date; the update's body, or None if the run changed."""
        brief = self._current()
        run_id = brief["run_id"] if brief is not None else None
        changed = run_id != self._run_id
        if changed:
            self._run_id = run_id
            self._after = {"samples": 0, "events": 0, "measurements": 0}
            self._traces = {}
            self._events.clear()
            self._measurements.clear()
        run = self.reader.run(run_id) if run_id is not None else None
        steps = self.reader.steps(run_id) if run_id is not None else []
        by_seq = {s["seq"]: s for s in steps}
        traces: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        measurements: list[dict[str, Any]] = []
        if run_id is not None:
            if changed:
                samples = self.reader.sample_rows(run_id)
                new_events = self.reader.events(run_id)
                new_rows = self.reader.measurement_rows(run_id)
            else:
                samples = self.reader.samples_after(run_id, self._after["samples"])
                new_events = self.reader.events_after(run_id, self._after["events"])
                new_rows = self.reader.measurements_after(run_id, self._after["measurements"])
            traces = self._add_samples(samples, by_seq)
            events = [event_json(e) for e in new_events]
            measurements = [measurement_json(r) for r in new_rows]
            for key, rows in (
                ("samples", samples),
                ("events", new_events),
                ("measurements", new_rows),
            ):
                if rows:
                    self._after[key] = max(int(r["id"]) for r in rows)
            self._events.extend(events)
            self._measurements.extend(measurements)
        self._status = self._status_of(run, steps)
        if changed:
            return None
        return {
            "status": self._public_status(),
            "traces": traces,
            "events": events,
            "measurements": measurements,
        }

    def _add_samples(
        self, rows: list[dict[str, Any]], steps: dict[int, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Extend the traces; what each changed trace gained (or all of it, if it restarted)."""
        gained: dict[str, dict[str, Any]] = {}
        for row in rows:
            channel = row["channel"]
            if channel not in CHANNELS:
                continue
            seq, t = int(row["seq"]), float(row["t"])
            trace = self._traces.get(channel)
            step = steps.get(seq)
            started = step.get("bench_started") if step else None
            if (
                started is not None
                and row.get("bench_time") is not None
                and float(row["bench_time"]) < float(started) - 1e-6
            ):
                continue  # an earlier attempt of a step done again on resume
            if trace is not None and seq < trace.seq:
                continue
            if trace is None or seq > trace.seq or t < trace.last_t - 1e-9:
                trace = _Trace(channel, seq, step_json(step) if step else None)
                self._traces[channel] = trace
                gained[channel] = {**trace.header(), "reset": True, "points": []}
            elif channel not in gained:
                gained[channel] = {**trace.header(), "reset": False, "points": []}
            value = _value(row)
            if not math.isfinite(value):
                continue  # no reading: a gap, not a point
            point = [round(t, 3), value]
            trace.points.append(point)
            trace.last_t = t
            gained[channel]["points"].append(point)
        return gained

    def _status_of(self, run: dict[str, Any] | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
        now = datetime.now(UTC)
        entries = self.reader.queue()
        queue = self.views.queue(entries)
        status: dict[str, Any] = {
            "benches": self.reader.benches(),
            "location": self.reader.location,
            "now": now.isoformat(timespec="seconds"),
            "run": None,
            "live": False,
            "queue": queue,
            "night": self.views.night(run, steps, queue, now),
            "runs": [[r["run_id"], r["status"], r["ended_at"]] for r in self.reader.runs(30)],
            "run_pid": None,
            "queue_pids": [e["pid"] for e in entries if e.get("pid")],
        }
        if run is not None:
            status["run"] = {
                **self.views.run_brief(run),
                "progress": self.views.progress(run, steps, now),
                "wafer": next((s["wafer_id"] for s in reversed(steps) if s["wafer_id"]), None),
            }
            status["live"] = run["status"] == "running"
            status["run_pid"] = run.get("pid") if run["status"] == "running" else None
        return status

    def _public_status(self) -> dict[str, Any]:
        return {k: v for k, v in self._status.items() if k not in ("run_pid", "queue_pids")}

    def _snapshot_body(self) -> dict[str, Any]:
        return {
            "status": self._public_status(),
            "traces": {channel: trace.json() for channel, trace in self._traces.items()},
            "events": list(self._events),
            "measurements": list(self._measurements),
        }

    def snapshot(self) -> bytes:
        """The whole live state as one ``snapshot`` message (as of the last refresh)."""
        with self._lock:
            return self._snapshot

    def state(self) -> dict[str, Any]:
        """``GET /api/live``: the snapshot's body, with its version."""
        with self._lock:
            return {"version": self.version, **self._body}

    # -- the fan-out ----------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, message: bytes | None) -> None:
        """Give every stream the message (None: end the streams). In the event loop."""
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A page that cannot keep up: what it has waiting is dropped
                # and it gets the whole state instead (RESYNC: built off the loop).
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None if message is None else RESYNC)

    async def poll(self) -> None:
        """Refresh every ``period`` s until :meth:`close`; publish what changed."""
        loop = asyncio.get_running_loop()
        while not self.closing:
            try:
                message = await loop.run_in_executor(None, self.refresh)
            except Exception:  # a store that cannot be read now may be readable next time
                log.exception("live page: reading the store failed")
                message = None
            if message is not None:
                self.publish(message)
            await asyncio.sleep(self.period)

    def close(self) -> None:
        """End the poller and every stream."""
        self.closing = True
        self.publish(None)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity made ``None`` (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dumps(body: Any) -> str:
    """Compact JSON, valid for a browser (a non-finite number is ``null``)."""
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(body), separators=(",", ":"), allow_nan=False, default=str)


def _encode(kind: str, version: int, body: dict[str, Any]) -> bytes:
    data = dumps({"version": version, **body})
    return f"id: {version}\nevent: {kind}\ndata: {data}\n\n".encode()
