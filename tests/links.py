"""Real links for tests: pseudo-terminal pairs and loopback TCP servers.

A :class:`Peer` is the instrument's end of a link; it answers what it reads
with a ``respond(bytes) -> bytes`` function, either a pyvisa-sim device (the
same definitions as ``sim_instruments/*.yaml``) or a scripted function.
Servers bind to 127.0.0.1 only and stop when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Respond = Callable[[bytes], bytes]


def pyvisa_sim_device(definitions: Path, resource: str) -> Any:
    """A fresh pyvisa-sim device object for ``resource`` from a definition file."""
    from pyvisa.rname import to_canonical_name
    from pyvisa_sim.parser import get_devices

    from labctl.transport import _keep_reply_spaces

    _keep_reply_spaces()
    return get_devices(definitions, False)[to_canonical_name(resource)]


def device_responder(device: Any) -> Respond:
    """Feed bytes to a pyvisa-sim device one at a time; return what it has to say."""

    def respond(data: bytes) -> bytes:
        for byte in data:
            device.write(bytes([byte]))
        out = bytearray()
        while True:
            chunk, _ = device.read()
            if not chunk:
                return bytes(out)
            out += chunk

    return respond


class Peer:
    """The instrument's end of one link, answering on a thread."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _serve_fd(self, read_fd: int, write: Callable[[bytes], Any]) -> bool:
        """Serve until stopped or the other end closes; True if it closed."""
        while not self._stop.is_set():
            ready, _, _ = select.select([read_fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(read_fd, 4096)
            except OSError:
                return True
            if not data:
                return True
            self.received += data
            reply = self.respond(data)
            if reply:
                write(reply)
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class PtyPeer(Peer):
    """A pseudo-terminal pair: the driver opens :attr:`port`, the peer holds the master."""

    def __init__(self, respond: Respond) -> None:
        super().__init__(respond)
        self.master, self._slave = os.openpty()
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._serve_fd(self.master, lambda data: os.write(self.master, data))

    def hang_up(self) -> None:
        """Close the instrument's end (an unplugged adapter)."""
        self.stop()
        os.close(self.master)
        os.close(self._slave)

    def close(self) -> None:
        self.stop()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpPeer(Peer):
    """A loopback TCP server; accepts one connection after another."""

    def __init__(self, respond: Respond) -> None:
        super().__init__(respond)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._current: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.server.settimeout(0.05)
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._current = connection
            with connection:
                self._serve_fd(connection.fileno(), connection.sendall)
            self._current = None

    def drop_connection(self) -> None:
        """Close the current connection from the instrument's side (a lost link)."""
        deadline = time.monotonic() + 5
        while self._current is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._current is not None:
            self._current.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stop()
        self.server.close()
