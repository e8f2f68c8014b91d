"""A queue that keeps what it was given: files kept at `queue add`; cancel, remove, retry."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

from labctl.engine import decode
from labctl.formulation import load_formulation
from labctl.store import RunStore
from protocols.queue import add, cancel, retry, run_queue
from protocols.runner import RunOutcome, RunRequest
from tests.cli import labctl
from tests.protocols.conftest import BASELINE, FAST

RECIPE = """protocol = "contrast-curve"

[parameters]
coat_speed = "3000 rpm"
"""


def _sets() -> list[str]:
    return [item for value in FAST for item in ("--set", value)]


def _one_line_refusal(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, one line on stderr saying ``words``, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_an_entry_runs_the_files_it_was_given_after_they_are_edited_or_deleted(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    original = BASELINE.read_text(encoding="utf-8")
    original_hash = load_formulation(BASELINE).content_hash()
    for n in (1, 2):
        (tmp_path / f"f{n}.toml").write_text(original, encoding="utf-8")
        (tmp_path / f"r{n}.toml").write_text(RECIPE, encoding="utf-8")
        added = labctl(
            "queue",
            "add",
            "contrast-curve",
            "--sim",
            "--formulation",
            str(tmp_path / f"f{n}.toml"),
            "--recipe",
            str(tmp_path / f"r{n}.toml"),
            *_sets(),
            "--data",
            str(data),
        )
        assert added.returncode == 0, added.stderr
        assert f"queued #{n}" in added.stdout
    # #1: formulation edited (another resin amount), recipe deleted.
    edited = original.replace('amount = "10.0 g"', 'amount = "11.0 g"', 1)
    assert edited != original
    (tmp_path / "f1.toml").write_text(edited, encoding="utf-8")
    assert load_formulation(tmp_path / "f1.toml").content_hash() != original_hash
    (tmp_path / "r1.toml").unlink()
    # #2: formulation deleted, recipe edited (another coat speed).
    (tmp_path / "f2.toml").unlink()
    (tmp_path / "r2.toml").write_text(RECIPE.replace("3000 rpm", "2000 rpm"), encoding="utf-8")

    listed = labctl("queue", "list", "--data", str(data))
    assert listed.returncode == 0, listed.stderr
    first, second = listed.stdout.splitlines()
    assert "pending" in first and "formulation changed; recipe gone since added" in first
    assert "pending" in second and "formulation gone; recipe changed since added" in second
    as_json = json.loads(labctl("queue", "list", "--json", "--data", str(data)).stdout)
    files = as_json[0]["options"]["files"]
    assert {role: f["on_disk"] for role, f in files.items()} == {
        "formulation": "changed",
        "recipe": "gone",
    }
    assert "content" not in files["formulation"]  # the list shows hashes, not the secret
    assert files["formulation"]["path"] == str((tmp_path / "f1.toml").resolve())

    night = labctl("queue", "run", "--data", str(data))
    output = night.stdout + night.stderr
    assert night.returncode == 0, output
    assert "Traceback" not in output
    assert f"formulation {(tmp_path / 'f1.toml').resolve()} changed since it was added" in output
    assert f"recipe {(tmp_path / 'r1.toml').resolve()} is gone" in output
    assert f"formulation {(tmp_path / 'f2.toml').resolve()} is gone" in output
    assert f"recipe {(tmp_path / 'r2.toml').resolve()} changed since it was added" in output
    assert output.count("running the content added") == 4

    store = RunStore(data)
    try:
        entries = store.queue()
        assert [e["status"] for e in entries] == ["done", "done"]
        for entry in entries:
            run = store.run(entry["run_id"])
            # The formulation that ran is the one added, byte for byte...
            assert run["formulation_hash"] == original_hash
            kept = store.formulation(run["formulation_hash"])
            assert kept is not None and kept["content"] == original
            # ...and so is the recipe.
            assert decode(run["parameters"])["coat_speed"].m_as("rpm") == 3000
            notes = [e["message"] for e in store.events(run["run_id"]) if e["kind"] == "queue"]
            assert len(notes) == 2 and all("running the content added" in n for n in notes)
            # The supervised child printed the headline `labctl run` prints and wrote the report.
            assert f"run {run['run_id']}: completed" in night.stdout
            report = data / "reports" / f"{run['run_id']}.html"
            assert report.is_file()
            assert f"report: {report.resolve()}" in night.stdout
    finally:
        store.close()


def test_cancel_remove_retry_and_their_refusals(tmp_path: Path) -> None:
    data = str(tmp_path)
    for _ in range(3):
        request = RunRequest(
            protocol="contrast-curve", data_dir=tmp_path, formulation=BASELINE, sim=True
        )
        add(request)

    cancelled = labctl("queue", "cancel", "1", "--data", data)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "queue #1: cancelled; it will not run" in cancelled.stdout
    _one_line_refusal(labctl("queue", "cancel", "#1", "--data", data), "#1", "is cancelled")
    _one_line_refusal(labctl("queue", "cancel", "99", "--data", data), "#99", "no such")
    _one_line_refusal(labctl("queue", "cancel", "one", "--data", data), "not a queue entry")
    _one_line_refusal(labctl("queue", "retry", "2", "--data", data), "#2", "is pending")
    _one_line_refusal(labctl("queue", "remove", "7", "--data", data), "#7", "no such")

    retried = labctl("queue", "retry", "1", "--data", data)
    assert retried.returncode == 0, retried.stderr
    assert "queue #1: pending again" in retried.stdout
    removed = labctl("queue", "remove", "3", "--data", data)
    assert removed.returncode == 0 and "queue #3: removed" in removed.stdout
    _one_line_refusal(labctl("queue", "remove", "3", "--data", data), "#3", "no such")

    # A running entry (claimed by this live process): not removed, asked to stop, not retried.
    store = RunStore(tmp_path)
    try:
        assert store.queue_claim(2, "pending", None)
        _one_line_refusal(
            labctl("queue", "remove", "2", "--data", data), "is running", "queue cancel 2"
        )
        stopping = labctl("queue", "cancel", "2", "--data", data)
        assert stopping.returncode == 0, stopping.stderr
        assert "stops at its next safe point" in stopping.stdout
        _one_line_refusal(labctl("queue", "cancel", "2", "--data", data), "already asked")
        _one_line_refusal(labctl("queue", "retry", "2", "--data", data), "is cancelling")
        assert [(e["id"], e["status"]) for e in store.queue()] == [
            (1, "pending"),
            (2, "cancelling"),
        ]
    finally:
        store.close()


def test_a_cancelled_running_entry_stops_at_the_next_safe_point_and_a_retry_is_a_new_run(
    tmp_path: Path,
) -> None:
    add(
        RunRequest(
            protocol="contrast-curve",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=FAST,
        )
    )
    asked: list[str] = []

    def progress(event: object) -> None:
        if getattr(event, "seq", 0) == 5 and not asked:
            asked.append(cancel(tmp_path, 1))  # from another "process": through the store

    summary = run_queue(tmp_path, report=lambda line: None, progress=progress)
    assert (summary.done, summary.failed, summary.cancelled) == (0, 0, 1)
    assert "stops at its next safe point" in asked[0]
    store = RunStore(tmp_path)
    try:
        (entry,) = store.queue()
        assert entry["status"] == "cancelled"
        assert entry["reason"].startswith("cancelled while running: aborted")
        first = entry["run_id"]
        assert store.run(first)["status"] == "aborted"
        steps = store.steps(first)
        # Step 5 (asked during it) finished; no step after it started.
        assert [s["seq"] for s in steps] == [1, 2, 3, 4, 5]
        assert all(s["status"] == "finished" for s in steps)

        said = retry(tmp_path, 1)
        assert "pending again as attempt 2" in said and first in said
        (entry,) = store.queue()
        assert (entry["status"], entry["run_id"]) == ("pending", None)
        assert entry["options"]["attempts"][0]["run_id"] == first

        outcomes: list[RunOutcome] = []
        summary = run_queue(tmp_path, report=lambda line: None, on_outcome=outcomes.append)
        assert (summary.done, summary.failed) == (1, 0)
        (entry,) = store.queue()
        assert entry["status"] == "done" and entry["run_id"] != first
        # What the CLI prints and reports from (an unsupervised queue run).
        assert [(o.run_id, o.status) for o in outcomes] == [(entry["run_id"], "completed")]
        assert store.run(first)["status"] == "aborted"  # the first attempt stays recorded
        assert len(store.runs()) == 2
    finally:
        store.close()


def test_a_retry_resumes_a_run_whose_wafer_is_in_an_unknown_state(tmp_path: Path) -> None:
    """The queue runner is killed in the soft bake; cancelled, then retried: resumed, not rerun."""
    add(
        RunRequest(
            protocol="contrast-curve",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=FAST,
        )
    )
    killed = labctl(
        "queue",
        "run",
        "--data",
        str(tmp_path),
        # Unsupervised: the queue runner itself is the process that dies.
        environment={"LABCTL_INJECT_KILL": "seq=7,phase=during", "LABCTL_SUPERVISED": "1"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    store = RunStore(tmp_path)
    try:
        (entry,) = store.queue()
        run_id = entry["run_id"]
        assert entry["status"] == "running" and store.steps(run_id)[-1]["status"] == "started"

        stopped = labctl("queue", "cancel", "1", "--data", str(tmp_path))
        assert stopped.returncode == 0, stopped.stderr
        assert "its queue runner had died" in stopped.stdout
        again = labctl("queue", "retry", "1", "--data", str(tmp_path))
        assert again.returncode == 0, again.stderr
        assert "unknown state" in again.stdout and "resumed, not restarted" in again.stdout
        (entry,) = store.queue()
        assert (entry["status"], entry["run_id"]) == ("pending", run_id)

        lines: list[str] = []
        run_queue(tmp_path, report=lines.append)
        assert f"queue #1: resuming run {run_id}" in lines
        assert [r["run_id"] for r in store.runs()] == [run_id]  # resumed, not started again
        step = store.steps(run_id)[6]
        assert (step["seq"], step["status"]) == (7, "interrupted")
        assert step["attempts"] == 1  # the bake was not done again
        assert store.run(run_id)["status"] != "running"
    finally:
        store.close()


def test_an_entry_added_by_an_older_labctl_runs_its_files_by_path_and_says_so(
    tmp_path: Path,
) -> None:
    store = RunStore(tmp_path)
    try:
        store.queue_add(
            "contrast-curve",
            {
                "sim": True,
                "station": None,
                "formulation": str(BASELINE),
                "recipe": None,
                "overrides": list(FAST),
                "operator": "night",
                "seed": 0,
            },
        )
    finally:
        store.close()
    lines: list[str] = []
    summary = run_queue(tmp_path, report=lines.append)
    assert summary.done == 1
    assert any("kept only the files' paths" in line for line in lines)


def test_queue_add_keeps_each_file_with_its_hash_and_path_and_nothing_else_on_disk(
    tmp_path: Path,
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    add(
        RunRequest(
            protocol="contrast-curve",
            data_dir=tmp_path / "d",
            formulation=BASELINE,
            recipe=recipe,
            sim=True,
        )
    )
    assert sorted(os.listdir(tmp_path)) == ["d", "r.toml"]  # no copies left about
    store = RunStore(tmp_path / "d")
    try:
        (entry,) = store.queue()
    finally:
        store.close()
    files = entry["options"]["files"]
    assert sorted(files) == ["formulation", "recipe"]  # no station with --sim alone
    for kept, path in ((files["formulation"], BASELINE), (files["recipe"], recipe)):
        assert kept["content"].encode("utf-8") == path.read_bytes()
        assert kept["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert kept["path"] == str(path.resolve())


def test_a_station_entry_runs_and_recovers_with_the_station_file_it_kept(tmp_path: Path) -> None:
    """On a served bench: the station file is gone by night, and the run process dies in the bake.

    The supervisor makes the bench safe with the station the entry kept (the
    file on disk is gone), and the entry's run is resumed, not started again.
    """
    from tests.served import ServedBench

    served = ServedBench(tmp_path)
    try:
        station = tmp_path / "night-station.toml"
        station.write_bytes(served.station.read_bytes())
        data = tmp_path / "data"
        added = labctl(
            "queue",
            "add",
            "contrast-curve",
            "--station",
            str(station),
            "--formulation",
            str(BASELINE),
            *_sets(),
            "--data",
            str(data),
        )
        assert added.returncode == 0, added.stderr
        station.unlink()
        night = labctl(
            "queue",
            "run",
            "--data",
            str(data),
            environment={"LABCTL_INJECT_KILL": f"seq=7,phase=during,once={tmp_path / 'struck'}"},
        )
        output = night.stdout + night.stderr
        assert (tmp_path / "struck").exists()
        assert "Traceback" not in output and "no such file" not in output, output
        assert f"station {station.resolve()} is gone; running the content added" in output
        assert "died of SIGKILL" in output and "SAFE STATE INCOMPLETE" not in output, output
        assert "resuming run" in output
        store = RunStore(data)
        try:
            (entry,) = store.queue()
            (run,) = store.runs()  # resumed, not started again
            assert entry["run_id"] == run["run_id"]
            assert run["status"] in ("completed", "incomplete"), run["reason"]
            kinds = [e["kind"] for e in store.events(run["run_id"])]
            assert "supervisor" in kinds and "killed" in kinds and "queue" in kinds
        finally:
            store.close()
        assert served.is_safe()
    finally:
        served.stop()
