"""Byte-exact protocol testing, in the style of PyMeasure's ``expected_protocol``.

::

    with expected_protocol(
        IntrasSCK300P,
        [(b"GetRPM:98\\r\\n", b"OK,2987:86\\r\\n")],
    ) as spinner:
        assert spinner.speed == Q_(2987, "rpm")

Each pair is (bytes the driver must write, bytes the instrument answers).
A write that differs from the next expected one fails at once; a pair left
unused, or reply bytes left unread, fails when the block ends. ``None`` as
the first element means "the instrument sends this without being asked"
(a power-up banner); ``None`` as the second means "no reply".

A session recorded on a bench (``labctl run ... --record FILE``,
``docs/recording.md``) is a test with no hardware: a whole run with
:func:`protocols.testing.assert_replays` (the protocol layer's: it needs the
protocols), or, one level down, drivers on transports that answer from it::

    replay = replay_transports(DATA / "bench-2026-11-24.rec")
    station = replay.station()          # every role, on the replay clock
    station.connect()                   # the recorded connect, byte for byte
    replay.assert_done()                # ... and nothing of it left out
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import InstrumentTimeout
from .recording import ReplayMismatch, ReplaySession, read_recording
from .transport import LinkSettings, Transport

__all__ = [
    "ReplayMismatch",
    "ReplaySession",
    "ScriptedTransport",
    "expected_protocol",
    "replay_transports",
]

T = TypeVar("T")


class ScriptedTransport(Transport):
    """An in-memory transport that plays a fixed dialogue and checks it."""

    def __init__(self, pairs: Sequence[tuple[bytes | None, bytes | None]], name: str = "scripted"):
        super().__init__(name, LinkSettings(timeout=0.0, resync_quiet=0.0, resync_limit=0.0))
        self._pairs = list(pairs)
        self._index = 0
        self._pending = bytearray()
        self.written: list[bytes] = []
        self._release_unsolicited()

    def _release_unsolicited(self) -> None:
        while self._index < len(self._pairs) and self._pairs[self._index][0] is None:
            reply = self._pairs[self._index][1]
            self._pending += reply or b""
            self._index += 1

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _apply_timeout(self, timeout: float) -> None:
        pass

    def _write(self, data: bytes) -> None:
        self.written.append(data)
        if self._index >= len(self._pairs):
            raise AssertionError(f"unexpected write {data!r}: the dialogue is over")
        expected, reply = self._pairs[self._index]
        if data != expected:
            raise AssertionError(f"write #{self._index}: expected {expected!r}, got {data!r}")
        self._index += 1
        self._pending += reply or b""
        self._release_unsolicited()

    def _read_until(self, terminator: bytes) -> bytes:
        index = self._pending.find(terminator)
        if index < 0:
            # A real link would have consumed what arrived before timing out.
            self._pending.clear()
            raise InstrumentTimeout(
                f"no reply ending in {terminator!r} ",
                instrument=self.name,
            )
        end = index + len(terminator)
        frame = bytes(self._pending[:end])
        del self._pending[:end]
        return frame

    def _read_exact(self, count: int) -> bytes:
        if len(self._pending) < count:
            self._pending.clear()
            raise InstrumentTimeout(f"wanted {count} bytes, fewer arrived", instrument=self.name)
        frame = bytes(self._pending[:count])
        del self._pending[:count]
        return frame

    def _take_pending(self) -> bytes:
        return self._drain(0.0, 0.0)

    def _drain(self, quiet: float, limit: float) -> bytes:
        junk = bytes(self._pending)
        self._pending.clear()
        return junk

    def assert_done(self) -> None:
        """Fail if any pair was not used or any reply byte not read."""
        if self._index != len(self._pairs):
            left = self._pairs[self._index :]
            raise AssertionError(f"{len(left)} expected exchange(s) never happened: {left!r}")
        if self._pending:
            raise AssertionError(f"reply bytes never read: {bytes(self._pending)!r}")


@contextlib.contextmanager
def expected_protocol(
    driver_class: type[T],
    pairs: Sequence[tuple[bytes | None, bytes | None]],
    **kwargs: Any,
) -> Iterator[T]:
    """Build ``driver_class`` on a :class:`ScriptedTransport` of ``pairs``.

    Keyword arguments go to the driver. The dialogue must be used up exactly.
    """
    transport = ScriptedTransport(pairs)
    driver = driver_class(transport, **kwargs)  # type: ignore[call-arg]
    yield driver
    transport.assert_done()


def replay_transports(path: str | Path) -> ReplaySession:
    """A recording opened for replay, at its start.

    It gives a transport factory (``transport_factory``, for
    :class:`~labctl.station.Station`), a whole ``station()`` on its replay
    clock (``clock``), ``phase(name)`` to move on to the part of the session
    a test drives (``connect`` first, then ``run``), and ``assert_done()``.
    Each transport answers from the recording and raises
    :class:`ReplayMismatch` at the first byte that differs. A bad file is an
    :class:`~labctl.errors.InputError` naming its line.
    """
    return ReplaySession(read_recording(path))

