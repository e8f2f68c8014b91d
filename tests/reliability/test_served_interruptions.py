"""A contrast curve on the served bench, interrupted at every step, then resumed.

Separate processes and real links: the bench is ``labctl sim serve`` (ptys
and loopback TCP, sped up on one clock with the run), the run is ``labctl
run`` (a supervisor and its child). At each step of the fast contrast curve
the run is stopped (first Ctrl-C), sent SIGTERM (to the process the user
started), or killed with SIGKILL, and then resumed. Checked from the bench's
own records, not the engine's word:

* every exposure the bench delivered landed on this run's wafer, none twice,
  and no light fell where no wafer was (``light.jsonl``, the wafer's file);
* the journal agrees with the bench shot for shot: each finished exposure
  step is a bench exposure at its place with its delivered dose, and each
  bench exposure is a journaled step (finished, or interrupted and its wafer
  quarantined);
* after a kill -9 the bench is safe within 5 s of the death, with no labctl
  command typed - read from the simulators over the handler's ``STATE``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.store import RunStore
from protocols.runner import resume
from tests.cli import fast_contrast_curve, labctl
from tests.served import ServedBench

#: Steps of the fast contrast curve (6 fields).
STEPS = 29


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedBench]:
    bench = ServedBench(tmp_path_factory.mktemp("served"))
    try:
        yield bench
    finally:
        bench.stop()


def _labctl(arguments: list[str], injection: str | None) -> subprocess.CompletedProcess[str]:
    return labctl(*arguments, environment={"LABCTL_INJECT_KILL": injection or ""})


def _run(
    served: ServedBench, data: Path, injection: str | None
) -> subprocess.CompletedProcess[str]:
    return _labctl(fast_contrast_curve(data, station=served.station), injection)


def _only_run(data: Path) -> str:
    store = RunStore(data)
    try:
        (record,) = store.runs()
        return str(record["run_id"])
    finally:
        store.close()


def _check_records(served: ServedBench, data: Path, run_id: str, light_before: int) -> None:
    """The bench's own records against the journal (see the module docstring), wafer by wafer.

    A wafer quarantined on this unattended bench has its part done again on a
    replacement (``W01-r1``): each wafer is held to its own journal steps.
    """
    store = RunStore(data)
    try:
        journal = store.steps(run_id)
        wafers = store.wafers(run_id)
        rows = store.measurement_rows(run_id)
    finally:
        store.close()
    names = sorted({s["wafer_id"] for s in journal if s["wafer_id"]})
    shots = served.light()[light_before:]
    assert all(shot["target"] != "none" for shot in shots), [
        s for s in shots if s["target"] == "none"
    ]
    on_wafers = [shot for shot in shots if shot["target"].startswith("wafer ")]
    assert {shot["target"] for shot in on_wafers} <= {f"wafer {run_id}/{w}" for w in names}
    exposed = 0
    for name in names:
        exposures = served.exposures(f"{run_id}/{name}")
        places = [(round(e["x"], 3), round(e["y"], 3)) for e in exposures]
        assert len(places) == len(set(places)), f"a field of {name} exposed twice: {places}"
        exposed += len(exposures)
        quarantined = wafers.get(name, {}).get("state") == "quarantined"
        by_place = {(round(e["x"], 3), round(e["y"], 3)): e for e in exposures}
        journaled: set[tuple[float, float]] = set()
        for step in journal:
            if step["name"] != "expose" or step["wafer_id"] != name:
                continue
            place = (
                round(step["parameters"]["x"]["__quantity__"][0], 3),
                round(step["parameters"]["y"]["__quantity__"][0], 3),
            )
            if step["status"] == "finished":
                assert place in by_place, f"journal says {place} was exposed; the bench did not"
                delivered = step["result"]["dose_delivered"]["__quantity__"][0]
                assert by_place[place]["dose"] == pytest.approx(delivered, rel=0.02)
                assert step["result"]["wafer_on_stage"] == "handler"
                journaled.add(place)
            elif step["status"] in ("started", "interrupted", "failed", "interlocked"):
                assert quarantined  # a shot that may or may not have happened: wafer set aside
                journaled.add(place)
        assert set(by_place) <= journaled, f"{name}: an exposure the journal does not have"
    assert exposed == len(on_wafers)
    labels = [(r["wafer_id"], r["label"], r["site"]) for r in rows]
    assert len(labels) == len(set(labels)), "a site measured twice"


@pytest.mark.parametrize("seq", range(1, STEPS + 1))
def test_kill_9_at_every_step_then_resume(served: ServedBench, tmp_path: Path, seq: int) -> None:
    light_before = len(served.light())
    marker = tmp_path / "struck"
    killed = _run(served, tmp_path / "data", f"seq={seq},phase=during,once={marker}")
    assert marker.exists(), killed.stdout + killed.stderr
    # The supervisor made the bench safe before it returned: how long after the death?
    safe_after = time.time() - marker.stat().st_mtime
    assert served.is_safe(), served.state()
    assert safe_after < 5.0
    assert killed.returncode == 1, killed.stderr
    assert "died of SIGKILL" in killed.stderr and "Traceback" not in killed.stderr
    run_id = _only_run(tmp_path / "data")

    outcome = resume(run_id, tmp_path / "data", station=served.station)
    assert outcome.status in ("completed", "incomplete"), outcome.reason
    assert served.is_safe()
    _check_records(served, tmp_path / "data", run_id, light_before)


@pytest.mark.parametrize("seq", range(1, STEPS + 1))
def test_sigterm_at_every_step_then_resume(served: ServedBench, tmp_path: Path, seq: int) -> None:
    light_before = len(served.light())
    terminated = _run(served, tmp_path / "data", f"seq={seq},phase=term")
    assert terminated.returncode == 1, terminated.stdout + terminated.stderr
    assert "Traceback" not in terminated.stdout + terminated.stderr
    run_id = _only_run(tmp_path / "data")
    store = RunStore(tmp_path / "data")
    record = store.run(run_id)
    store.close()
    assert record["status"] == "aborted" and "SIGTERM" in record["reason"], record
    assert served.is_safe(), served.state()

    outcome = resume(run_id, tmp_path / "data", station=served.station)
    assert outcome.status in ("completed", "incomplete"), outcome.reason
    _check_records(served, tmp_path / "data", run_id, light_before)


def test_stop_at_every_step_then_resume(served: ServedBench, tmp_path: Path) -> None:
    """One run, stopped at the next safe point of every step in turn and resumed each time."""
    light_before = len(served.light())
    data = tmp_path / "data"
    first = _run(served, data, "seq=1,phase=stop")
    assert first.returncode == 1, first.stdout + first.stderr
    run_id = _only_run(data)
    for seq in range(2, STEPS + 2):
        store = RunStore(data)
        record = store.run(run_id)
        store.close()
        if record["status"] == "completed":
            break
        assert record["status"] == "aborted", record
        assert "safe point" in record["reason"]
        assert served.is_safe(), served.state()
        resumed = _labctl(
            ["resume", run_id, "--station", str(served.station), "--data", str(data)],
            f"seq={seq},phase=stop",
        )
        assert "Traceback" not in resumed.stdout + resumed.stderr
    store = RunStore(data)
    record = store.run(run_id)
    store.close()
    assert record["status"] == "completed", record  # a stop never costs a wafer
    assert seq >= STEPS  # it was stopped at every step on the way
    _check_records(served, data, run_id, light_before)


@pytest.fixture(scope="module")
def served_over_tcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedBench]:
    """The served bench with its serial instruments on TCP (socket://), as on Windows."""
    bench = ServedBench(tmp_path_factory.mktemp("served-tcp"), serial="tcp")
    try:
        yield bench
    finally:
        bench.stop()


def test_serial_over_tcp_a_whole_run(served_over_tcp: ServedBench, tmp_path: Path) -> None:
    text = served_over_tcp.station.read_text()
    assert text.count('resource = "socket://127.0.0.1:') == 4  # every serial instrument
    assert "/dev/pts" not in text and "Serial instruments on TCP sockets" in text
    light_before = len(served_over_tcp.light())
    result = _run(served_over_tcp, tmp_path / "data", None)
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = _only_run(tmp_path / "data")
    _check_records(served_over_tcp, tmp_path / "data", run_id, light_before)
    assert served_over_tcp.is_safe()


@pytest.mark.parametrize("seq", [3, 14, 24])  # the coat, an exposure, the develop
def test_serial_over_tcp_kill_9_then_resume(
    served_over_tcp: ServedBench, tmp_path: Path, seq: int
) -> None:
    light_before = len(served_over_tcp.light())
    marker = tmp_path / "struck"
    killed = _run(served_over_tcp, tmp_path / "data", f"seq={seq},phase=during,once={marker}")
    assert marker.exists(), killed.stdout + killed.stderr
    assert served_over_tcp.is_safe(), served_over_tcp.state()
    assert "died of SIGKILL" in killed.stderr and "Traceback" not in killed.stderr
    run_id = _only_run(tmp_path / "data")
    outcome = resume(run_id, tmp_path / "data", station=served_over_tcp.station)
    assert outcome.status in ("completed", "incomplete"), outcome.reason
    assert served_over_tcp.is_safe()
    _check_records(served_over_tcp, tmp_path / "data", run_id, light_before)
