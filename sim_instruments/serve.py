"""Serve the virtual bench on real links: pseudo-terminals and loopback TCP.

``labctl sim serve`` runs this in its own process, so the bench's physical
state outlives the software that drives it, as real hardware does:

* the serial instruments (spin coater, hotplate, shutter, stage) each get a
  pseudo-terminal, reached through a stable symlink in the serve directory
  (``<dir>/spin_coater`` ...) - after an injected lost link the pty is
  replaced and the symlink re-pointed, the way a USB adapter re-enumerates;
* the USBTMC and network instruments (LED driver, power meter, ellipsometer)
  each get a TCP socket on 127.0.0.1 (VISA ``TCPIP0::127.0.0.1::<port>::SOCKET``);
* a wafer handler (labctl's own small ASCII protocol, see
  ``docs/instruments/wafer_handler.md``) moves wafers and injects faults.

Every listener binds to 127.0.0.1 only. The bench runs on a real-time
clock, optionally sped up; replies leave when the instrument would send them.

Loopback is not private: any local process can connect. The wafer handler
moves wafers, dispenses and injects faults, so it serves only a client that
first sends ``AUTH <token>``; the token is random per server and written
only into the station file (owner-only, like the serve directory - see
:mod:`labctl.private`). The instrument links speak their instruments' own
protocols, which have no authentication.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import select
import socket
import threading
import tomllib
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.names import HANDLER_WAFER, name_problem, shown
from labctl.private import private_dir, write_private

from .bench import VirtualBench

__all__ = [
    "AUTH_TIMEOUT",
    "SERIAL_ROLES",
    "TCP_ROLES",
    "BenchServer",
    "clock_of",
    "handler_of",
    "parse_fault",
]

SERIAL_ROLES = ("spin_coater", "hotplate", "exposure_shutter", "exposure_stage")
TCP_ROLES = ("exposure_source", "exposure_meter", "ellipsometer")
LOOPBACK = "127.0.0.1"
#: The longest a link sleeps with no input and no reply due (s, wall clock): how
#: soon it sees a stop or a lost link. Replies are sent when due, not polled for
#: (a 1 ms poll of seven links kept an idle server at 8 % of a core).
IDLE_WAIT = 0.05
#: Where a served bench with a data directory keeps its token and ports.
IDENTITY_FILE = "served.json"
#: How a served bench's serial instruments are reached: pseudo-terminals, or TCP.
SERIAL_LINKS = ("pty", "tcp")


def default_serial_link() -> str:
    """``"pty"`` where the system has pseudo-terminals (POSIX), else ``"tcp"`` (Windows)."""
    return "pty" if hasattr(os, "openpty") and os.name == "posix" else "tcp"


#: How long the handler waits for a new connection's ``AUTH`` line (s, wall clock).
AUTH_TIMEOUT = 10.0
#: The longest ``AUTH`` line read (bytes): a token is at most 256 characters.
_AUTH_LINE_MAX = 300
#: Replies to a connection that did not authenticate; it is then closed.
AUTH_REQUIRED = "ERR authentication required: AUTH <token> first"
WRONG_TOKEN = "ERR wrong token"


def handler_of(station_file: str | Path) -> tuple[tuple[str, int], str | None]:
    """A served station file's wafer handler: ``((host, port), token)``.

    For clients outside labctl's station code (tests, a fault injector);
    raises ``KeyError`` when the file has no ``[handler]``.
    """
    table = tomllib.loads(Path(station_file).read_text(encoding="utf-8"))["handler"]
    host, _, port = str(table["address"]).rpartition(":")
    token = table.get("token")
    return (host, int(port)), None if token is None else str(token)


def clock_of(bench: VirtualBench) -> tuple[float, float] | None:
    """The served bench's clock: (speed in bench s per wall s, epoch in Unix s).

    ``None`` for a bench not on wall time (a virtual clock moves only when
    its owner sleeps: a client cannot share it).
    """
    speed = getattr(bench.clock, "speed", None)
    epoch = getattr(bench.clock, "epoch", None)
    if speed is None or epoch is None:
        return None
    return float(speed), float(epoch)


def parse_fault(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``role:kind[:key=value,...]`` -> (role, kind, options) for :meth:`VirtualBench.inject`."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f"{spec!r} is not role:kind[:key=value,...]")
    role, kind = parts[0], parts[1]
    options: dict[str, Any] = {}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, equals, value = item.partition("=")
            if not equals or key not in ("start", "count", "probability", "delay"):
                raise ValueError(f"{item!r}: options are start, count, probability, delay")
            options[key] = int(value) if key == "count" else float(value)
    return role, kind, options


class _Link(threading.Thread):
    """One instrument's end of a link: bytes in to the bench, due replies out."""

    def __init__(self, server: BenchServer, role: str) -> None:
        super().__init__(name=f"sim-{role}", daemon=True)
        self.server = server
        self.bench = server.bench
        self.role = role
        self.stopping = threading.Event()

    def pump(self, read_fd: int, send: Any) -> str:
        """Serve one connection; return why it ended: "closed", "lost" or "stop"."""
        bench = self.bench
        device = bench.devices[self.role]
        speed = float(getattr(bench.clock, "speed", 1.0))
        while not self.stopping.is_set():
            # Wake for input, or when the next queued reply is due on the wire;
            # with nothing queued, only often enough to see a stop or a lost link.
            due_at = bench.next_ready(self.role)
            wait = IDLE_WAIT if due_at is None else (due_at - bench.now()) / speed
            ready, _, _ = select.select([read_fd], [], [], min(max(wait, 0.0), IDLE_WAIT))
            if ready:
                try:
                    data = os.read(read_fd, 4096)
                except OSError:
                    return "closed"
                if not data:
                    return "closed"
                bench.deliver(self.role, data)
            if device.link_down:
                return "lost"
            due = bench.take_output(self.role, bench.now())
            if due:
                try:
                    send(due)
                except OSError:
                    return "closed"
        return "stop"


class _PtyLink(_Link):
    def __init__(self, server: BenchServer, role: str) -> None:
        super().__init__(server, role)
        self.path = server.directory / role
        self._open_pty()

    def _open_pty(self) -> None:
        import tty  # POSIX only (termios): a Windows server serves serial over TCP

        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        temporary = self.path.with_suffix(".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(os.ttyname(self.slave))
        os.replace(temporary, self.path)

    def _close_pty(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self) -> None:
        while not self.stopping.is_set():
            why = self.pump(self.master, lambda data: os.write(self.master, data))
            if why == "stop":
                break
            # A lost link: the adapter disappears and comes back as a new pty.
            self._close_pty()
            self.bench.reconnect(self.role)
            self._open_pty()
        self._close_pty()

    @property
    def resource(self) -> str:
        return str(self.path)


def _listen(port: int) -> socket.socket:
    """A loopback listener on ``port`` if it is free, else on any free port."""
    if port:
        with contextlib.suppress(OSError):
            return socket.create_server((LOOPBACK, port))
    return socket.create_server((LOOPBACK, 0))


class _TcpLink(_Link):
    def __init__(self, server: BenchServer, role: str, port: int = 0) -> None:
        super().__init__(server, role)
        self.listener = _listen(port)
        self.port = self.listener.getsockname()[1]
        # Small writes go now: an instrument's reply is a few bytes.
        self.listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run(self) -> None:
        self.listener.settimeout(IDLE_WAIT)
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.bench.reconnect(self.role)  # a new client: a fresh link
            with connection:
                self.pump(connection.fileno(), connection.sendall)
        self.listener.close()

    @property
    def resource(self) -> str:
        return f"TCPIP0::{LOOPBACK}::{self.port}::SOCKET"


class _SerialTcpLink(_TcpLink):
    """A serial instrument on a TCP socket, reached with pyserial's ``socket://`` URL.

    Where there are no pseudo-terminals (Windows, some containers): the same
    bytes as over the pty, framing and byte times included (the bench models
    those, not the link). A lost link closes the connection; the client's
    reconnect is a fresh link, as when an adapter comes back.
    """

    @property
    def resource(self) -> str:
        return f"socket://{LOOPBACK}:{self.port}"


#: Handler commands anyone may send while another client holds the bench: the
#: questions, and FAULT - a fault injector is a test's hand on the simulated
#: hardware, not a second runner, and must act while the run holds the bench.
_READ_ONLY_VERBS = ("WHERE", "TIME", "CLOCK", "STATE", "LOCK", "UNLOCK", "OWNER", "FAULT")


class _HandlerLink(threading.Thread):
    """The wafer handler: ``NEW W01`` / ``LOAD W01 hotplate`` / ... one line, one reply.

    Several clients may connect at once (each on its own thread); one of them
    may hold the bench (``LOCK <owner>``), and then the others may only ask
    (``WHERE``, ``TIME``): one bench, one runner. The lock belongs to the
    connection and goes when it closes, so a runner that dies frees the bench.
    """

    def __init__(self, server: BenchServer, port: int = 0) -> None:
        super().__init__(name="sim-wafer-handler", daemon=True)
        self.bench = server.bench
        self.token = server.token
        self.listener = _listen(port)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self._owner_lock = threading.Lock()
        #: (connection number, owner text) of the client holding the bench.
        self.owner: tuple[int, str] | None = None
        self._connections = 0

    def _lock_verb(self, verb: str, arguments: list[str], client: int) -> str:
        with self._owner_lock:
            if verb == "OWNER":
                return f"OK {self.owner[1]}" if self.owner else "OK"
            if verb == "UNLOCK":
                if self.owner is not None and self.owner[0] == client:
                    self.owner = None
                return "OK"
            if self.owner is not None and self.owner[0] != client:
                return f"ERR locked by {self.owner[1]}"
            self.owner = (client, " ".join(arguments) or f"client {client}")
            return "OK"

    def execute(self, line: str, client: int = 0) -> str:
        words = line.split()
        if not words:
            return "ERR empty command"
        verb, arguments = words[0].upper(), words[1:]
        bench = self.bench
        if verb in ("LOCK", "UNLOCK", "OWNER"):
            return self._lock_verb(verb, arguments, client)
        owner = self.owner
        if owner is not None and owner[0] != client and verb not in _READ_ONLY_VERBS:
            return f"ERR locked by {owner[1]}"
        try:
            if verb == "NEW" and len(arguments) == 1:
                # one word of an ASCII line, and a file name on the bench (labctl.names)
                problem = name_problem(HANDLER_WAFER, arguments[0])
                if problem is not None:
                    return f"ERR {shown(arguments[0])} {problem}"
                bench.new_wafer(arguments[0])
            elif verb == "LOAD" and len(arguments) == 2:
                bench.load(arguments[0], arguments[1])
            elif verb == "UNLOAD" and len(arguments) == 1:
                return f"OK {bench.unload(arguments[0])}"
            elif verb == "WHERE" and len(arguments) == 1:
                wafer = bench.wafers.get(arguments[0])
                return f"OK {wafer.location}" if wafer else "ERR no such wafer"
            elif verb == "DISPENSE" and arguments in (["RESIST"], ["DEVELOPER"]):
                if arguments[0] == "RESIST":
                    bench.dispense_resist()
                else:
                    bench.dispense_developer()
            elif verb == "RINSE" and not arguments:
                bench.rinse()
            elif verb == "DRY" and not arguments:
                bench.spin_dry()
            elif verb == "TIME" and not arguments:
                return f"OK {bench.now():.3f}"
            elif verb == "CLOCK" and not arguments:
                # One time line for the bench and the run that drives it.
                timeline = clock_of(bench)
                if timeline is None:
                    return "ERR this bench keeps no wall-time clock"
                return f"OK speed={timeline[0]!r} epoch={timeline[1]!r}"
            elif verb == "STATE" and not arguments:
                # The simulators' own view, for checking safe state from outside.
                report = {"instruments": bench.safe_state_report(), "holders": bench.holders}
                return "OK " + json.dumps(report, separators=(",", ":"))
            elif verb == "FAULT" and len(arguments) >= 2:
                options = parse_fault(
                    ":".join([arguments[0], arguments[1], ",".join(arguments[2:])])
                )[2]
                bench.inject(arguments[0], arguments[1], **options)
            else:
                return f"ERR unknown command {line.strip()!r}"
        except (LabctlError, ValueError) as exc:
            return f"ERR {exc}"
        return "OK"

    def run(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self._connections += 1
            threading.Thread(
                target=self._serve,
                args=(connection, self._connections),
                name=f"sim-wafer-handler-{self._connections}",
                daemon=True,
            ).start()
        self.listener.close()

    def _authenticate(self, connection: socket.socket, stream: Any) -> bool:
        """The connection's first line must be ``AUTH <token>``: ``OK``, or a refusal.

        Nothing else is read before it; a refused client gets one ``ERR`` line
        and the connection is closed, so nothing it sent is ever executed.
        """
        connection.settimeout(AUTH_TIMEOUT)
        try:
            line = stream.readline(_AUTH_LINE_MAX)
        except OSError:  # includes the timeout: a silent client is not served
            return False
        words = line.split()
        if not words or words[0].upper() != b"AUTH":
            reply = AUTH_REQUIRED
        elif len(words) == 2 and hmac.compare_digest(words[1], self.token.encode("ascii")):
            reply = "OK"
        else:
            reply = WRONG_TOKEN
        with contextlib.suppress(OSError):
            stream.write(reply.encode("ascii") + b"\n")
            stream.flush()
        if reply != "OK":
            self._linger(connection)
            return False
        connection.settimeout(None)
        return True

    @staticmethod
    def _linger(connection: socket.socket) -> None:
        """Close gently: unread input at close() would reset the connection, and a
        reset can destroy the refusal before the client reads it."""
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_WR)
            connection.settimeout(1.0)
            for _ in range(16):  # what the client sent, discarded unread (<= 64 KB)
                if not connection.recv(4096):
                    break

    def _serve(self, connection: socket.socket, client: int) -> None:
        try:
            with connection, connection.makefile("rwb") as stream:
                if not self._authenticate(connection, stream):
                    return
                for raw in stream:
                    reply = self.execute(raw.decode("ascii", "replace"), client)
                    stream.write(reply.encode("ascii", "replace") + b"\n")
                    stream.flush()
        except OSError:
            pass  # the client went away; its lock goes with it
        finally:
            with self._owner_lock:
                if self.owner is not None and self.owner[0] == client:
                    self.owner = None


def _token_ok(token: str) -> bool:
    return 0 < len(token) <= 256 and all("!" <= c <= "~" for c in token)


class BenchServer:
    """Every instrument of ``bench`` on a real link, plus the wafer handler.

    ``token`` is what the handler asks of every connection (default: a new
    random one); :meth:`write_station` puts it in the station file.
    """

    def __init__(
        self,
        bench: VirtualBench,
        directory: str | Path,
        token: str | None = None,
        *,
        serial: str | None = None,
    ) -> None:
        """Serve ``bench``; ``serial`` is ``"pty"`` or ``"tcp"`` (default: pty where there are).

        A bench with a data directory keeps its identity there
        (``served.json``, owner-only): a restarted server takes the same
        token and, where they are free, the same ports, so the station file
        it writes - and every copy of it in a queue entry - still reaches it,
        as a real bench's resources stay put across a power cycle.
        """
        self.bench = bench
        self.identity = None if bench.data_dir is None else bench.data_dir / IDENTITY_FILE
        saved = self._saved_identity()
        #: Roles whose saved port was taken, so they moved (told by the CLI).
        self.moved: list[str] = []
        kept = saved.get("token")
        if not (isinstance(kept, str) and _token_ok(kept)):
            kept = None
        self.token = token or kept or secrets.token_urlsafe(32)
        if not _token_ok(self.token):
            raise ValueError("a handler token is 1-256 printable ASCII characters")
        self.directory = Path(directory)
        private_dir(self.directory)  # it will hold the station file and its token
        self.serial = serial or default_serial_link()
        if self.serial not in SERIAL_LINKS:
            raise ValueError(f"serial links are one of {', '.join(SERIAL_LINKS)}")
        if self.serial == "pty" and not hasattr(os, "openpty"):
            raise ValueError("this system has no pseudo-terminals: serve serial links over tcp")
        ports = saved.get("ports") if isinstance(saved.get("ports"), dict) else {}
        assert isinstance(ports, dict)

        def port_of(role: str) -> int:
            port = ports.get(role)
            return port if isinstance(port, int) and 0 < port < 65536 else 0

        self.links: dict[str, _Link] = {}
        for role in SERIAL_ROLES:
            self.links[role] = (
                _PtyLink(self, role)
                if self.serial == "pty"
                else _SerialTcpLink(self, role, port_of(role))
            )
        for role in TCP_ROLES:
            self.links[role] = _TcpLink(self, role, port_of(role))
        self.handler = _HandlerLink(self, port_of("wafer_handler"))
        for role, port in self._ports().items():
            if port_of(role) and port_of(role) != port:
                self.moved.append(role)
        self._save_identity()
        #: Station files written for this server, removed when it stops.
        self._written: list[Path] = []

    def _ports(self) -> dict[str, int]:
        ports = {
            role: link.port for role, link in self.links.items() if isinstance(link, _TcpLink)
        }
        ports["wafer_handler"] = self.handler.port
        return ports

    def _saved_identity(self) -> dict[str, Any]:
        if self.identity is None or not self.identity.exists():
            return {}
        try:
            saved = json.loads(self.identity.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}  # unreadable: a new identity, as for a new bench
        return saved if isinstance(saved, dict) else {}

    def _save_identity(self) -> None:
        if self.identity is None:
            return
        identity = {"token": self.token, "ports": self._ports()}
        write_private(self.identity, json.dumps(identity, indent=1).encode("utf-8"))

    def start(self) -> None:
        for link in self.links.values():
            link.start()
        self.handler.start()

    def stop(self) -> list[Path]:
        """Stop serving: links closed, the bench saved; return what was removed.

        The pty links and every station file this server wrote go with it - a
        link to a closed pty, or a station file naming ports and a token that
        no longer exist, would only send the next ``labctl check`` astray. The
        bench's state (``--data``) stays.
        """
        for link in self.links.values():
            link.stopping.set()
        self.handler.stopping.set()
        for thread in [*self.links.values(), self.handler]:
            if thread.ident is not None:
                thread.join(timeout=5)
            else:  # never started: its listener or pty was still ours to close
                listener = getattr(thread, "listener", None)
                if listener is not None:
                    listener.close()
                if isinstance(thread, _PtyLink):
                    thread._close_pty()
        self.bench.close()
        removed = []
        for path in [
            *(getattr(link, "path", None) for link in self.links.values()),
            *self._written,
        ]:
            if path is not None and (path.is_symlink() or path.is_file()):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
        self._written.clear()
        return removed

    def resources(self) -> dict[str, str]:
        resources = {role: link.resource for role, link in self.links.items()}  # type: ignore[attr-defined]
        resources["wafer_handler"] = f"{LOOPBACK}:{self.handler.port}"
        return resources

    def station_text(self) -> str:
        """A station file that points every role at this server."""
        from . import definition_path

        template = definition_path("bench_station.toml").read_text(encoding="utf-8")
        lines = []
        role = None
        for line in template.splitlines():
            if line.startswith("[roles.") and line.count(".") == 1:
                role = line[len("[roles.") : -1]
            if line.startswith("resource = ") and role is not None:
                link = self.links[role]
                line = f'resource = "{link.resource}"'  # type: ignore[attr-defined]
            if line == 'transport = "bench"':
                line = 'transport = "serial"' if role in SERIAL_ROLES else 'transport = "visa"'
            lines.append(line)
        serial_note = (
            "pseudo-terminals" if self.serial == "pty" else "TCP sockets (pyserial socket:// URLs)"
        )
        header = (
            "# Written by `labctl sim serve`: every role on the served virtual bench.\n"
            f"# Wafer handler: {LOOPBACK}:{self.handler.port}\n"
            f"# Serial instruments on {serial_note}.\n"
        )
        text = "\n".join(lines) + "\n"
        body = text.split("\n", 3)[3].replace(
            'name = "virtual bench"', 'name = "served virtual bench"'
        )
        # One time line: the run waits on the bench's sped-up clock (the
        # handler's CLOCK says the same, and wins when the two differ).
        served = clock_of(self.bench)
        timeline = ""
        if served is not None:
            timeline = f"\n[clock]\nspeed = {served[0]!r}\nepoch = {served[1]!r}\n"
        handler = (
            f'\n[handler]\naddress = "{LOOPBACK}:{self.handler.port}"\ntoken = "{self.token}"\n'
        )
        return header + body + handler + timeline

    def write_station(self, path: str | Path | None = None) -> Path:
        """Write the station file (default ``<dir>/station.toml``), owner-only (the token)."""
        target = Path(path) if path is not None else self.directory / "station.toml"
        private_dir(target.parent)
        write_private(target, self.station_text().encode("utf-8"))
        self._written.append(target)
        return target
