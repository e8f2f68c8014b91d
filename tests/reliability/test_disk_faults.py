"""A disk that fails under the virtual bench's own files: a failed run with a reason.

A full disk is made without root or mounts: ``os.write``, for file
descriptors open on the bench's directory only, behaves like a file system
with a fixed number of bytes free - a short write when the space runs out,
then ``ENOSPC`` - the way the kernel does it. Everything else (the run
store, pipes, the terminal) writes as usual.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

import sim_instruments.bench as bench_module
from labctl.errors import CommunicationError, StorageError
from labctl.store import RunStore
from protocols.runner import RunRequest, start
from sim_instruments.bench import DISK_FULL_ENV, BenchFiles, VirtualBench
from tests.cli import fast_contrast_curve, labctl
from tests.protocols.conftest import BASELINE, FAST

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="finds a descriptor's file through /proc"
)

REAL_WRITE = os.write


class FailingDisk:
    """``os.write`` for the files under ``directory``: ``free`` bytes, then ``error``.

    With ``slack``, a write of at most that many bytes still succeeds once the
    disk is full - it fits in its file's last, partly used block - as on a
    real nearly full disk, which takes a short log line and refuses a long one.
    """

    def __init__(
        self, directory: Path, free: int, error: int = errno.ENOSPC, slack: int = 0
    ) -> None:
        self.directory = str(directory.resolve())
        self.free = free
        self.error = error
        self.slack = slack
        self.short_writes = 0
        self.refused = 0

    def write(self, fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(self.directory + os.sep):
            return REAL_WRITE(fd, data)
        if self.free <= 0 and len(data) <= self.slack:
            return REAL_WRITE(fd, data)
        if self.free <= 0:
            self.refused += 1
            raise OSError(self.error, os.strerror(self.error))
        chunk = bytes(data[: self.free])
        if len(chunk) < len(data):
            self.short_writes += 1
        written = REAL_WRITE(fd, chunk)
        self.free -= written
        return written


@pytest.fixture
def benches(monkeypatch: pytest.MonkeyPatch) -> list[VirtualBench]:
    """Every virtual bench made during the test (the run's own, in process)."""
    made: list[VirtualBench] = []

    class Recorded(VirtualBench):
        def __init__(self, **options: Any) -> None:
            made.append(self)
            super().__init__(**options)

    monkeypatch.setattr(bench_module, "VirtualBench", Recorded)
    return made


def assert_safe(bench: VirtualBench) -> None:
    report = bench.safe_state_report()
    assert not report["spin_coater"]["motor_on"]
    assert not report["exposure_source"]["output"]
    assert not report["exposure_shutter"]["open"]
    assert report["hotplate"]["idle"]


def assert_whole_lines(directory: Path) -> None:
    """A journal never keeps half a line: a short write was undone."""
    for name in ("commands.jsonl", "light.jsonl", "state.jsonl"):
        path = directory / name
        if path.exists():
            text = path.read_text("utf-8")
            assert text == "" or text.endswith("\n"), name
            for line in text.splitlines():
                json.loads(line)


# Bytes free on the "disk": a fast contrast curve writes about 420 kB there,
# so the disk fills early (coat), midway (the dose matrix) and late (develop);
# and nearly full: command log lines still fit, state lines do not.
@pytest.mark.parametrize(
    ("free", "slack"),
    [(20_000, 0), (150_000, 0), (300_000, 0), (150_000, 400)],
    ids=["early", "midway", "late", "nearly-full"],
)
def test_a_full_disk_fails_the_run_with_its_reason_and_the_bench_safe(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    benches: list[VirtualBench],
    free: int,
    slack: int,
) -> None:
    disk = FailingDisk(tmp_path / "bench", free, slack=slack)
    with monkeypatch.context() as patched:
        patched.setattr(os, "write", disk.write)
        outcome = start(
            RunRequest(
                protocol="contrast-curve",
                sim=True,
                data_dir=tmp_path,
                formulation=BASELINE,
                overrides=FAST,
            )
        )
    assert disk.refused and disk.short_writes == 1  # it did fill up, the kernel's way
    assert outcome.status == "failed", outcome.reason
    assert "\n" not in outcome.reason
    assert "No space left on device" in outcome.reason
    # Raised once, to the command that met it: the safe state was not cut short.
    assert "SAFE STATE INCOMPLETE" not in outcome.reason
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
    # The simulators' own view of the bench the run drove: safe.
    assert_safe(benches[-1])

    store = RunStore(tmp_path)
    record = store.run(outcome.run_id)
    assert (record["status"], record["reason"]) == ("failed", outcome.reason)
    # A disk is not a link: no transport retried or reconnected for it.
    assert not [e for e in store.events(outcome.run_id) if e["kind"] == "retry"]
    store.close()
    assert_whole_lines(tmp_path / "bench")


def test_a_full_disk_through_the_command_line(tmp_path: Path) -> None:
    result = labctl(*fast_contrast_curve(tmp_path), environment={DISK_FULL_ENV: "300"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "No space left on device" in result.stdout
    store = RunStore(tmp_path)
    (record,) = store.runs()
    store.close()
    assert record["status"] == "failed"
    assert "No space left on device" in record["reason"] and "\n" not in record["reason"]


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_bench_file_error_is_a_storage_error_through_the_transport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    bench = VirtualBench(data_dir=tmp_path)
    transport = bench.transport("hotplate")
    transport.open()
    monkeypatch.setattr(os, "write", FailingDisk(tmp_path / "bench", 0, error).write)
    with pytest.raises(StorageError) as failed:
        transport.write(b"SP 50\r")  # executed, then its log line cannot be written
    assert not isinstance(failed.value, CommunicationError)  # never retried as a link
    assert failed.value.errno == error
    assert str(failed.value) == f"{tmp_path / 'bench' / 'commands.jsonl'}: {os.strerror(error)}"
    bench.close()  # the failure was reported once: closing does not raise it again
    monkeypatch.undo()
    assert_whole_lines(tmp_path / "bench")


def test_closing_raises_a_disk_failure_nobody_has_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = VirtualBench(data_dir=tmp_path)
    monkeypatch.setattr(os, "write", FailingDisk(tmp_path / "bench", 0).write)
    with pytest.raises(StorageError, match=r"state\.jsonl: No space left on device"):
        bench.close()
    monkeypatch.undo()
    bench.close()  # the files were closed all the same: nothing left to do


def test_a_failure_is_raised_once_then_counted_until_every_file_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = BenchFiles(tmp_path)
    log = tmp_path / "commands.jsonl"
    assert files.append(log, b"1\n")
    monkeypatch.setattr(os, "write", FailingDisk(tmp_path, 0).write)
    with pytest.raises(StorageError):
        files.append(log, b"2\n")
    assert not files.append(log, b"3\n") and not files.replace(tmp_path / "w.json", b"{}")
    assert files.unsaved == 2
    monkeypatch.undo()
    assert files.append(log, b"4\n") and files.failure is not None  # w.json still failed
    assert files.replace(tmp_path / "w.json", b"{}") and files.failure is None  # all back
    monkeypatch.setattr(os, "write", FailingDisk(tmp_path, 0).write)
    with pytest.raises(StorageError):  # full again: news again
        files.append(log, b"5\n")
    monkeypatch.undo()
    files.close()
    assert log.read_bytes() == b"1\n4\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["commands.jsonl", "w.json"]
