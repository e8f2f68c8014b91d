"""The overnight queue: order, failure policy, notification, and a crash of its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.store import RunStore
from protocols.queue import add, run_queue
from protocols.runner import RunRequest
from sim_instruments.bench import VirtualBench
from tests.protocols.conftest import BASELINE, FAST


def queue_three(data: Path) -> None:
    for overrides in (FAST, FAST, ("speeds=2000 rpm,4000 rpm",)):
        protocol = "spin-curve" if overrides[0].startswith("speeds") else "contrast-curve"
        add(
            RunRequest(
                protocol=protocol,
                data_dir=data,
                formulation=BASELINE,
                sim=True,
                overrides=overrides,
            )
        )


def test_the_queue_runs_everything_in_order_and_notifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_three(tmp_path)
    log = tmp_path / "notify.log"
    script = (
        "import os; open(os.environ['LOG'], 'a').write("
        "os.environ['LABCTL_STATUS'] + ' ' + os.environ['LABCTL_QUEUE_ID'] + chr(10))"
    )
    monkeypatch.setenv("LOG", str(log))
    notifier = f'{sys.executable} -c "{script}"'
    summary = run_queue(tmp_path, notify=notifier, report=lambda line: None)
    assert (summary.done, summary.failed) == (3, 0)
    entries = RunStore(tmp_path).queue()
    assert [e["status"] for e in entries] == ["done", "done", "done"]
    runs = RunStore(tmp_path).runs()
    assert [r["protocol"] for r in runs] == ["contrast-curve", "contrast-curve", "spin-curve"]
    assert log.read_text().splitlines() == ["completed 1", "completed 2", "completed 3"]


def test_stop_policy_stops_after_a_failure(tmp_path: Path) -> None:
    queue_three(tmp_path)
    bench = VirtualBench(data_dir=tmp_path)
    bench.inject("exposure_source", "lamp_failure", start=0)
    bench.close()
    summary = run_queue(tmp_path, policy="stop", report=lambda line: None)
    assert (summary.failed, summary.stopped) == (1, True)
    assert [e["status"] for e in RunStore(tmp_path).queue()] == ["failed", "pending", "pending"]


def test_the_queue_survives_a_kill_of_its_process_and_finishes_the_night(tmp_path: Path) -> None:
    queue_three(tmp_path)
    environment = {**os.environ, "LABCTL_INJECT_KILL": "seq=7,phase=during"}  # mid soft bake
    killed = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert killed.returncode == -signal.SIGKILL
    entries = RunStore(tmp_path).queue()
    assert entries[0]["status"] == "running" and entries[0]["run_id"]
    summary = run_queue(tmp_path, report=lambda line: None)
    assert summary.resumed == 1
    entries = RunStore(tmp_path).queue()
    assert [e["status"] for e in entries] == ["failed", "done", "done"]
    assert entries[0]["reason"].startswith("incomplete")  # its wafer was quarantined
    store = RunStore(tmp_path)
    assert len(store.runs()) == 3  # the crashed entry was resumed, not started again
    bench = VirtualBench(data_dir=tmp_path)
    assert all(holder is None for holder in bench.holders.values())  # tools free at dawn


def test_an_entry_is_claimed_by_one_runner_only(tmp_path: Path) -> None:
    add(
        RunRequest(
            protocol="contrast-curve",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=FAST,
        )
    )
    store = RunStore(tmp_path)
    (entry,) = store.queue()
    assert store.queue_claim(entry["id"], "pending", None)
    assert not store.queue_claim(entry["id"], "pending", None)  # the second runner loses
