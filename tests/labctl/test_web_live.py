"""The live feed: it reads only what is new, keeps up with kill, resume and interlock,
never holds the runner up, and does not freeze the page when the disk is slow."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from labctl.engine import encode
from labctl.store import RunStore, now_text
from labctl.units import Q_
from labctl.web.live import LiveFeed
from labctl.web.reader import SqliteReader
from labctl.web.views import Views
from sim_instruments.bench import VirtualBench
from tests.cli import fast_contrast_curve, labctl
from tests.labctl.web_helpers import numbers_without_units, sim_run, web_client

RUN = "20261124-210000-contrast-curve-abc123"


def _message(raw: bytes | None) -> tuple[str, dict[str, Any]]:
    assert raw is not None
    fields = dict(line.split(": ", 1) for line in raw.decode().strip().splitlines())
    return fields["event"], json.loads(fields["data"])


def _points(t0: float, count: int, value: float, *, bench: float) -> list[tuple[Any, ...]]:
    return [
        ("plate_temperature", t0 + i, value + i * 0.1, "degC", bench + t0 + i, now_text())
        for i in range(count)
    ]


@pytest.fixture
def journal(tmp_path: Path) -> RunStore:
    """A store with one running run (this process), written step by step by the test."""
    store = RunStore(tmp_path)
    parameters = {"fields": 6, "fine_fields": 0, "max_wafers": 4, "coat_time": Q_(20, "s")}
    store.create_run(
        {
            "run_id": RUN,
            "protocol": "contrast-curve",
            "parameters": encode(parameters),
            "software": {},
            "operator": "tester",
            "attended": False,
            "simulated": True,
        }
    )
    store.mark_running(RUN)
    return store


def test_the_feed_sends_what_is_new_and_starts_a_trace_over_for_a_new_step(
    journal: RunStore,
) -> None:
    feed = LiveFeed(Views(SqliteReader(journal.data_dir)))
    kind, first = _message(feed.refresh(force=True))
    assert kind == "snapshot" and first["status"]["run"]["run_id"] == RUN
    assert first["status"]["live"] is True
    progress = first["status"]["run"]["progress"]
    assert progress["n"] == 0 and progress["of"] == 29  # the plan of 6 fields, one wafer

    journal.step_started(RUN, 1, "soft bake", "W01", False, {}, bench_time=10.0)
    journal.add_samples(RUN, 1, _points(0, 5, 95.0, bench=10.0))
    kind, update = _message(feed.refresh())
    assert kind == "update"
    trace = update["traces"]["plate_temperature"]
    assert trace["reset"] and trace["seq"] == 1 and trace["step"] == "soft bake"
    assert trace["unit"] == "degC" and trace["t_unit"] == "s"
    assert [p[0] for p in trace["points"]] == [0, 1, 2, 3, 4]
    assert update["status"]["run"]["progress"]["n"] == 1
    assert numbers_without_units(update) == []

    assert feed.refresh() is None  # nothing written: nothing read, nothing sent
    reads = feed.reads

    journal.add_samples(RUN, 1, _points(5, 3, 95.5, bench=10.0))
    journal.event(RUN, "retry", "plate temperature: attempt 1 failed")
    _, update = _message(feed.refresh())
    trace = update["traces"]["plate_temperature"]
    assert not trace["reset"] and [p[0] for p in trace["points"]] == [5, 6, 7]
    assert [(e["kind"], e["level"]) for e in update["events"]] == [("retry", "warning")]
    assert feed.reads == reads + 1

    journal.step_finished(RUN, 1, None, bench_time=20.0)
    journal.step_started(RUN, 2, "transfer", "W01", False, {"to": "cassette"}, bench_time=20.0)
    _, update = _message(feed.refresh())
    assert update["traces"] == {}  # a step without samples leaves the last trace shown
    assert update["status"]["run"]["progress"]["step"]["name"] == "transfer"

    journal.step_finished(RUN, 2, None, bench_time=20.0)
    journal.step_started(RUN, 3, "post-exposure bake", "W01", False, {}, bench_time=30.0)
    journal.add_samples(RUN, 3, _points(0, 2, 110.0, bench=30.0))
    _, update = _message(feed.refresh())
    trace = update["traces"]["plate_temperature"]
    assert trace["reset"] and trace["seq"] == 3 and len(trace["points"]) == 2

    # The step started again (a resume): its trace starts over; the first attempt's
    # points are not drawn into the second's, not even by a page that connects now.
    journal.step_started(RUN, 3, "post-exposure bake", "W01", False, {}, bench_time=50.0)
    journal.add_samples(RUN, 3, _points(0, 1, 109.0, bench=50.0))
    _, update = _message(feed.refresh())
    assert update["traces"]["plate_temperature"]["reset"]
    fresh = LiveFeed(Views(SqliteReader(journal.data_dir)))
    _, snapshot = _message(fresh.refresh(force=True))
    assert snapshot["traces"]["plate_temperature"]["points"] == [[0, 109.0]]
    assert [e["kind"] for e in snapshot["events"]] == ["retry"]


def test_a_run_killed_without_a_word_shows_killed_at_the_next_poll(journal: RunStore) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        db = sqlite3.connect(journal.path)
        db.execute("UPDATE runs SET pid=? WHERE run_id=?", (sleeper.pid, RUN))
        db.commit()
        db.close()
        feed = LiveFeed(Views(SqliteReader(journal.data_dir)))
        _, state = _message(feed.refresh(force=True))
        assert state["status"]["run"]["status"] == "running"
        assert feed.refresh() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    # kill -9 writes nothing: the feed sees the process gone all the same.
    _, update = _message(feed.refresh())
    assert update["status"]["run"]["status"] == "killed"
    assert update["status"]["live"] is False
    assert "not yet recovered" in update["status"]["run"]["reason"]


def test_the_reader_never_writes_and_holds_no_transaction(tmp_path: Path) -> None:
    outcome = sim_run(tmp_path)
    reader = SqliteReader(tmp_path)
    feed = LiveFeed(Views(reader))
    feed.refresh(force=True)
    Views(reader).run_detail(outcome.run_id)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._db.execute("DELETE FROM events")
    # A writer that will not wait at all gets its write and its full checkpoint:
    # no read of the page is left open between queries.
    writer = sqlite3.connect(tmp_path / RunStore.FILENAME, timeout=0, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO events VALUES ('x', 'now', 'note', 'a write')")
        writer.execute("COMMIT")
        busy, _, _ = writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        writer.close()
    assert feed.refresh() is not None  # and it saw the write


def test_a_slow_read_does_not_stop_the_page_from_answering(tmp_path: Path) -> None:
    sim_run(tmp_path)
    with web_client(tmp_path) as (client, _):
        feed = client.app.state.feed  # type: ignore[attr-defined]
        reader = feed.reader
        release = threading.Event()
        entered = threading.Event()
        steps = reader.steps

        def slow_steps(run_id: str) -> list[dict[str, Any]]:
            entered.set()
            assert release.wait(60)
            return steps(run_id)

        reader.steps = slow_steps
        try:
            store = RunStore(tmp_path)
            store.event(store.runs()[0]["run_id"], "note", "a write the poller will read")
            store.close()
            assert entered.wait(30)  # the poller is now stuck in a read ("a slow disk")
            assert client.get("/api").status_code == 200
            live = client.get("/api/live")
            assert live.status_code == 200 and live.json()["status"]["run"] is not None
            assert client.get("/").status_code == 200
        finally:
            release.set()


def test_interlocked_killed_and_resumed_runs_read_right(tmp_path: Path) -> None:
    # Interlocked: the LED fails before the run's calibration.
    interlocked = tmp_path / "interlocked"
    bench = VirtualBench(data_dir=interlocked)
    bench.inject("exposure_source", "lamp_failure", start=0)
    bench.close()
    outcome = sim_run(interlocked)
    assert outcome.status == "interlocked"
    with web_client(interlocked) as (client, _):
        detail = client.get(f"/api/runs/{outcome.run_id}").json()
        runs = client.get("/api/runs").json()["runs"]
    assert detail["status"] == "interlocked"
    assert any(e["kind"] == "interlocked" and e["level"] == "fault" for e in detail["events"])
    assert runs[0]["figures"]["dg"] is None  # no contrast curve, and no exception either

    # Killed at step 5 (the supervisor records it), then resumed to the end.
    data = tmp_path / "killed"
    died = labctl(*fast_contrast_curve(data), environment={"LABCTL_INJECT_KILL": "seq=5"})
    assert died.returncode == 1, died.stderr
    store = RunStore(data, create=False)
    run_id = store.runs()[0]["run_id"]
    store.close()
    with web_client(data) as (client, _):
        killed = client.get(f"/api/runs/{run_id}").json()
        live = client.get("/api/live").json()
    assert killed["status"] == "killed"
    assert killed["progress"]["n"] == 5 and killed["progress"]["of"] == 29
    assert any(e["level"] == "fault" and e["kind"] == "supervisor" for e in killed["events"])
    assert live["status"]["run"]["status"] == "killed" and live["status"]["live"] is False
    resumed = labctl("resume", run_id, "--data", str(data))
    assert resumed.returncode == 0, resumed.stderr
    with web_client(data) as (client, _):
        after = client.get(f"/api/runs/{run_id}").json()
    assert after["status"] == "completed"
    assert (after["progress"]["n"], after["progress"]["of"]) == (29, 29)
    assert after["figures"]["dg"]["value"] is not None
    restarted = [s for s in after["steps"] if s["attempts"] > 1]
    assert restarted and all(s["status"] == "finished" for s in after["steps"])


def test_a_long_step_commits_its_samples_as_it_goes_and_each_once(
    journal: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What makes the traces live: the engine's flush (wall clock stood in for)."""
    import labctl.engine as engine
    from labctl.clock import VirtualClock

    class Wall:
        now = 1000.0

        @classmethod
        def monotonic(cls) -> float:
            return cls.now

    monkeypatch.setattr(engine, "time", Wall)
    run = engine.Run(
        store=journal,
        run_id=RUN,
        station={},
        clock=VirtualClock(),
        handler=None,  # type: ignore[arg-type]
        parameters={},
    )
    reader = SqliteReader(journal.data_dir)
    in_store: list[int] = []

    def bake(context: engine.StepContext) -> None:
        for second in range(6):
            context.record("plate_temperature", Q_(95 + second, "degC"))
            in_store.append(len(reader.sample_rows(RUN)))
            Wall.now += engine.LIVE_SAMPLE_PERIOD / 2  # two readings per flush period

    run.step("soft bake", bake, wafer=None, parameters={})
    # Committed while the step ran, never waiting longer than the period...
    assert in_store == [0, 0, 3, 3, 5, 5]
    rows = reader.sample_rows(RUN)
    # ...and each reading once, in order, when the step's end wrote the rest.
    assert [r["value"] for r in rows] == [95, 96, 97, 98, 99, 100]
    assert reader.steps(RUN)[0]["status"] == "finished"
