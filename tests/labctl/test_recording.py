"""Recordings (labctl.recording): the text format, byte for byte, and replay at the driver level."""

from __future__ import annotations

import random
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import InputError, InstrumentTimeout
from labctl.recording import (
    TOKEN_WITHHELD,
    Recorder,
    RecordingTransport,
    escape_bytes,
    read_recording,
    unescape_bytes,
)
from labctl.station import load_station
from labctl.testing import ReplayMismatch, ScriptedTransport, replay_transports
from labctl.units import Q_
from sim_instruments import definition_path
from sim_instruments.bench import VirtualBench

RUN = {"run_id": "20260101-000000-test-abcdef", "protocol": "contrast-curve", "parameters": {}}
FORMULATION = {"source": "f.toml", "hash": "0" * 64, "content": "[formulation]\n"}


# -- the text format ---------------------------------------------------------------------


def test_every_byte_value_round_trips() -> None:
    every = bytes(range(256))
    text = escape_bytes(every)
    assert unescape_bytes(text) == every
    # One printable line with no quote in it: it sits between a recording's quotes.
    assert '"' not in text and all(0x20 <= ord(c) <= 0x7E for c in text)
    for value in range(256):
        single = bytes([value])
        assert unescape_bytes(escape_bytes(single)) == single
    rng = random.Random(13)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert unescape_bytes(escape_bytes(data)) == data


def test_escapes_read_as_an_engineer_expects() -> None:
    assert escape_bytes(b"SOUR:CURR 1.0\n") == "SOUR:CURR 1.0%0A"
    assert escape_bytes(b'0,"No error"\r\n') == "0,%22No error%22%0D%0A"
    assert escape_bytes(b"50%") == "50%25"
    assert escape_bytes(b"") == ""
    assert unescape_bytes("%0d%0a") == b"\r\n"  # hand-edited lower case reads too


@pytest.mark.parametrize("text", ["%G1", "%4", "%", 'a"b', "caf\u00e9", "tab\there"])
def test_text_that_is_not_escaped_bytes_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a byte"):
        unescape_bytes(text)


def _recorder(path: Path, station_file: Path | None = None) -> Recorder:
    recorder = Recorder.create(path, run=RUN, formulation=FORMULATION)
    recorder.begin(load_station(station_file or definition_path("bench_station.toml")))
    return recorder


def test_a_recording_of_all_256_byte_values_reads_back_exactly(tmp_path: Path) -> None:
    every = bytes(range(256))
    path = tmp_path / "bytes.rec"
    recorder = _recorder(path)
    recorder.phase("connect")
    inner = ScriptedTransport([(every, every[::-1]), (b"\x00\r\n", b'"%\xff\n')])
    transport = RecordingTransport(inner, "ellipsometer", recorder)
    transport.write(every)
    assert transport.read_bytes(256) == every[::-1]
    assert transport.query(b"\x00\r\n", b"\n") == b'"%\xff\n'
    recorder.end("completed", "test")
    recorder.close()

    recording = read_recording(path)
    assert recording.complete
    assert [(e.op, e.detail, e.data) for e in recording.events] == [
        ("open", None, None),
        ("write", every, None),
        ("readn", 256, every[::-1]),
        ("write", b"\x00\r\n", None),
        ("read", b"\n", b'"%\xff\n'),
    ]
    # The file is ASCII text, one event a line.
    assert all(byte < 0x80 for byte in path.read_bytes())


def test_a_recording_is_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABCTL_GROUP_READABLE", raising=False)
    path = tmp_path / "session.rec"
    _recorder(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- record and replay, driver level ----------------------------------------------------


@pytest.fixture
def bench() -> Iterator[VirtualBench]:
    virtual = VirtualBench(seed=3)
    yield virtual
    virtual.close()


def _heat_and_watch(station: Any) -> list[float]:
    """A little session: connect, set the plate, poll it on the clock until it is there."""
    plate = station["hotplate"]
    plate.heat_to(Q_(90.0, "degC"))
    readings = []
    start = station.clock.monotonic()
    # As a protocol waits: how many polls depends on what the clock says.
    while station.clock.monotonic() - start < 40.0:
        readings.append(round(plate.plate_temperature.m_as("degC"), 3))
        station.clock.sleep(7.0)
    plate.enter_idle()
    return readings


def _record_session(bench: VirtualBench, path: Path) -> list[float]:
    recorder = _recorder(path)
    station = recorder.station(bench.station())
    recorder.phase("connect")
    assert all(result.ok for result in station.connect())
    recorder.phase("run")
    readings = _heat_and_watch(station)
    recorder.end("completed", "test")
    recorder.close()
    station.close()
    return readings


def test_drivers_replay_a_recorded_session_with_no_bench(
    bench: VirtualBench, tmp_path: Path
) -> None:
    path = tmp_path / "session.rec"
    recorded = _record_session(bench, path)
    assert len(recorded) >= 5

    replay = replay_transports(path)
    station = replay.station()
    assert all(result.ok for result in station.connect())
    replay.phase("run")
    assert _heat_and_watch(station) == recorded
    matched = replay.assert_done()
    assert matched == len(read_recording(path).events)
    # No time passed: the replay clock gave back the recorded readings.
    assert station.clock.monotonic() == pytest.approx(bench.clock.monotonic(), abs=60)


def test_a_driver_that_sends_one_other_byte_fails_at_that_exchange(
    bench: VirtualBench, tmp_path: Path
) -> None:
    path = tmp_path / "session.rec"
    _record_session(bench, path)
    recording = read_recording(path)
    setpoint = next(e for e in recording.events if e.op == "write" and e.detail == b"n90.0\r")

    replay = replay_transports(path)
    station = replay.station()
    station.connect()
    replay.phase("run")
    with pytest.raises(ReplayMismatch) as caught:
        station["hotplate"].heat_to(Q_(90.5, "degC"))
    message = str(caught.value)
    assert caught.value.exchange == setpoint.number
    assert message == (
        f"exchange #{setpoint.number} (hotplate write): expected b'n90.0\\r',"
        " got b'n90.5\\r' (first difference at byte 4)"
    )
    # Whatever the protocol does next, the first difference is what is reported.
    with pytest.raises(ReplayMismatch, match=f"#{setpoint.number} "):
        station["hotplate"].enter_idle()
    with pytest.raises(AssertionError, match=f"#{setpoint.number} "):
        replay.assert_done()


def test_a_replay_that_leaves_out_recorded_exchanges_fails(
    bench: VirtualBench, tmp_path: Path
) -> None:
    path = tmp_path / "session.rec"
    _record_session(bench, path)
    replay = replay_transports(path)
    replay.station().connect()
    replay.phase("run")
    with pytest.raises(AssertionError, match=r"recorded, but the replayed run ended without it"):
        replay.assert_done()


def test_errors_and_resynchronization_replay_as_they_happened(tmp_path: Path) -> None:
    path = tmp_path / "timeout.rec"
    recorder = _recorder(path)
    recorder.phase("connect")
    inner = ScriptedTransport(
        [(b"p\r", None), (b"p\r", b"25.0\r\n")], name="hotplate (/dev/ttyUSB1)"
    )
    transport = RecordingTransport(inner, "hotplate", recorder)
    with pytest.raises(InstrumentTimeout) as recorded:
        transport.query(b"p\r", b"\r\n")
    # The link is suspect now: the next command drains it first.
    assert transport.query(b"p\r", b"\r\n") == b"25.0\r\n"
    recorder.end("completed", "test")
    recorder.close()
    ops = [e.op for e in read_recording(path).events]
    assert ops == ["open", "write", "read", "drain", "write", "read"]

    replay = replay_transports(path)
    replay.phase("connect")
    again = replay.transport("hotplate")
    with pytest.raises(InstrumentTimeout) as replayed:
        again.query(b"p\r", b"\r\n")
    assert str(replayed.value) == str(recorded.value)
    assert replayed.value.instrument == recorded.value.instrument
    assert again.query(b"p\r", b"\r\n") == b"25.0\r\n"
    assert replay.assert_done() == 6


def test_the_handlers_token_is_withheld(tmp_path: Path) -> None:
    station_file = tmp_path / "station.toml"
    token = "s3cret-handler-token"
    text = definition_path("bench_station.toml").read_text(encoding="utf-8")
    station_file.write_text(
        text + f'\n[handler]\naddress = "127.0.0.1:9"\ntoken = "{token}"\n', encoding="utf-8"
    )
    path = tmp_path / "session.rec"
    recorder = _recorder(path, station_file)
    recorder.close()
    content = path.read_text(encoding="ascii")
    assert token not in content
    assert read_recording(path).header["station"]["table"]["handler"]["token"] == TOKEN_WITHHELD


# -- bad files: one line naming the line --------------------------------------------------


def _good(tmp_path: Path, bench: VirtualBench) -> list[str]:
    path = tmp_path / "good.rec"
    _record_session(bench, path)
    return path.read_text(encoding="ascii").splitlines()


def _problem(tmp_path: Path, lines: list[str], *, end: str = "\n") -> str:
    path = tmp_path / "bad.rec"
    path.write_bytes(("\n".join(lines) + end).encode("latin-1"))
    with pytest.raises(InputError) as caught:
        read_recording(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def _index(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def test_damaged_recordings_are_refused_naming_the_line(
    bench: VirtualBench, tmp_path: Path
) -> None:
    lines = _good(tmp_path, bench)
    first_write = _index(lines, "x 3 ")
    assert "write" in lines[first_write]

    def edited(index: int, line: str) -> list[str]:
        return [*lines[:index], line, *lines[index + 1 :]]

    cut = "\n".join(lines)[: -len(lines[-1]) // 2]
    path = tmp_path / "cut.rec"
    path.write_text(cut, encoding="ascii")
    with pytest.raises(InputError, match=rf"line {len(lines)}: cut short \(no line end\)"):
        read_recording(path)

    bad_escape = lines[first_write].replace('"', '"%G', 1)
    assert f"line {first_write + 1}: written bytes: '%G" in _problem(
        tmp_path, edited(first_write, bad_escape)
    )
    renumbered = lines[first_write].replace("x 3 ", "x 4 ", 1)
    assert "exchange number 4 where 3 was due" in _problem(
        tmp_path, edited(first_write, renumbered)
    )
    assert "unknown operation 'sing'" in _problem(
        tmp_path, edited(first_write, lines[first_write].replace(" write ", " sing ", 1))
    )
    assert f"line {first_write + 1}: unknown line kind 'garbage'" in _problem(
        tmp_path, edited(first_write, "garbage here")
    )
    assert "is not ASCII" in _problem(tmp_path, edited(first_write, lines[first_write] + "\xe9"))
    assert "unknown error class 'os.system'" in _problem(
        tmp_path, edited(first_write, lines[first_write] + ' !os.system {"args": []}')
    )
    # Not even a built-in that would end the replay with an exit status of the file's choosing.
    assert "unknown error class 'SystemExit'" in _problem(
        tmp_path, edited(first_write, lines[first_write] + ' !SystemExit {"args": [0]}')
    )
    assert "line 1: not a labctl recording" in _problem(tmp_path, ["hello", *lines[1:]])
    assert "format version 9" in _problem(tmp_path, ["labctl-recording 9", *lines[1:]])
    assert "a line after 'mark end'" in _problem(tmp_path, [*lines, lines[first_write]])
    assert "the header has no 'station' line" in _problem(tmp_path, lines[:4])
    assert "no such file" in str(_missing(tmp_path))


def _missing(tmp_path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        read_recording(tmp_path / "nothing.rec")
    return caught.value


def test_a_recording_without_its_end_reads_as_incomplete(
    bench: VirtualBench, tmp_path: Path
) -> None:
    lines = _good(tmp_path, bench)
    path = tmp_path / "killed.rec"
    path.write_text("\n".join(lines[: len(lines) // 2]) + "\n", encoding="ascii")
    recording = read_recording(path)
    assert not recording.complete
    assert recording.events and recording.end is None


def test_the_format_is_documented() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "recording.md"
    text = docs.read_text(encoding="utf-8")
    for word in ("labctl-recording 1", "mark", "readn", "drain", "pending", "wafer_handler"):
        assert word in text
    assert "labctl replay" in text and "--record" in text
