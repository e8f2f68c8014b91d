"""Clocks: the real one, and a virtual one for simulated benches and tests.

Everything in labctl that waits or timestamps asks a :class:`Clock`, never
:mod:`time` directly, so a whole simulated experiment can run on a
:class:`VirtualClock` - deterministic, an hour of bench time in milliseconds -
and a test never depends on how loaded the machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "ScaledClock", "VirtualClock", "seconds"]


def seconds(duration: Any) -> float:
    """Seconds in ``duration``: a pint quantity of time, or a number of seconds."""
    if hasattr(duration, "m_as"):
        return float(duration.m_as("s"))
    return float(duration)


@runtime_checkable
class Clock(Protocol):
    """What labctl needs of time."""

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin; never goes backwards."""
        ...

    def sleep(self, duration: Any) -> None:
        """Wait ``duration`` (a time quantity, or seconds)."""
        ...

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware (UTC)."""
        ...


class RealClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, duration: Any) -> None:
        delay = seconds(duration)
        if delay > 0:
            time.sleep(delay)

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that moves only when someone sleeps on it.

    ``sleep`` returns at once and advances the time; listeners registered
    with :meth:`on_advance` (simulated instruments) are called with the new
    time so their dynamics follow. Thread-safe; deterministic for a
    single-threaded caller.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def sleep(self, duration: Any) -> None:
        self.advance(seconds(duration))

    def advance(self, delta: float) -> None:
        """Move time forward by ``delta`` seconds and notify listeners."""
        if delta < 0:
            raise ValueError(f"a clock cannot go backwards (delta {delta} s)")
        with self._lock:
            self._elapsed += delta
            now = self._elapsed
            listeners = list(self._listeners)
        for listener in listeners:
            listener(now)

    def on_advance(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(monotonic_seconds)`` after every advance."""
        with self._lock:
            self._listeners.append(listener)


class ScaledClock:
    """Real time, optionally sped up: ``speed`` bench seconds per wall second.

    For served simulators: a client on a real link waits in real time, and a
    sped-up bench lets a long bake pass quickly while still being real time
    to the client's socket.
    """

    def __init__(self, speed: float = 1.0, *, epoch: float | None = None) -> None:
        """``epoch``: the wall time (Unix s) at which this clock read 0.

        Two processes given the same speed and epoch keep one time line (a
        served bench and the run that drives it); without an epoch the clock
        starts at 0 now.
        """
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.epoch = time.time() if epoch is None else epoch
        # Monotonic from here on: the wall clock only places the origin.
        self._origin = time.monotonic() - (time.time() - self.epoch)
        self._start = datetime.fromtimestamp(self.epoch, UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def sleep(self, duration: Any) -> None:
        delay = seconds(duration) / self.speed
        if delay > 0:
            time.sleep(delay)
