"""Record a whole run (``--record``) and replay it (``labctl replay``, ``assert_replays``).

A served-bench session - separate processes, ptys and sockets, the wafer
handler's lines - replays byte for byte with no bench; a driver that sends
one other byte fails at that exchange; a damaged file is one line, exit 2;
a killed run's recording replays as far as it goes.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import labctl.recording as recording_module
from drivers.torrey_pines_sc import TorreyPinesHotplate
from labctl.recording import read_recording
from labctl.store import RunStore
from protocols.replay import replay
from protocols.runner import RunRequest, start
from protocols.testing import assert_replays
from tests.cli import fast_contrast_curve, labctl
from tests.protocols.conftest import BASELINE, FAST
from tests.served import ServedBench


def _record_in_process(data: Path, path: Path) -> str:
    outcome = start(
        RunRequest(
            protocol="contrast-curve",
            data_dir=data,
            formulation=BASELINE,
            sim=True,
            overrides=FAST,
            record=path,
        )
    )
    assert outcome.status == "completed", outcome.reason
    return outcome.run_id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One fast contrast curve on the in-process bench, recorded: (file, data, run id)."""
    root = tmp_path_factory.mktemp("recorded")
    path = root / "session.rec"
    run_id = _record_in_process(root / "data", path)
    return path, root / "data", run_id


def _rows(data: Path, run_id: str) -> list[dict[str, object]]:
    store = RunStore(data)
    try:
        # The wall clock of the machine that ran it is not the run's to replay.
        return [
            {k: v for k, v in row.items() if k != "wall_time"}
            for row in store.measurement_rows(run_id)
        ]
    finally:
        store.close()


def test_an_in_process_run_replays_to_the_same_measurements(
    recorded: tuple[Path, Path, str], tmp_path: Path
) -> None:
    path, data, run_id = recorded
    recording = read_recording(path)
    assert recording.complete and recording.end == {
        "status": "completed",
        "reason": "29 steps executed, 0 replayed from the journal",
    }
    # The in-process handler has no wire: its calls are recorded, to be answered on replay.
    calls = [e.detail for e in recording.events if e.role == "wafer_handler" and e.op == "call"]
    assert {"new_wafer", "load", "unload", "manual", "where"} <= set(calls)

    outcome = assert_replays(path, tmp_path / "replayed")
    assert outcome.ok and outcome.complete
    assert outcome.matched == outcome.recorded == len(recording.events)
    assert outcome.status == "completed" and outcome.run_id == run_id
    replayed = _rows(tmp_path / "replayed", run_id)
    assert replayed and replayed == _rows(data, run_id)


def test_a_driver_that_sends_one_other_byte_fails_replay_naming_the_exchange(
    recorded: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = recorded
    first = next(
        e
        for e in read_recording(path).events
        if e.role == "hotplate" and e.op == "write" and e.detail.startswith(b"n")
    )
    # The setpoint command's letter, upper case: one byte of one command.
    setpoint = TorreyPinesHotplate.__dict__["setpoint"]
    monkeypatch.setattr(setpoint, "set_command", "N{}")

    outcome = replay(path)
    assert not outcome.ok and outcome.mismatch_exchange == first.number
    wrong = b"N" + first.detail[1:]
    assert outcome.mismatch == (
        f"exchange #{first.number} (hotplate write): expected {first.detail!r},"
        f" got {wrong!r} (first difference at byte 0)"
    )
    with pytest.raises(AssertionError, match=re.escape(f"exchange #{first.number} ")):
        assert_replays(path)


def test_labctl_replay_fails_on_an_edited_byte_with_one_line(
    recorded: tuple[Path, Path, str], tmp_path: Path
) -> None:
    path, _, _ = recorded
    lines = path.read_text(encoding="ascii").splitlines(keepends=True)
    index, line = next(
        (i, text) for i, text in enumerate(lines) if " exposure_source write " in text
    )
    number = line.split()[1]
    edited = tmp_path / "edited.rec"
    lines[index] = line.replace("*IDN?", "*IDM?", 1)
    edited.write_text("".join(lines), encoding="ascii")

    result = labctl("replay", str(edited))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        f"labctl: error: replay of {edited}: exchange #{number} (exposure_source write):"
        " expected b'*IDM?\\n', got b'*IDN?\\n' (first difference at byte 3)\n"
    )

    good = labctl("replay", str(path))
    assert good.returncode == 0, good.stderr
    assert re.fullmatch(
        rf"replayed {re.escape(str(path))}: \d+ exchanges matched byte for byte; run \S+"
        r" \(contrast-curve\) ended completed, as recorded \(\d+\.\d s\)\n",
        good.stdout,
    ), good.stdout


def test_a_damaged_recording_is_one_line_and_exit_2(
    recorded: tuple[Path, Path, str], tmp_path: Path
) -> None:
    path, _, _ = recorded
    text = path.read_text(encoding="ascii")
    cut = tmp_path / "cut.rec"
    cut.write_text(text[: len(text) // 2 + 7], encoding="ascii")
    lines = text.count("\n", 0, len(text) // 2 + 7) + 1
    result = labctl("replay", str(cut))
    assert result.returncode == 2
    assert result.stderr == (
        f"labctl: error: {cut}: line {lines}: cut short (no line end):"
        " the file is truncated or damaged\n"
    )

    garbled = tmp_path / "garbled.rec"
    garbled.write_text(text.replace(" read ", " raed ", 1), encoding="ascii")
    result = labctl("replay", str(garbled))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown operation 'raed'" in result.stderr and "Traceback" not in result.stderr

    missing = labctl("replay", str(tmp_path / "none.rec"))
    assert missing.returncode == 2
    assert missing.stderr == f"labctl: error: {tmp_path / 'none.rec'}: file: no such file\n"


def test_replay_will_not_store_over_the_recorded_run(
    recorded: tuple[Path, Path, str],
) -> None:
    path, data, run_id = recorded
    result = labctl("replay", str(path), "--data", str(data))
    assert result.returncode == 2
    assert result.stderr == (
        f"labctl: error: {data}: --data: already holds run {run_id}:"
        " replay into another directory\n"
    )


def test_record_refuses_a_place_it_cannot_write_before_the_run(tmp_path: Path) -> None:
    arguments = fast_contrast_curve(tmp_path / "data")
    result = labctl(*arguments, "--record", str(tmp_path / "no" / "such" / "session.rec"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"labctl: error: {tmp_path / 'no' / 'such' / 'session.rec'}:")
    assert "--record: no such directory" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_killed_runs_recording_replays_as_far_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "killed.rec"
    result = labctl(
        *fast_contrast_curve(tmp_path / "data"),
        "--record",
        str(path),
        environment={"LABCTL_INJECT_KILL": "seq=9,phase=during"},
    )
    assert result.returncode == 1 and "died of SIGKILL" in result.stderr, result.stderr
    recording = read_recording(path)
    assert not recording.complete and recording.mark("run") is not None
    assert len(recording.events) > 100

    replayed = labctl("replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith(
        f"replayed {path}: all {len(recording.events)} recorded exchanges matched;"
        " the recording stops there"
    )


def test_the_recovery_of_a_killed_run_is_recorded_and_not_replayed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Unsupervised (as the supervisor's child runs), killed: nobody made the bench safe.
    killed = labctl(
        *fast_contrast_curve(data),
        environment={"LABCTL_SUPERVISED": "1", "LABCTL_INJECT_KILL": "seq=5,phase=during"},
    )
    assert killed.returncode == -9, killed.stderr
    path = tmp_path / "after.rec"
    result = labctl(*fast_contrast_curve(data), "--record", str(path))
    assert result.returncode == 0, result.stderr
    recording = read_recording(path)
    recover, run = recording.mark("recover"), recording.mark("run")
    assert recover is not None and run is not None
    safe = recording.events[recover.position : run.position]
    assert safe and {e.role for e in safe} >= {"exposure_source", "hotplate"}

    outcome = assert_replays(path)
    assert outcome.skipped == len(safe)
    assert outcome.matched == len(recording.events) - len(safe)


def test_a_stop_at_a_safe_point_replays(tmp_path: Path) -> None:
    path = tmp_path / "stopped.rec"
    result = labctl(
        *fast_contrast_curve(tmp_path / "data"),
        "--record",
        str(path),
        environment={"LABCTL_INJECT_KILL": "seq=12,phase=stop"},
    )
    assert result.returncode == 1, result.stderr
    recording = read_recording(path)
    assert recording.end is not None and recording.end["status"] == "aborted"
    assert any(key[2:] == ("run", "stop") for key in recording.times)
    outcome = assert_replays(path)
    assert outcome.status == "aborted" and outcome.matched == len(recording.events)


# -- a served bench: separate processes, real links ---------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedBench]:
    bench = ServedBench(tmp_path_factory.mktemp("served"))
    try:
        yield bench
    finally:
        bench.stop()


def test_a_served_bench_session_replays_byte_exactly(
    served: ServedBench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "served.rec"
    result = labctl(
        *fast_contrast_curve(tmp_path / "data", station=served.station), "--record", str(path)
    )
    assert result.returncode == 0, result.stderr
    recording = read_recording(path)
    assert recording.complete and recording.end is not None
    assert recording.end["status"] == "completed"
    # The handler's own lines are on the record: the lock, the clock, the transfers ...
    lines = [e.detail for e in recording.events if e.role == "wafer_handler" and e.op == "write"]
    assert lines[0] == b"AUTH token-withheld-from-recording\n"
    assert lines[1].startswith(b"LOCK labctl pid ") and lines[2] == b"CLOCK\n"
    assert any(line.startswith(b"LOAD ") for line in lines)
    # ... but not its token.
    assert served.token is not None and served.token not in path.read_text(encoding="ascii")
    # Every instrument went over a real link.
    links = recording.mark("connect")
    assert links is not None and "TCPIP0::127.0.0.1" in str(links.info["links"])

    replayed = labctl("replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    assert f": {len(recording.events)} exchanges matched byte for byte;" in replayed.stdout
    assert "ended completed, as recorded" in replayed.stdout

    # ... and with one byte of one hotplate command changed, it fails at that command.
    first = next(
        e
        for e in recording.events
        if e.role == "hotplate" and e.op == "write" and e.detail.startswith(b"n")
    )
    monkeypatch.setattr(TorreyPinesHotplate.__dict__["setpoint"], "set_command", "N{}")
    outcome = replay(path)
    assert outcome.mismatch_exchange == first.number
    assert outcome.mismatch is not None and outcome.mismatch.startswith(
        f"exchange #{first.number} (hotplate write): expected {first.detail!r}"
    )


def test_a_disk_that_refuses_the_recording_does_not_stop_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class FillingDisk:
        """``os`` for the recorder: the disk is full after 400 lines."""

        def __init__(self) -> None:
            self.lines = 0

        def write(self, fd: int, data: bytes) -> int:
            self.lines += 1
            if self.lines > 400:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return os.write(fd, data)

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

    monkeypatch.setattr(recording_module, "os", FillingDisk())
    path = tmp_path / "full.rec"
    caplog.set_level(logging.ERROR, logger="labctl.recording")
    run_id = _record_in_process(tmp_path / "data", path)  # completed all the same
    assert f"recording {path} stopped: No space left on device" in caplog.text
    recording = read_recording(path)
    assert not recording.complete
    monkeypatch.undo()
    outcome = assert_replays(path)
    assert outcome.run_id == run_id and not outcome.complete
    assert outcome.matched == len(recording.events)
