"""The lab-wide queue on a real PostgreSQL: two benches' runners, a runner that dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labctl.store import RunStore, wait_for
from protocols.lab_queue import add, entries, run_lab_queue
from protocols.runner import RunRequest
from tests.cli import labctl
from tests.protocols.conftest import BASELINE, FAST


def _request(tmp_path: Path) -> RunRequest:
    return RunRequest(
        protocol="contrast-curve",
        data_dir=tmp_path / "adder",
        formulation=BASELINE,
        sim=True,
        overrides=FAST,
    )


def _runs(data: Path) -> list[str]:
    if not (data / "labctl.sqlite").exists():
        return []
    store = RunStore(data, create=False)
    try:
        return [run["run_id"] for run in store.runs()]
    finally:
        store.close()


def test_two_benches_take_every_entry_exactly_once(tmp_path: Path, lab_url: str) -> None:
    fast = [item for value in FAST for item in ("--set", value)]
    added = []
    for bench in (None, None, "bench-2"):
        named = ["--bench", bench] if bench else []
        result = labctl(
            "queue", "add", "contrast-curve", "--sim", "--formulation", str(BASELINE),
            *fast, "--lab", lab_url, *named, "--data", str(tmp_path / "adder"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        added.append(int(result.stdout.split("#")[1].split(":")[0]))
    runners = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "labctl.cli", "queue", "run", "--lab", lab_url),
                *("--bench", f"bench-{n}", "--data", str(tmp_path / f"bench-{n}")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    for runner in runners:
        out, err = runner.communicate(timeout=300)
        assert runner.returncode == 0, err + out
    listed = {entry["id"]: entry for entry in entries(lab_url)}
    assert sorted(listed) == added
    assert all(entry["status"] == "done" for entry in listed.values())
    assert listed[added[2]]["claimed_by"] == "bench-2"  # the entry that named its bench
    by_bench = {n: _runs(tmp_path / f"bench-{n}") for n in (1, 2)}
    ran = [run for runs in by_bench.values() for run in runs]
    assert sorted(ran) == sorted(entry["run_id"] for entry in listed.values())  # once each
    for entry in listed.values():
        bench = int(entry["claimed_by"].split("-")[1])
        assert entry["run_id"] in by_bench[bench]
    shown = labctl("queue", "list", "--lab", lab_url)
    assert shown.returncode == 0 and shown.stdout.count(" done ") == 3


def test_a_dead_runners_entry_is_resumed_by_its_own_bench_only(
    tmp_path: Path, lab_url: str
) -> None:
    entry = add(_request(tmp_path), lab_url)
    # Bench 1's runner dies inside step 8 (kill -9 of the process running the entry).
    died = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from protocols.lab_queue import run_lab_queue;"
            " run_lab_queue(Path(sys.argv[1]), sys.argv[2], bench='bench-1', lease=3,"
            " supervised=False)",
            str(tmp_path / "bench-1"),
            lab_url,
        ],
        env={**__import__("os").environ, "LABCTL_INJECT_KILL": "seq=8,phase=during"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == -9, died.stderr
    [started] = _runs(tmp_path / "bench-1")
    # Others see it dead once its lease runs out...
    assert wait_for(lambda: entries(lab_url)[0]["status"] == "dead", 30)
    seen = entries(lab_url)[0]
    assert seen["claimed_by"] == "bench-1" and "only bench bench-1 resumes it" in seen["reason"]
    # ... and leave it: bench 2 finds nothing to take.
    other = run_lab_queue(tmp_path / "bench-2", lab_url, bench="bench-2", supervised=False)
    assert other.claimed == 0 and _runs(tmp_path / "bench-2") == []
    # Bench 1's next runner resumes the same run: not restarted, nothing done twice.
    again = run_lab_queue(tmp_path / "bench-1", lab_url, bench="bench-1", supervised=False)
    assert again.claimed == 0 and again.resumed == 1 and again.done == 1
    assert _runs(tmp_path / "bench-1") == [started]
    [finished] = entries(lab_url)
    assert finished["id"] == entry and finished["status"] == "done"
    assert finished["run_id"] == started
    store = RunStore(tmp_path / "bench-1", create=False)
    try:
        assert store.run(started)["status"] == "completed"
        assert sum(step["attempts"] > 1 for step in store.steps(started)) <= 1  # step 8 only
    finally:
        store.close()
