"""One bench, one runner: two queue runners, on one data directory and on one served bench.

Before the bench lock, two ``queue run`` processes on one data directory
claimed entries once each but ran them on the bench at the same time (16 of
30 entries failed, wafers vanished from the tools). Now a runner waits for
the bench; no entry fails because of the other, and a ``run`` started while
the bench is busy is refused with one line naming the holder.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from labctl.benchlock import BenchLock
from labctl.store import RunStore
from protocols.queue import add
from protocols.runner import RunRequest
from sim_instruments.bench import VirtualBench
from tests.cli import fast_contrast_curve, labctl
from tests.protocols.conftest import BASELINE, FAST
from tests.served import ServedBench


def _queue_runner(data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _add(data: Path, count: int, *, station: Path | None = None) -> None:
    for _ in range(count):
        add(
            RunRequest(
                protocol="contrast-curve",
                data_dir=data,
                formulation=BASELINE,
                sim=station is None,
                station=station,
                overrides=FAST,
            )
        )


def test_two_queue_runners_on_one_data_directory(tmp_path: Path) -> None:
    _add(tmp_path, 4)
    runners = [_queue_runner(tmp_path), _queue_runner(tmp_path)]
    outputs = [runner.communicate(timeout=300)[0] for runner in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    store = RunStore(tmp_path)
    entries = store.queue()
    assert [e["status"] for e in entries] == ["done"] * 4, entries
    assert len({e["run_id"] for e in entries}) == 4  # each entry run once
    assert [r["status"] for r in store.runs()] == ["completed"] * 4
    store.close()
    bench = VirtualBench(data_dir=tmp_path)
    assert all(holder is None for holder in bench.holders.values())
    bench.close()


def test_two_queue_runners_of_two_data_directories_on_one_served_bench(tmp_path: Path) -> None:
    served = ServedBench(tmp_path)
    try:
        first, second = tmp_path / "lab-a", tmp_path / "lab-b"
        _add(first, 2, station=served.station)
        _add(second, 2, station=served.station)
        runners = [_queue_runner(first), _queue_runner(second)]
        outputs = [runner.communicate(timeout=300)[0] for runner in runners]
        assert [r.returncode for r in runners] == [0, 0], outputs
        assert any("waiting for the bench" in output for output in outputs), outputs
        for data in (first, second):
            store = RunStore(data)
            assert [e["status"] for e in store.queue()] == ["done", "done"]
            assert [r["status"] for r in store.runs()] == ["completed", "completed"]
            store.close()
        assert served.is_safe()
    finally:
        served.stop()


def test_a_run_on_a_busy_bench_is_refused_naming_the_holder(tmp_path: Path) -> None:
    holder = BenchLock(tmp_path, purpose="labctl queue run")
    holder.acquire()
    try:
        started = time.monotonic()
        refused = labctl(*fast_contrast_curve(tmp_path), timeout=60)
        assert time.monotonic() - started < 30
    finally:
        holder.release()
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "the bench is in use by pid" in lines[0] and "labctl queue run" in lines[0]
    store = RunStore(tmp_path)
    assert store.runs() == []  # nothing recorded, nothing moved
    store.close()
