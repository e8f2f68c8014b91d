"""The overnight queue: order, failure policy, notification, and a crash of its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.store import RunStore, wait_for
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


def test_a_run_process_killed_in_the_night_is_recovered_by_its_supervisor(
    tmp_path: Path,
) -> None:
    """kill -9 of an entry's run process: bench safe at once, run resumed, the night goes on."""
    queue_three(tmp_path)
    marker = tmp_path / "struck"
    environment = {
        **os.environ,
        "LABCTL_INJECT_KILL": f"seq=7,phase=during,once={marker}",  # mid soft bake, once
    }
    night = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
    )
    assert marker.exists()
    assert night.returncode == 0, night.stdout + night.stderr  # every entry done
    assert "died of SIGKILL" in night.stdout + night.stderr
    assert "Traceback" not in night.stdout + night.stderr
    store = RunStore(tmp_path)
    entries = store.queue()
    assert [e["status"] for e in entries] == ["done", "done", "done"]
    # Its wafer was quarantined; a replacement from the cassette did its part.
    assert entries[0]["reason"].startswith("completed")
    assert "wafer W01-r1 replaced W01" in entries[0]["reason"]
    assert len(store.runs()) == 3  # the killed entry was resumed, not started again
    first = entries[0]["run_id"]
    kinds = [e["kind"] for e in store.events(first)]
    assert "supervisor" in kinds and "killed" in kinds
    bench = VirtualBench(data_dir=tmp_path)
    assert all(holder is None for holder in bench.holders.values())  # tools free at dawn


def test_the_queue_survives_a_kill_of_the_queue_process_itself(tmp_path: Path) -> None:
    """kill -9 of the supervisor too: its child aborts (bench safe); the next runner resumes."""
    queue_three(tmp_path)
    runner = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = RunStore(tmp_path)
    assert wait_for(lambda: _steps_journaled(store) >= 5, timeout=60)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    # The child learns its supervisor died (SIGTERM from the kernel), aborts, goes safe.
    assert wait_for(lambda: not store.interrupted_runs() and _no_running_run(store), timeout=30)
    summary = run_queue(tmp_path, report=lambda line: None)
    assert summary.resumed == 1
    entries = store.queue()
    assert [e["status"] for e in entries][1:] == ["done", "done"]
    assert len(store.runs()) == 3  # resumed, not started again
    bench = VirtualBench(data_dir=tmp_path)
    assert all(holder is None for holder in bench.holders.values())


def _steps_journaled(store: RunStore) -> int:
    return sum(len(store.steps(r["run_id"])) for r in store.runs())


def _no_running_run(store: RunStore) -> bool:
    return all(r["status"] != "running" for r in store.runs())


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
