"""One clock for a served bench, and a served bench that keeps its identity.

The handler publishes the bench's clock (``CLOCK``); a run on a station with
a handler waits on it even where the station file says otherwise. With a data
directory the server keeps its token and ports across restarts.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from labctl.clock import ScaledClock
from labctl.station import load_station
from protocols.handlers import SocketHandler
from protocols.runner import served_clock
from sim_instruments.bench import VirtualBench
from sim_instruments.serve import BenchServer

TOKEN = "clock-test-token"


def _server(tmp_path: Path, bench: VirtualBench, name: str = "served") -> BenchServer:
    server = BenchServer(bench, tmp_path / name, TOKEN)
    server.start()
    return server


def test_the_handler_publishes_the_served_clock(tmp_path: Path) -> None:
    clock = ScaledClock(250.0, epoch=1_795_000_000.5)
    server = _server(tmp_path, VirtualBench(seed=1, clock=clock))
    try:
        handler = SocketHandler(f"127.0.0.1:{server.handler.port}", 5.0, token=TOKEN)
        assert handler.clock() == (250.0, 1_795_000_000.5)
        handler.close()
        station = load_station(server.write_station())
        assert (station.clock_speed, station.clock_epoch) == (250.0, 1_795_000_000.5)
    finally:
        server.stop()


def test_a_bench_on_a_virtual_clock_publishes_none(tmp_path: Path) -> None:
    server = _server(tmp_path, VirtualBench(seed=1))
    try:
        handler = SocketHandler(f"127.0.0.1:{server.handler.port}", 5.0, token=TOKEN)
        assert handler.clock() is None  # ERR: the run keeps real time
        handler.close()
        assert "[clock]" not in server.station_text()
    finally:
        server.stop()


def test_the_bench_clock_wins_over_a_stale_station_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A station file from a server started at 200x, on a bench now served at 50x:
    the run waits on 50x (a 60 s bake must be 60 s of the bench's time), and says so."""
    server = _server(tmp_path, VirtualBench(seed=1, clock=ScaledClock(50.0)))
    try:
        path = server.write_station()
        text = path.read_text().replace("speed = 50.0", "speed = 200.0")
        path.write_text(text)
        config = load_station(path)
        assert config.clock_speed == 200.0
        handler = SocketHandler.from_station(config, timeout=5.0)
        with caplog.at_level(logging.WARNING):
            clock = served_clock(config, handler)
        handler.close()
        assert isinstance(clock, ScaledClock) and clock.speed == 50.0
        assert "the served bench runs 50x" in caplog.text
    finally:
        server.stop()


def test_a_garbled_clock_reply_is_an_instrument_error(tmp_path: Path) -> None:
    """A handler that answers CLOCK with something unreadable must not be taken as
    "no clock": the run would time its bakes on the wrong clock."""
    from labctl.errors import InstrumentError

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    import threading

    def answer() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:
            for _line in stream:
                stream.write(b"OK speed=fast epoch=now\n")
                stream.flush()

    threading.Thread(target=answer, daemon=True).start()
    handler = SocketHandler(f"127.0.0.1:{port}", 5.0)
    with pytest.raises(InstrumentError, match="unreadable clock"):
        handler.clock()
    handler.close()
    listener.close()


def test_a_served_bench_with_data_keeps_its_token_and_ports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = BenchServer(
        VirtualBench(data_dir=data, seed=1, clock=ScaledClock(100.0)), tmp_path / "a"
    )
    first.start()
    before = first.resources()
    token = first.token
    first.stop()
    saved = json.loads((data / "bench" / "served.json").read_text())
    assert saved["token"] == token
    assert (data / "bench" / "served.json").stat().st_mode & 0o077 == 0  # owner-only: the token

    again = BenchServer(
        VirtualBench(data_dir=data, seed=1, clock=ScaledClock(100.0)), tmp_path / "a"
    )
    again.start()
    try:
        assert again.token == token and again.moved == []
        assert {k: v for k, v in again.resources().items() if "TCPIP" in v} == {
            k: v for k, v in before.items() if "TCPIP" in v
        }
        assert again.resources()["wafer_handler"] == before["wafer_handler"]
    finally:
        again.stop()


def test_a_taken_port_moves_and_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = BenchServer(VirtualBench(data_dir=data, seed=1), tmp_path / "a")
    handler_port = first.handler.port
    first.stop()
    squatter = socket.create_server(("127.0.0.1", handler_port))
    try:
        again = BenchServer(VirtualBench(data_dir=data, seed=1), tmp_path / "a")
        try:
            assert again.moved == ["wafer_handler"]
            assert again.handler.port != handler_port
            saved = json.loads((data / "bench" / "served.json").read_text())
            assert saved["ports"]["wafer_handler"] == again.handler.port
        finally:
            again.stop()
    finally:
        squatter.close()


def test_a_served_bench_without_data_is_new_each_time(tmp_path: Path) -> None:
    first = BenchServer(VirtualBench(seed=1), tmp_path / "a")
    second = BenchServer(VirtualBench(seed=1), tmp_path / "b")
    try:
        assert first.token != second.token and first.identity is None
    finally:
        first.stop()
        second.stop()
