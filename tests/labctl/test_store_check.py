"""A damaged run store is refused at open, checked, and copied out.

Damage is made the way disks and people make it: a file cut to nothing, a
file of noise, a page in the middle overwritten, a store from another schema.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labctl.store import SCHEMA_VERSION, RunStore, StoreError
from labctl.storecheck import check_store, copy_out

RUNS = 40
SAMPLES_PER_RUN = 400


def labctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *args], capture_output=True, text=True, timeout=120
    )


def make_store(data: Path) -> list[dict[str, object]]:
    """A store of many pages: the runs first (low pages), then their samples."""
    store = RunStore(data)
    for index in range(RUNS):
        store.create_run(
            {
                "run_id": f"run-{index:03d}",
                "protocol": "contrast-curve",
                "parameters": {"fields": 6},
                "software": {"labctl": "test"},
                "operator": "tester",
                "attended": False,
                "simulated": True,
            }
        )
    for index in range(RUNS):
        run_id = f"run-{index:03d}"
        store.step_started(run_id, 1, "bake", "W01", False, {"t": "60 s"})
        store.step_finished(
            run_id,
            1,
            {"ok": True},
            samples=[
                ("plate_temperature", 0.5 * i, 95.0 + i / 1000, "degC")
                for i in range(SAMPLES_PER_RUN)
            ],
        )
        store.event(run_id, "note", f"run {index} done")
    runs = store.runs()
    store.close()  # the last connection: everything checkpointed into the main file
    return runs


def leaf_page_of(path: Path, table: str) -> int:
    """A leaf page from the middle of ``table``'s b-tree, found by walking it."""
    data = path.read_bytes()
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    db.close()
    while True:
        header = (page - 1) * page_size + (100 if page == 1 else 0)
        kind = data[header]
        if kind == 0x0D:  # a table leaf
            return int(page)
        assert kind == 0x05, f"page {page}: not a table b-tree page ({kind:#x})"
        cells = int.from_bytes(data[header + 3 : header + 5], "big")
        pointer = header + 12 + 2 * (cells // 2)  # the middle cell's child
        cell = (page - 1) * page_size + int.from_bytes(data[pointer : pointer + 2], "big")
        page = int.from_bytes(data[cell : cell + 4], "big")


def overwrite_page(path: Path, page: int) -> None:
    """Noise over one whole page (the default page size, which every store here has)."""
    page_size = 4096
    with open(path, "r+b") as file:
        file.seek((page - 1) * page_size)
        file.write(random.Random(page).randbytes(page_size))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def page_damaged(tmp_path: Path) -> tuple[Path, list[dict[str, object]]]:
    data = tmp_path / "data"
    runs = make_store(data)
    path = data / RunStore.FILENAME
    assert path.stat().st_size > 100 * 4096  # many pages
    page = leaf_page_of(path, "samples")
    assert page > 1
    overwrite_page(path, page)
    return data, runs


def _damage_empty(data: Path) -> str:
    data.mkdir()
    (data / RunStore.FILENAME).write_bytes(b"")
    return "empty (truncated?) store file"


def _damage_short(data: Path) -> str:
    data.mkdir()
    (data / RunStore.FILENAME).write_bytes(b"SQLite f")
    return "8-byte (truncated?) store file"


def _damage_noise(data: Path) -> str:
    data.mkdir()
    (data / RunStore.FILENAME).write_bytes(random.Random(1).randbytes(50_000))
    return "not an SQLite database"


def _damage_noise_after_header(data: Path) -> str:
    data.mkdir()
    noise = random.Random(2).randbytes(50_000)
    (data / RunStore.FILENAME).write_bytes(b"SQLite format 3\x00" + noise)
    return "damaged:"


def _damage_page(data: Path) -> str:
    make_store(data)
    overwrite_page(data / RunStore.FILENAME, leaf_page_of(data / RunStore.FILENAME, "samples"))
    return "damaged:"


def _damage_schema_version(data: Path) -> str:
    RunStore(data).close()
    db = sqlite3.connect(data / RunStore.FILENAME)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    return f"schema version 99, this labctl reads {SCHEMA_VERSION}"


def _damage_version_missing(data: Path) -> str:
    make_store(data)
    db = sqlite3.connect(data / RunStore.FILENAME)
    db.execute("DELETE FROM meta")
    db.commit()
    db.close()
    return "schema version is missing, yet it holds runs"


DAMAGE = {
    "empty": _damage_empty,
    "short": _damage_short,
    "noise": _damage_noise,
    "noise-after-header": _damage_noise_after_header,
    "page": _damage_page,
    "schema-version": _damage_schema_version,
    "version-missing": _damage_version_missing,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_store_is_refused_at_open_and_left_as_it_was(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    expected = DAMAGE[kind](data)
    path = data / RunStore.FILENAME
    before = digest(path)
    with pytest.raises(StoreError) as refused:
        RunStore(data)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert message.endswith(f"; run `labctl store check --data {data}`")
    assert refused.value.path == str(path)
    assert digest(path) == before  # nothing written to a store it refused


@pytest.mark.parametrize("kind", ["empty", "noise", "page", "schema-version"])
def test_labctl_runs_on_a_damaged_store_is_one_line_and_fails(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    expected = DAMAGE[kind](data)
    result = labctl("runs", "--data", str(data))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"labctl: error: {data / RunStore.FILENAME}: ")
    assert expected in lines[0] and "labctl store check --data" in lines[0]


def test_a_sound_store_opens_and_its_check_says_sound(tmp_path: Path) -> None:
    runs = make_store(tmp_path)
    store = RunStore(tmp_path)
    assert store.runs() == runs
    store.close()
    assert check_store(tmp_path).sound
    result = labctl("store", "check", "--data", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{tmp_path / RunStore.FILENAME}: sound"


@pytest.mark.parametrize("kind", ["empty", "noise", "page", "schema-version"])
def test_store_check_says_damaged(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    DAMAGE[kind](data)
    before = digest(data / RunStore.FILENAME)
    result = labctl("store", "check", "--data", str(data))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    verdicts = [line for line in result.stdout.splitlines() if ": damaged: " in line]
    assert verdicts and all(line.startswith(str(data / RunStore.FILENAME)) for line in verdicts)
    assert digest(data / RunStore.FILENAME) == before


def test_store_check_on_a_directory_without_a_store_is_bad_input(tmp_path: Path) -> None:
    result = labctl("store", "check", "--data", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no run store" in result.stderr
    assert not (tmp_path / "nothing").exists()


def test_copy_out_recovers_every_readable_row(
    tmp_path: Path, page_damaged: tuple[Path, list[dict[str, object]]]
) -> None:
    data, runs = page_damaged
    target, tables = copy_out(data, tmp_path / "copy")
    by_table = {t.table: t for t in tables}
    # The runs, their steps and events live on pages the damage did not touch.
    assert by_table["runs"].recovered == RUNS and by_table["runs"].lost == 0
    assert by_table["steps"].recovered == RUNS and by_table["events"].recovered == RUNS
    # One leaf of samples is gone; the rest is read around it, and the index
    # (intact) still counts what was there.
    samples = by_table["samples"]
    assert samples.unreadable and samples.lost is not None and samples.lost > 0
    assert samples.recovered + samples.lost == RUNS * SAMPLES_PER_RUN
    assert samples.lost < 200  # one page's worth, not the table

    copy = RunStore(target.parent)  # opens cleanly: checked like any store
    assert copy.runs() == runs
    assert [e["message"] for e in copy.events("run-007")] == ["run 7 done"]
    rows = copy.sample_rows("run-000")
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)  # rowid order kept
    copy.close()
    assert check_store(target.parent).sound


def test_store_check_copy_out_reports_rows_per_table(
    tmp_path: Path, page_damaged: tuple[Path, list[dict[str, object]]]
) -> None:
    data, _ = page_damaged
    before = digest(data / RunStore.FILENAME)
    result = labctl("store", "check", "--data", str(data), "--copy-out", str(tmp_path / "copy"))
    assert result.returncode == 1, result.stderr  # the store itself is still damaged
    assert "Traceback" not in result.stderr + result.stdout
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "recovered" in line}
    assert f"{RUNS} recovered, 0 lost" in lines["runs"]
    assert "lost (rowids" in lines["samples"]
    assert digest(data / RunStore.FILENAME) == before
    again = labctl("store", "check", "--data", str(data), "--copy-out", str(tmp_path / "copy"))
    assert again.returncode == 2 and "exists" in again.stderr  # never overwrites a copy


def test_a_missing_schema_version_without_runs_is_completed(tmp_path: Path) -> None:
    RunStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / RunStore.FILENAME)
    db.execute("DELETE FROM meta")
    db.commit()
    db.close()
    RunStore(tmp_path).close()  # a labctl killed while making it: finished now
    db = sqlite3.connect(tmp_path / RunStore.FILENAME)
    assert db.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
    db.close()


def test_a_new_store_appears_complete_even_to_many_openers_at_once(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_store() -> None:
        start.wait()
        try:
            RunStore(tmp_path).close()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [RunStore.FILENAME]


def test_damage_met_after_open_names_the_check(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    malformed = sqlite3.DatabaseError("database disk image is malformed")
    malformed.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
    error = store._error(malformed, "read failed")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    store.close()
    assert str(error) == (
        f"{tmp_path / RunStore.FILENAME}: read failed: database disk image is malformed;"
        f" run `labctl store check --data {tmp_path}`"
    )
    assert "store check" not in str(store._error(full, "write failed"))


def test_a_store_on_a_read_only_file_system_is_read_and_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = make_store(tmp_path)
    monkeypatch.setattr("labctl.store.read_only_medium", lambda directory: True)
    store = RunStore(tmp_path)  # SQLite could not make the WAL index there: opened immutable
    assert store.read_only and store.runs() == runs
    with pytest.raises(StoreError, match="write failed: attempt to write a readonly database"):
        store.event("run-000", "note", "a write")
    store.close()
    Path(f"{tmp_path / RunStore.FILENAME}-wal").write_bytes(b"\0" * 32)
    with pytest.raises(StoreError, match="unfinished write-ahead log"):
        RunStore(tmp_path)  # its last commits are there, and immutable would not read them
