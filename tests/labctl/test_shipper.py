"""The shipper against a real PostgreSQL: idempotent, resumable, never in a run's way."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from labctl import shipper as shipper_module
from labctl.errors import InputError
from labctl.labdb import LabUnavailable
from labctl.shipper import BackgroundShipper, Shipper
from labctl.store import RunStore, now_text, wait_for
from tests.lab import LabServer, bench_rows, lab_rows, lost_and_duplicated


def synthetic_run(store: RunStore, run_id: str, *, samples: int = 50, finish: bool = True) -> None:
    """A run with a step, its samples and measurements, a wafer and an event (no bench)."""
    store.save_formulation("f" * 64, "F", "f.toml", 'name = "F"', {"name": "F"})
    store.create_run(
        {
            "run_id": run_id,
            "protocol": "contrast-curve",
            "parameters": {"fields": 6},
            "formulation_hash": "f" * 64,
            "software": {"labctl": "test"},
            "operator": "tester",
            "attended": False,
            "simulated": True,
            "seed": 2**63 - 1,  # the largest seed a bench keeps: 64 bits in the lab too
        }
    )
    store.mark_running(run_id)
    store.step_started(run_id, 1, "coat", "W01", False, {"speed": 3000}, bench_time=0.0)
    if not finish:
        return
    points = [
        ("spin_speed", i * 0.1, 3000.0 + i, "rpm", i * 0.1, now_text()) for i in range(samples)
    ]
    measurement = {
        "run_id": run_id,
        "seq": 1,
        "wafer_id": "W01",
        "label": "before",
        "site": "P1",
        "x_mm": 0.0,
        "y_mm": 0.0,
        "thickness_nm": 451.5,
        "measured_at": now_text(),
    }
    store.step_finished(
        run_id, 1, {"ok": True}, samples=points, measurements=[measurement], bench_time=9.9
    )
    store.set_wafer(run_id, "W01", "done")
    store.event(run_id, "note", "a note")
    store.finish_run(run_id, "completed", "1 step")


def test_shipping_twice_stores_every_row_once(tmp_path: Path, lab_url: str) -> None:
    store = RunStore(tmp_path)
    for number in range(3):
        synthetic_run(store, f"run-{number}")
    store.event("run-2", "reply", "an instrument's reply with a NUL \x00 in it")
    store.close()
    first = Shipper(tmp_path, lab_url, bench="bench-a")
    report = first.ship()
    assert report.rows["samples"] == 150 and report.rows["runs"] == 3
    assert first.ship().total == 0  # nothing new
    first.close()
    again = Shipper(tmp_path, lab_url)  # a new process: what was shipped is read from the lab
    assert again.bench == "bench-a"
    assert again.ship().total == 0
    again.close()
    losses = lost_and_duplicated(tmp_path, lab_url, "bench-a")
    # The one value changed on the way: PostgreSQL text holds no NUL.
    here, there = bench_rows(tmp_path), lab_rows(lab_url, "bench-a")
    assert there["events"][-1][3] == "an instrument's reply with a NUL \ufffd in it"
    assert losses.pop("events") == (1, 1)
    assert losses == {table: (0, 0) for table in losses}
    assert here["samples"] == there["samples"]  # in the order journaled, too


def test_a_changed_step_and_run_status_are_updated_not_added(tmp_path: Path, lab_url: str) -> None:
    store = RunStore(tmp_path)
    synthetic_run(store, "run-1", finish=False)
    shipper = Shipper(tmp_path, lab_url, bench="bench-a")
    shipper.ship()
    assert [r[5] for r in lab_rows(lab_url, "bench-a")["steps"]] == ["started"]
    store.step_finished("run-1", 1, {"ok": True}, samples=[("spin_speed", 0.0, 1.0, "rpm")])
    store.finish_run("run-1", "completed", "done")
    report = shipper.ship()
    assert report.rows == {"runs": 1, "steps": 1, "samples": 1}
    lab = lab_rows(lab_url, "bench-a")
    assert [r[5] for r in lab["steps"]] == ["finished"]
    assert [r[14] for r in lab["runs"]] == ["completed"]
    assert lab == bench_rows(tmp_path)
    store.close()
    shipper.close()


def test_a_bench_id_is_made_once_and_kept(tmp_path: Path, lab_url: str) -> None:
    store = RunStore(tmp_path)
    made = store.bench_id()
    assert store.bench_id() == made and store.bench_id(made) == made
    with pytest.raises(InputError, match="cannot become 'other'"):
        store.bench_id("other")
    with pytest.raises(InputError, match="bench id"):
        RunStore(tmp_path / "b").bench_id("no spaces")
    store.close()


@pytest.fixture
def own_server() -> Any:
    """A server of the test's own: it is stopped and started under a shipper."""
    server = LabServer()
    yield server
    server.close()


def test_a_server_stopped_mid_shipment_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, own_server: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore(tmp_path)
    for number in range(12):
        synthetic_run(store, f"run-{number:02d}", samples=2000)
    store.close()
    url = own_server.new_database()
    # Small transactions, so the server stops between some and inside one.
    monkeypatch.setattr(shipper_module, "ROWS_PER_TRANSACTION", 4000)
    shipper = Shipper(tmp_path, url, bench="bench-a")
    original = shipper._ship_batch
    batches = []

    def stop_during_the_third(server: Any, batch: Any, report: Any) -> None:
        batches.append(len(batch))
        if len(batches) == 3:
            own_server.stop("immediate")  # the connection dies under this transaction
        original(server, batch, report)

    monkeypatch.setattr(shipper, "_ship_batch", stop_during_the_third)
    with pytest.raises(LabUnavailable) as refused:
        shipper.ship()
    assert "cannot reach" in str(refused.value) or "lost the lab store" in str(refused.value)
    with pytest.raises(LabUnavailable):
        shipper.ship()  # still down: refused again, nothing changes
    own_server.start()
    partial = lab_rows(url, "bench-a")
    assert 0 < len(partial["samples"]) < 24000  # two transactions made it, the third did not
    monkeypatch.setattr(shipper, "_ship_batch", original)
    shipper.ship()  # the same shipper, after its connection died
    assert Shipper(tmp_path, url).ship().total == 0  # and a new one finds nothing to add
    losses = lost_and_duplicated(tmp_path, url, "bench-a")
    assert losses == {table: (0, 0) for table in losses}
    assert lab_rows(url, "bench-a") == bench_rows(tmp_path)
    assert len(lab_rows(url, "bench-a")["samples"]) == 24000


def test_two_shippers_of_one_bench_at_once_store_each_row_once(
    tmp_path: Path, lab_url: str
) -> None:
    store = RunStore(tmp_path)
    for number in range(6):
        synthetic_run(store, f"run-{number}", samples=3000)
    store.close()
    Shipper(tmp_path, lab_url, bench="bench-a").close()
    errors: list[BaseException] = []

    def ship() -> None:
        try:
            Shipper(tmp_path, lab_url).ship()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ship) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert lab_rows(lab_url, "bench-a")["samples"] == bench_rows(tmp_path)["samples"]


def test_the_background_shipper_waits_out_a_server_that_is_down(
    tmp_path: Path, own_server: LabServer
) -> None:
    url = own_server.new_database()
    own_server.stop("fast")
    store = RunStore(tmp_path)
    synthetic_run(store, "run-1")
    background = BackgroundShipper(tmp_path, url, bench="bench-a", interval=0.05, retry_max=0.1)
    background.start()
    assert wait_for(lambda: background.last_error is not None, 30)
    assert "cannot reach the lab store" in (background.last_error or "")
    synthetic_run(store, "run-2")  # the bench goes on meanwhile
    own_server.start()
    assert wait_for(lambda: background.shipped.rows.get("runs", 0) >= 2, 60)
    background.stop()
    store.close()
    assert lab_rows(url, "bench-a")["samples"] == bench_rows(tmp_path)["samples"]
    assert background.last_error is None
