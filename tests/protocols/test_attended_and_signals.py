"""An attended run with an operator at the prompts, on the served bench; SIGTERM mid-step."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from labctl.clock import ScaledClock
from labctl.errors import InputError
from labctl.store import RunStore
from protocols.handlers import OperatorHandler
from protocols.runner import RunRequest, start
from sim_instruments.bench import VirtualBench
from sim_instruments.serve import BenchServer
from tests.protocols.conftest import BASELINE


def test_an_attended_run_prompts_the_operator_for_every_transfer_and_manual_step(
    tmp_path: Path,
) -> None:
    bench = VirtualBench(seed=2, clock=ScaledClock(200.0))
    server = BenchServer(bench, tmp_path / "served")
    server.start()
    prompts: list[str] = []
    station_names = {
        "spin coater": "spin_coater",
        "hotplate": "hotplate",
        "exposure": "exposure_stage",
        "ellipsometer": "ellipsometer",
    }

    def operator(text: str) -> str:
        """The person at the bench: reads the prompt, does it on the (served) bench."""
        prompts.append(text)
        if match := re.search(r"label it (\S+)", text):
            bench.new_wafer(match.group(1))
            return ""
        if match := re.search(r"put wafer (\S+) on the (.+?)( chuck| stage)? - press", text):
            bench.load(match.group(1), station_names[match.group(2)])
        elif match := re.search(r"take the wafer off the (.+?)( chuck| stage)? into", text):
            bench.unload(station_names[match.group(1)])
        elif "dispense resist" in text:
            bench.dispense_resist()
        elif "dispense developer" in text:
            bench.dispense_developer()
        elif "rinse" in text:
            bench.rinse()
        elif "dry on" in text:
            bench.spin_dry()
        return ""

    try:
        request = RunRequest(
            protocol="claim14",
            data_dir=tmp_path / "data",
            formulation=BASELINE,
            station=server.write_station(),
            prompt=operator,
            overrides=(
                "coat_time=10 s",
                "soft_bake_time=20 s",
                "peb_time=20 s",
                "develop_time=30 s",
                "dose=100 mJ/cm**2",
            ),
        )
        import protocols.runner as runner

        original = runner.Station.from_file
        runner.Station.from_file = staticmethod(  # type: ignore[method-assign]
            lambda path, **options: original(path, clock=ScaledClock(200.0), **options)
        )
        try:
            outcome = start(request)
        finally:
            runner.Station.from_file = original  # type: ignore[method-assign]
    finally:
        server.stop()
    assert outcome.status == "completed", outcome.reason
    assert any("label it W01" in p for p in prompts)
    assert sum("dispense resist" in p for p in prompts) == 1
    assert sum("put wafer W01 on the hotplate" in p for p in prompts) == 2
    rows = RunStore(tmp_path / "data").measurement_rows(outcome.run_id)
    assert len(rows) == 20 and rows[-1]["site"] == "unexposed"  # before and after
    assert RunStore(tmp_path / "data").run(outcome.run_id)["attended"] == 1


def test_operator_handler_checks_the_wafer_id_it_is_given() -> None:
    handler = OperatorHandler(prompt=lambda text: "W02")
    try:
        handler.new_wafer("W01")
    except InputError as exc:  # the operator's mistake: one line, the run fails cleanly
        assert "W02" in str(exc) and exc.field == "wafer id"
    else:
        raise AssertionError("a wrong wafer id was accepted")


def test_sigterm_aborts_now_and_leaves_the_bench_safe(tmp_path: Path) -> None:
    environment = {**os.environ, "LABCTL_INJECT_KILL": "seq=7,phase=term"}  # mid soft bake
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "labctl.cli",
            "run",
            "contrast-curve",
            "--sim",
            "--formulation",
            str(BASELINE),
            "--data",
            str(tmp_path),
            "--set",
            "fields=4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert result.returncode == 1, result.stderr
    (record,) = RunStore(tmp_path).runs()
    assert record["status"] == "aborted" and "SIGTERM" in record["reason"]
    steps = RunStore(tmp_path).steps(record["run_id"])
    # SIGTERM goes to the process the user started, which forwards it to the
    # run's process: it lands in step 7 or, on the fast virtual bench, soon after.
    # It may land between two steps, then no step is interrupted.
    interrupted = [s["seq"] for s in steps if s["status"] == "interrupted"]
    assert len(steps) >= 7 and len(interrupted) <= 1, steps
    assert all(seq == steps[-1]["seq"] for seq in interrupted)  # aborted now: nothing after
    report = VirtualBench(data_dir=tmp_path).safe_state_report()
    assert report["hotplate"]["idle"] and not report["spin_coater"]["motor_on"]
    assert result.returncode != -signal.SIGTERM  # it handled the signal and cleaned up


def test_an_unattended_run_on_a_served_bench_uses_its_wafer_handler(tmp_path: Path) -> None:
    """Real links (ptys, TCP) and the handler protocol, no operator, no in-process bench access."""
    bench = VirtualBench(seed=4, clock=ScaledClock(200.0))
    server = BenchServer(bench, tmp_path / "served")
    server.start()
    import protocols.runner as runner

    original = runner.Station.from_file
    runner.Station.from_file = staticmethod(  # type: ignore[method-assign]
        lambda path, **options: original(path, clock=ScaledClock(200.0), **options)
    )
    try:
        station_file = server.write_station()
        assert "[handler]" in station_file.read_text(encoding="utf-8")
        outcome = start(
            RunRequest(
                protocol="claim14",
                data_dir=tmp_path / "data",
                formulation=BASELINE,
                station=station_file,
                unattended=True,
                overrides=(
                    "coat_time=10 s",
                    "soft_bake_time=20 s",
                    "peb_time=20 s",
                    "develop_time=30 s",
                    "dose=100 mJ/cm**2",
                ),
            )
        )
    finally:
        runner.Station.from_file = original  # type: ignore[method-assign]
        server.stop()
    assert outcome.status == "completed", outcome.reason
    wafer = bench.wafers[f"{outcome.run_id}/W01"]
    assert len(wafer.exposures) == 9 and wafer.location == "cassette"
