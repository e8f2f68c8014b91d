"""Transports over real links: pty pairs and loopback TCP, pyserial and pyvisa-py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from labctl.errors import InstrumentTimeout, LinkLost
from labctl.transport import (
    LinkSettings,
    SerialTransport,
    Transport,
    VisaTransport,
    _EofRaisingSocket,
)
from labctl.units import Q_


def numbered_replies(delay_first: float = 0.0) -> Callable[[bytes], bytes]:
    """Answer each line ``Q<n>\\n`` with ``A<n>\\n``; the first one late if asked."""
    pending = bytearray()
    answered = [0]

    def respond(data: bytes) -> bytes:
        pending.extend(data)
        out = bytearray()
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            if answered[0] == 0 and delay_first:
                time.sleep(delay_first)
            answered[0] += 1
            out += b"A" + line[1:] + b"\n"
        return bytes(out)

    return respond


FAST = LinkSettings(timeout=0.2, resync_quiet=0.3, resync_limit=2.0)


def serial_over_pty(peer_factory, respond) -> tuple[Transport, object]:
    peer = peer_factory(respond)
    return SerialTransport(peer.port, FAST), peer


def visa_over_tcp(peer_factory, respond) -> tuple[Transport, object]:
    peer = peer_factory(respond)
    return VisaTransport(f"TCPIP0::127.0.0.1::{peer.port}::SOCKET", FAST, backend="@py"), peer


def serial_over_tcp(peer_factory, respond) -> tuple[Transport, object]:
    peer = peer_factory(respond)
    return SerialTransport(f"socket://127.0.0.1:{peer.port}", FAST), peer


@pytest.fixture(params=["pyserial-pty", "pyvisa-tcp", "pyserial-tcp"])
def make_link(request, pty_peer, tcp_peer):
    kind = request.param

    def make(respond):
        if kind == "pyserial-pty":
            transport, peer = serial_over_pty(pty_peer, respond)
        elif kind == "pyvisa-tcp":
            transport, peer = visa_over_tcp(tcp_peer, respond)
        else:
            transport, peer = serial_over_tcp(tcp_peer, respond)
        request.addfinalizer(transport.close)
        return transport, peer

    return make


def test_query_round_trip(make_link) -> None:
    transport, _ = make_link(numbered_replies())
    assert transport.query(b"Q1\n", b"\n") == b"A1\n"
    assert transport.query(b"Q2\n", b"\n") == b"A2\n"


def test_a_late_reply_does_not_shift_later_replies(make_link) -> None:
    # The first reply comes after the timeout; without resynchronization the
    # second query would read "A1" and every reply after it would be one off.
    transport, _ = make_link(numbered_replies(delay_first=0.4))
    with pytest.raises(InstrumentTimeout):
        transport.query(b"Q1\n", b"\n")
    assert transport.query(b"Q2\n", b"\n") == b"A2\n"
    assert transport.query(b"Q3\n", b"\n") == b"A3\n"
    assert transport.discarded == [b"A1\n"]


def test_two_threads_on_one_transport_never_get_each_others_replies(make_link) -> None:
    transport, _ = make_link(numbered_replies())
    wrong: list[tuple[bytes, bytes]] = []

    def worker(offset: int) -> None:
        for n in range(offset, offset + 1500):
            reply = transport.query(b"Q%d\n" % n, b"\n")
            if reply != b"A%d\n" % n:
                wrong.append((b"Q%d" % n, reply))

    threads = [threading.Thread(target=worker, args=(k * 100_000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_lost_tcp_link_raises_link_lost_and_reconnect_restores_it(tcp_peer) -> None:
    for transport_factory in (visa_over_tcp, serial_over_tcp):
        transport, peer = transport_factory(tcp_peer, numbered_replies())
        try:
            assert transport.query(b"Q1\n", b"\n") == b"A1\n"
            peer.drop_connection()
            with pytest.raises(LinkLost):  # on the first read after it, not a timeout
                transport.query(b"Q2\n", b"\n")
            transport.reconnect()
            assert transport.query(b"Q3\n", b"\n") == b"A3\n"
            assert peer.connections == 2
        finally:
            transport.close()


#: A timeout far longer than the bound the tests below put on the error: a
#: transport that waited for it instead of seeing the closed socket would fail.
PATIENT = LinkSettings(timeout=30.0, resync_quiet=0.05, resync_limit=2.0)


def closing_peer(tcp_peer) -> object:
    """A peer that answers ``Q<n>``; ``HALF`` starts a reply it never ends, ``DIE`` hangs up.

    The hang-up happens inside the peer's own handler, after every earlier
    reply was written: the order on the wire is fixed, no timing involved.
    """
    box: list = []
    answer = numbered_replies()

    def respond(data: bytes) -> bytes:
        if data == b"HALF\n":
            return b"A-half"  # no terminator: the rest never comes
        if data == b"DIE\n":
            box[0].drop_connection()
            return b""
        return answer(data)

    box.append(tcp_peer(respond))
    return box[0]


def visa_socket(port: int) -> Transport:
    return VisaTransport(f"TCPIP0::127.0.0.1::{port}::SOCKET", PATIENT, backend="@py")


def serial_socket(port: int) -> Transport:
    return SerialTransport(f"socket://127.0.0.1:{port}", PATIENT)


@pytest.mark.parametrize("read", ["query", "read_bytes"])
@pytest.mark.parametrize("make_transport", [visa_socket, serial_socket], ids=["pyvisa", "pyserial"])
def test_a_socket_closed_mid_reply_is_link_lost_at_once(tcp_peer, make_transport, read) -> None:
    # pyvisa-py alone would spin on the closed socket for the whole 30 s and
    # then call it a timeout; pyserial's socket:// handler raises by itself.
    peer = closing_peer(tcp_peer)
    transport = make_transport(peer.port)
    try:
        assert transport.query(b"Q1\n", b"\n") == b"A1\n"
        transport.write(b"HALF\n")
        start = time.monotonic()
        with pytest.raises(LinkLost, match=str(peer.port)):
            if read == "query":
                transport.query(b"DIE\n", b"\n")
            else:
                transport.write(b"DIE\n")
                transport.read_bytes(64)
        assert time.monotonic() - start < 5.0
        transport.reconnect()
        assert transport.query(b"Q2\n", b"\n") == b"A2\n"
        assert peer.connections == 2
    finally:
        transport.close()


def test_a_closed_socket_is_link_lost_while_resynchronizing(tcp_peer) -> None:
    peer = closing_peer(tcp_peer)
    transport = visa_socket(peer.port)
    try:
        assert transport.query(b"Q1\n", b"\n") == b"A1\n"
        transport.write(b"DIE\n")
        start = time.monotonic()
        with pytest.raises(LinkLost):
            transport.resynchronize()
        assert time.monotonic() - start < 5.0
    finally:
        transport.close()


def test_the_eof_wrapper_passes_the_socket_through(tcp_peer) -> None:
    peer = tcp_peer(numbered_replies())
    transport = visa_socket(peer.port)
    try:
        transport.open()
        resource = transport.visa_resource
        interface = resource.visalib.sessions[resource.session].interface
        assert isinstance(interface, _EofRaisingSocket)
        assert interface.fileno() >= 0
        assert interface.getpeername()[1] == peer.port
        assert interface.recv(0) == b""  # asking for nothing is not end of stream
        assert transport.query(b"Q1\n", b"\n") == b"A1\n"
    finally:
        transport.close()


def test_unplugged_serial_adapter_is_link_lost(pty_peer) -> None:
    peer = pty_peer(numbered_replies())
    transport = SerialTransport(peer.port, FAST)
    try:
        assert transport.query(b"Q1\n", b"\n") == b"A1\n"
        peer.hang_up()
        with pytest.raises((LinkLost, InstrumentTimeout)):
            transport.query(b"Q2\n", b"\n")
    finally:
        transport.close()


def test_opening_a_missing_port_is_link_lost() -> None:
    with pytest.raises(LinkLost, match="/dev/labctl-no-such-port"):
        SerialTransport("/dev/labctl-no-such-port", FAST).open()
    # pyvisa-py connects a TCP socket lazily: the refusal shows on first use.
    refused = VisaTransport("TCPIP0::127.0.0.1::1::SOCKET", FAST, backend="@py")
    with pytest.raises(LinkLost, match="refused"):
        refused.query(b"Q1\n", b"\n")
    refused.close()


def test_serial_reads_take_chunks_not_bytes(pty_peer) -> None:
    peer = pty_peer(lambda data: b"x" * 3000 + b"\n" if data == b"BIG\n" else b"")
    transport = SerialTransport(peer.port, FAST)
    try:
        reads: list[int] = []
        original = transport._fill

        def counting_fill(deadline: float) -> None:
            before = len(transport._buffer)
            original(deadline)
            reads.append(len(transport._buffer) - before)

        transport._fill = counting_fill  # type: ignore[method-assign]
        assert len(transport.query(b"BIG\n", b"\n")) == 3001
        assert len(reads) < 10  # a byte-at-a-time reader would need 3001
    finally:
        transport.close()


def test_timeout_is_a_quantity_and_temporary_timeouts_restore(pty_peer) -> None:
    peer = pty_peer(numbered_replies())
    transport = SerialTransport(peer.port, FAST)
    try:
        assert transport.timeout == Q_(0.2, "s")
        with transport.temporary_timeout(Q_(1500, "ms")):
            assert transport.timeout == Q_(1.5, "s")
        assert transport.timeout == Q_(0.2, "s")
    finally:
        transport.close()
