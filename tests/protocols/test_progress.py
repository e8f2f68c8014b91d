"""Progress: log lines where stdout is not a terminal, a bar that tells the truth on one."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from labctl.engine import Run
from labctl.progress import (
    LogLines,
    ProgressBar,
    StepProgress,
    describe_step,
    display_for,
    format_bench_time,
    log_line,
)
from labctl.store import RunStore
from labctl.units import Q_
from protocols.experiments import PROTOCOLS
from protocols.runner import RunRequest, resume, start
from tests.cli import fast_contrast_curve, labctl
from tests.protocols.conftest import BASELINE, FAST

#: wall time (UTC), bench time, step n/N, the step's name and the rest.
LINE = re.compile(
    r"^(?P<wall>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) bench \+(?P<h>\d\d+):(?P<m>\d\d):(?P<s>\d\d) "
    r"step (?P<n>\d+)/(?P<total>\d+) (?P<rest>.+)$"
)
FAST_SHORT = ("coat_time=20 s", "soft_bake_time=30 s", "peb_time=60 s")


def event(seq: int, total: int | None, run_id: str = "run-a", **kw: Any) -> StepProgress:
    return StepProgress(
        run_id=run_id,
        seq=seq,
        total=total,
        name=kw.pop("name", "expose"),
        wafer=kw.pop("wafer", "W01"),
        detail=kw.pop("detail", ""),
        bench_time=kw.pop("bench_time", 10.0 * seq),
        wall_time=kw.pop("wall_time", datetime(2026, 11, 24, 17, 31, 2, tzinfo=UTC)),
        **kw,
    )


def progress_lines(stdout: str) -> list[re.Match[str]]:
    return [m for m in (LINE.match(line) for line in stdout.splitlines()) if m]


def assert_one_line_per_step(lines: list[re.Match[str]], steps: int) -> None:
    """Steps 1..steps, once each, in order; n never above N; bench time never back."""
    assert [int(m["n"]) for m in lines] == list(range(1, steps + 1))
    assert all(int(m["n"]) <= int(m["total"]) for m in lines)
    bench = [int(m["h"]) * 3600 + int(m["m"]) * 60 + int(m["s"]) for m in lines]
    assert bench == sorted(bench) and bench[-1] > 0
    assert int(lines[-1]["total"]) == steps  # the plan was right (or corrected) by the end


# -- the pieces ----------------------------------------------------------------------------


def test_a_log_line_says_wall_time_bench_time_step_and_setpoints() -> None:
    line = log_line(
        event(
            12,
            37,
            name="soft bake",
            detail=describe_step(
                "soft bake", {"duration": Q_(90, "s"), "temperature": Q_(100, "degC")}
            ),
            bench_time=190.7,
            wall_time=datetime(2026, 11, 24, 19, 31, 2, tzinfo=timezone(timedelta(hours=1))),
        )
    )
    assert line == "2026-11-24T18:31:02Z bench +00:03:10 step 12/37 soft bake W01 90 s at 100 degC"
    assert LINE.match(line)
    assert format_bench_time(3 * 3600 + 7) == "+03:00:07"
    assert format_bench_time(123 * 3600) == "+123:00:00"


def test_step_details_use_the_export_spelling_of_units() -> None:
    assert describe_step("expose", {"field": "F03", "dose": Q_(25.06, "mJ/cm**2")}) == (
        "F03 25.06 mJ/cm^2"
    )
    assert describe_step("coat", {"speed": Q_(3000, "rpm"), "duration": Q_(30, "s")}) == (
        "3000 rpm for 30 s"
    )
    assert describe_step("transfer", {"to": "hotplate"}) == "to hotplate"
    assert describe_step("new wafer", {}) == ""


def test_log_lines_never_show_n_above_n_and_flush_each_line() -> None:
    class Stream(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            Stream.flushes += 1

    stream = Stream()
    lines = LogLines(stream)
    lines(event(38, 37))  # a step the plan did not foresee: N follows n
    lines(event(39, None))
    assert stream.getvalue().splitlines()[0].endswith("step 38/38 expose W01")
    assert "step 39/? expose" in stream.getvalue().splitlines()[1]
    assert Stream.flushes == 2


def test_a_pipe_gets_log_lines_a_terminal_a_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(display_for(io.StringIO()), LogLines)
    assert isinstance(display_for(Terminal()), ProgressBar)


def fake_terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)


def test_the_bar_grows_with_the_plan_never_passes_its_total_and_ends_full() -> None:
    console = fake_terminal()
    bar = ProgressBar(console=console, auto_refresh=False)
    seen = []
    with bar:
        for seq in range(1, 30):
            bar(event(seq, 58))  # the coarse and the planned fine wafer
            seen.append((bar.completed, bar.total))
        for seq in range(30, 88):
            bar(event(seq, 87))  # the range moved: one wafer more
            seen.append((bar.completed, bar.total))
        for seq in range(88, 91):
            bar(event(seq, 87))  # a replacement wafer's steps, not in the plan yet
            seen.append((bar.completed, bar.total))
        bar.finish(ran_to_end=True)
    assert all(total is not None and done <= total for done, total in seen)
    assert [done for done, _ in seen] == list(range(0, 90))  # one per step, none skipped
    assert seen[28] == (28, 58) and seen[29] == (29, 87) and seen[-1] == (89, 90)
    assert (bar.completed, bar.total) == (90, 90)
    assert "90/90" in console.file.getvalue()  # type: ignore[attr-defined]


def test_a_bar_that_stopped_short_shows_what_finished_and_the_next_run_starts_again() -> None:
    console = fake_terminal()
    bar = ProgressBar(console=console, auto_refresh=False)
    with bar:
        for seq in range(1, 13):
            bar(event(seq, 37))
        bar.finish(ran_to_end=False)  # step 12 failed
        assert (bar.completed, bar.total) == (11, 37)
        bar(event(1, 20, run_id="run-b"))  # the next queue entry
        assert (bar.completed, bar.total) == (0, 20)


# -- the plan: N is right, or corrected as the protocol decides ------------------------------


def test_the_planned_steps_are_what_runs(tmp_path: Path) -> None:
    cases = [
        ("claim14", FAST_SHORT),
        ("spin-curve", ("speeds=2000 rpm,4000 rpm", *FAST_SHORT[:2])),
        ("contrast-curve", FAST),  # one wafer (fine_fields=0)
        ("contrast-curve", (*FAST, "fine_fields=4")),  # coarse, then fine
    ]
    for index, (protocol, overrides) in enumerate(cases):
        events: list[StepProgress] = []
        outcome = start(
            RunRequest(
                protocol=protocol,
                data_dir=tmp_path / str(index),
                formulation=BASELINE,
                sim=True,
                overrides=overrides,
            ),
            progress=events.append,
        )
        assert outcome.status == "completed", outcome.reason
        assert [e.seq for e in events] == list(range(1, outcome.steps_executed + 1))
        # The plan at the start was exact: every event carries the final count.
        assert {e.total for e in events} == {outcome.steps_executed}, protocol


def test_an_adaptive_contrast_curve_grows_its_total_when_it_adds_a_wafer(tmp_path: Path) -> None:
    # Every field keeps its film from 150 mJ/cm2 up: the transition is lower,
    # so wafer 2 moves the range down before the fine wafer.
    overrides = (*FAST, "dose_min=150 mJ/cm**2", "dose_max=1500 mJ/cm**2", "fine_fields=4")
    events: list[StepProgress] = []
    outcome = start(
        RunRequest(
            protocol="contrast-curve",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=overrides,
        ),
        progress=events.append,
    )
    assert outcome.status == "completed", outcome.reason
    plans = [e["message"] for e in RunStore(tmp_path).events(outcome.run_id) if e["kind"] == "plan"]
    assert any("moving the range" in m for m in plans) and any("across" in m for m in plans)
    totals = [e.total for e in events]
    assert totals[0] == 2 * (23 + 6)  # planned: the coarse wafer and the fine one
    assert totals == sorted(totals) and totals[-1] == outcome.steps_executed == 3 * (23 + 6)
    assert all(e.total is not None and e.seq <= e.total for e in events)


def test_a_resume_reports_the_replayed_steps_then_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labctl.engine as engine

    request = RunRequest(
        protocol="contrast-curve", data_dir=tmp_path, formulation=BASELINE, sim=True, overrides=FAST
    )
    monkeypatch.setattr(engine, "_INJECTION", (9, "stop"))  # a Ctrl-C in step 9
    first: list[StepProgress] = []
    stopped = start(request, progress=first.append)
    assert stopped.status == "aborted"
    monkeypatch.setattr(engine, "_INJECTION", None)
    second: list[StepProgress] = []
    resumed = resume(stopped.run_id, tmp_path, progress=second.append)
    assert resumed.status == "completed", resumed.reason
    assert [e.seq for e in second] == list(range(1, 30))
    assert {e.seq for e in second if e.replayed} == {1, 2, 3, 4, 6, 7, 8, 9}  # 5: plate set-up
    assert "(replayed from the journal)" in log_line(second[0])
    # Bench time goes on from the first process: it never goes back within the run.
    assert second[9].bench_time >= first[-1].bench_time
    assert all(e.total == 29 for e in first + second)


def test_a_replacement_wafer_adds_its_steps_to_the_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labctl.engine as engine

    request = RunRequest(
        protocol="contrast-curve", data_dir=tmp_path, formulation=BASELINE, sim=True, overrides=FAST
    )
    monkeypatch.setattr(engine, "_INJECTION", (3, "term"))  # SIGTERM during the coat of W01
    cut = start(request)
    assert cut.status == "aborted" and "W01" in cut.quarantined
    monkeypatch.setattr(engine, "_INJECTION", None)
    events: list[StepProgress] = []
    resumed = resume(cut.run_id, tmp_path, progress=events.append)
    assert resumed.status == "completed", resumed.reason
    wafers = RunStore(tmp_path).wafers(cut.run_id)
    assert wafers["W01-r1"]["replaces"] == "W01"
    # W01 took 3 steps (the third skipped on resume), then W01-r1 its 29: 32 in all.
    assert events[-1].seq == 3 + 29
    assert [e.total for e in events if e.seq < 3] == [29, 29]
    assert {e.total for e in events if e.seq > 3} == {32}
    assert all(e.total is not None and e.seq <= e.total for e in events)


def test_a_failing_display_does_not_touch_the_run(tmp_path: Path) -> None:
    def broken(event: StepProgress) -> None:
        raise BrokenPipeError("the log reader went away")

    outcome = start(
        RunRequest(
            protocol="claim14",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=FAST_SHORT,
        ),
        progress=broken,
    )
    assert outcome.status == "completed", outcome.reason


def test_expect_remaining_never_plans_below_what_was_made() -> None:
    run = Run.__new__(Run)
    run._seq, run.expected_steps = 12, 40
    run.expect_remaining(0)
    assert run.expected_steps == 12
    run.expect_remaining(-5)
    assert run.expected_steps == 12
    run.expect_remaining(29)
    assert run.expected_steps == 41
    assert PROTOCOLS["claim14"].expected_steps({}) == 32


# -- the commands, their stdout a pipe -----------------------------------------------------


def test_run_sim_into_a_pipe_prints_one_line_per_step(tmp_path: Path) -> None:
    ran = labctl(*fast_contrast_curve(tmp_path / "data"), "--set", "fine_fields=4")
    assert ran.returncode == 0, ran.stderr
    executed = int(re.search(r"steps executed (\d+)", ran.stdout)[1])  # type: ignore[index]
    assert executed == 2 * (23 + 6)
    lines = progress_lines(ran.stdout)
    assert_one_line_per_step(lines, executed)
    wall = datetime.strptime(lines[0]["wall"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - wall) < timedelta(minutes=10)  # UTC, not local time
    assert any(m["rest"] == "soft bake W01 30 s at 100 degC" for m in lines)
    assert any(m["rest"].startswith("coat W01-2 3000 rpm for 20 s") for m in lines)
    assert ran.stdout.index("step 1/") < ran.stdout.index("run ")  # the lines come first


def test_queue_run_into_a_pipe_prints_one_line_per_step_of_each_entry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for protocol, overrides in (("claim14", FAST_SHORT), ("contrast-curve", FAST)):
        sets = [item for value in overrides for item in ("--set", value)]
        added = labctl(
            "queue", "add", protocol, "--sim", "--formulation", str(BASELINE), "--data", str(data),
            *sets,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    ran = labctl("queue", "run", "--data", str(data))
    assert ran.returncode == 0, ran.stderr
    lines = progress_lines(ran.stdout)
    assert_one_line_per_step(lines[:32], 32)  # claim 14
    assert_one_line_per_step(lines[32:], 29)  # the one-wafer contrast curve
    assert len(lines) == 32 + 29
    runs = json.loads(labctl("runs", "--json", "--data", str(data)).stdout)
    assert [r["status"] for r in runs] == ["completed", "completed"]
