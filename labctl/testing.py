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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from .errors import InstrumentTimeout
from .transport import LinkSettings, Transport

__all__ = ["ScriptedTransport", "expected_protocol"]

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
