"""Progress of a run: one log line per step where stdout is not a terminal, a bar where it is.

The engine reports every step it starts or replays as a :class:`StepProgress`
(see ``Run(progress=...)``): the step's journal number ``seq`` (n), the
protocol's planned step count ``total`` (N, never below n: it grows when an
adaptive protocol plans another wafer or a quarantined wafer is replaced),
what the step does, and both clocks - ``bench_time``, seconds on the run's
clock since the run started (virtual on ``--sim``), and ``wall_time``, UTC.

Two displays take these events:

- :class:`LogLines` writes one short line per step, flushed at once, for
  ``nohup``, a log file, a pipe or the overnight queue::

      2026-11-24T17:31:02Z bench +00:03:10 step 12/37 soft bake W01 30 s at 95 degC

  The first field is the wall time in UTC (ISO 8601, ``Z``); ``bench`` the
  run clock as hours:minutes:seconds since the run started.
- :class:`ProgressBar` is a rich bar on a terminal: steps done of the
  total, the step under way, elapsed and remaining time. Its count never
  passes its total, and a run that ran to its end leaves it full.

:func:`display_for` picks one for a stream.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from .units import Quantity, canonical_unit

__all__ = [
    "LogLines",
    "ProgressBar",
    "StepProgress",
    "describe_step",
    "display_for",
    "format_bench_time",
    "log_line",
]


@dataclass(frozen=True)
class StepProgress:
    """One step started (or replayed from the journal) - what a progress display shows."""

    run_id: str
    #: The step's journal number, 1-based: n of "step n/N".
    seq: int
    #: Steps the protocol plans in all (N); never below ``seq``; None if it cannot say.
    total: int | None
    name: str
    wafer: str | None
    #: The step's setpoints in a few words ("30 s at 95 degC"); may be empty.
    detail: str
    #: Seconds on the run's clock since the run started (virtual on --sim).
    bench_time: float
    #: When the step started, UTC.
    wall_time: datetime
    #: True for a finished step returned from the journal on resume (nothing moved).
    replayed: bool = False

    def __str__(self) -> str:
        return f"{self.name}{f' {self.wafer}' if self.wafer else ''}"


def _amount(value: Any) -> str:
    if isinstance(value, Quantity):
        unit = canonical_unit(value.units)
        return f"{value.magnitude:.4g}{f' {unit}' if unit else ''}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def describe_step(name: str, parameters: dict[str, Any] | None) -> str:
    """A few words on what a step does, from its parameters (quantities, not JSON)."""
    p = parameters or {}

    def has(*keys: str) -> bool:
        return all(key in p for key in keys)

    if name in ("soft bake", "post-exposure bake") and has("duration", "temperature"):
        return f"{_amount(p['duration'])} at {_amount(p['temperature'])}"
    if name == "prepare plate" and has("temperature"):
        return f"to {_amount(p['temperature'])}"
    if name == "coat" and has("speed", "duration"):
        return f"{_amount(p['speed'])} for {_amount(p['duration'])}"
    if name == "transfer" and has("to"):
        return f"to {p['to']}"
    if name == "expose" and has("field", "dose"):
        return f"{p['field']} {_amount(p['dose'])}"
    if name == "develop" and has("duration"):
        return f"{_amount(p['duration'])}"
    if name == "measure" and has("label", "sites"):
        return f"{p['label']}, {len(p['sites'])} sites"
    scalars = [
        f"{key}={_amount(value)}"
        for key, value in sorted(p.items())
        if isinstance(value, Quantity | int | float | str) and not isinstance(value, bool)
    ]
    text = " ".join(scalars)
    return text if len(text) <= 60 else text[:59] + "…"


def format_bench_time(seconds: float) -> str:
    """``+HH:MM:SS`` (hours grow past 99 if they must)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"+{hours:02d}:{minutes:02d}:{secs:02d}"


def log_line(event: StepProgress) -> str:
    """The log line of a step: wall time (UTC), bench time, n/N, name, wafer, setpoints."""
    wall = event.wall_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    total = "?" if event.total is None else str(max(event.total, event.seq))
    parts = [
        wall,
        "bench",
        format_bench_time(event.bench_time),
        "step",
        f"{event.seq}/{total}",
        event.name,
    ]
    if event.wafer:
        parts.append(event.wafer)
    if event.detail:
        parts.append(event.detail)
    if event.replayed:
        parts.append("(replayed from the journal)")
    return " ".join(parts)


class LogLines:
    """One line per step on ``stream``, flushed at once (stdout by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def __call__(self, event: StepProgress) -> None:
        stream = self.stream or sys.stdout
        stream.write(log_line(event) + "\n")
        stream.flush()

    def finish(self, ran_to_end: bool) -> None:
        """Nothing to settle: every line is out already."""

    def __enter__(self) -> LogLines:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


class ProgressBar:
    """A rich bar: steps done of the planned total, the step under way, elapsed, remaining.

    A step counts as done when the next one starts (or the run ends). The
    total is the engine's (the protocol's plan), raised to the step number if
    a step comes that the plan did not foresee, so the count never passes it;
    :meth:`finish` after a run that ran to its end sets both to the last step.
    A new run id (the next queue entry) starts the bar again.
    """

    def __init__(self, console: Any = None, *, auto_refresh: bool = True) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=auto_refresh,
        )
        self.task = self.progress.add_task("starting", total=None)
        self.run_id: str | None = None
        self.last_seq = 0

    @property
    def completed(self) -> int:
        return int(self.progress.tasks[0].completed)

    @property
    def total(self) -> int | None:
        total = self.progress.tasks[0].total
        return None if total is None else int(total)

    def __call__(self, event: StepProgress) -> None:
        if event.run_id != self.run_id:
            if self.run_id is not None:
                self.progress.reset(self.task, total=None)
            self.run_id = event.run_id
        self.last_seq = event.seq
        total = max(event.total if event.total is not None else 0, event.seq) or None
        self.progress.update(
            self.task,
            total=total,
            completed=event.seq - 1,
            description=str(event)[:34],
        )
        self.progress.refresh()

    def finish(self, ran_to_end: bool) -> None:
        """The run is over: full if it ran to its end, else the steps that finished."""
        if ran_to_end:
            self.progress.update(
                self.task, total=self.last_seq, completed=self.last_seq, description="done"
            )
        else:
            self.progress.update(self.task, completed=max(self.last_seq - 1, 0))
        self.progress.refresh()

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.progress.stop()


def display_for(stream: TextIO | None = None) -> LogLines | ProgressBar:
    """A bar if ``stream`` (stdout by default) is a terminal, log lines otherwise."""
    stream = stream or sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real file
        terminal = False
    return ProgressBar() if terminal else LogLines(stream)
