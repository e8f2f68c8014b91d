"""The fault campaign: overnight queues on the virtual bench with one fault class each.

For every fault class a fresh data directory gets a queue of contrast-curve
runs; the fault strikes at a seeded random moment; the queue runs (and, for
a killed process, is restarted). Then the campaign counts, from the store and
from the simulators' own records:

* measurements lost - finished measurement steps whose rows are missing;
* physical steps repeated - a wafer dispensed, exposed at one field, baked or
  developed more often than its protocol asks;
* safe state reached vs needed - the bench safe at the end of every run that
  did not complete, read from the simulators;
* failures recorded with a reason - every run not completed has a status and
  a reason, every quarantined wafer a reason.

Target: 0, 0, all, all. ``labctl sim campaign`` runs it; ``--runs`` makes the
nights longer.

A simulation tool, it stands beside labctl as a user does: it fills and runs
each queue through the ``labctl`` command - ``queue add`` and ``queue run``,
in this process (:func:`labctl.cli.main`, with the run unsupervised, so a
failing disk can be injected into its store) or, for a killed run process,
in a supervised ``labctl queue run`` of its own. The bench's safe state after
each entry is read by a ``--notify`` probe that asks this process to look
(:class:`_SafetyProbe`). It imports nothing from ``protocols`` or ``drivers``; labctl
finds those by name.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import os
import random
import secrets
import shlex
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FAULT_CLASSES", "ClassResult", "format_table", "run_campaign"]

#: Each class: (bench role or None, bench fault kind or special), how it is injected.
FAULT_CLASSES: dict[str, tuple[str | None, str]] = {
    "no reply": ("hotplate", "no_reply"),
    "late reply": ("spin_coater", "late_reply"),
    "garbled reply": ("exposure_stage", "garbled_reply"),
    "lost link": ("exposure_shutter", "link_lost"),
    "instrument error": ("ellipsometer", "instrument_error"),
    "heater runaway": ("hotplate", "heater_runaway"),
    "lamp failure": ("exposure_source", "lamp_failure"),
    "spinner stall": ("spin_coater", "spinner_stall"),
    "process killed": (None, "kill"),
    "data disk write fails": (None, "disk"),
}
#: Fast contrast-curve parameters for campaign runs.
RUN_OVERRIDES = (
    "fields=6",
    "dose_min=10 mJ/cm**2",
    "dose_max=120 mJ/cm**2",
    "coat_time=20 s",
    "soft_bake_time=30 s",
    "peb_time=60 s",
)
STEPS_PER_RUN = 29
#: Bench seconds one fast run takes (for placing faults in time).
SECONDS_PER_RUN = 520.0
#: The probe's address and secret, in the environment of the queue's --notify command.
PROBE_PORT_ENV = "LABCTL_CAMPAIGN_PROBE_PORT"
PROBE_SECRET_ENV = "LABCTL_CAMPAIGN_PROBE_SECRET"


@dataclass
class ClassResult:
    fault: str
    runs: int
    completed: int
    measurements_lost: int
    steps_repeated: int
    safe_needed: int
    safe_reached: int
    failures: int
    failures_with_reason: int

    def ok(self) -> bool:
        return (
            self.measurements_lost == 0
            and self.steps_repeated == 0
            and self.safe_reached == self.safe_needed
            and self.failures_with_reason == self.failures
        )


@contextlib.contextmanager
def _unsupervised() -> Iterator[None]:
    """``labctl`` commands in this process run their work here, not in a supervised child."""
    before = os.environ.get("LABCTL_SUPERVISED")
    os.environ["LABCTL_SUPERVISED"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LABCTL_SUPERVISED", None)
        else:
            os.environ["LABCTL_SUPERVISED"] = before


def _labctl(*arguments: str) -> tuple[int, str]:
    """``labctl ARGUMENTS`` in this process, unsupervised: (exit code, what it printed)."""
    from labctl.cli import main

    printed = io.StringIO()
    code = 0
    with _unsupervised(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            main(list(arguments))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, printed.getvalue()


def _queue(data: Path, formulation: Path, runs: int) -> None:
    sets = [item for value in RUN_OVERRIDES for item in ("--set", value)]
    for _ in range(runs):
        code, said = _labctl(
            "queue", "add", "contrast-curve", "--sim", "--formulation", str(formulation),
            "--data", str(data), *sets,
        )  # fmt: skip
        if code != 0:
            raise RuntimeError(f"labctl queue add failed ({code}): {said.strip()}")


class _SafetyProbe:
    """After every queue entry that did not complete: was the bench left safe?

    The queue runs ``--notify`` after each entry and waits for it; the
    command this probe gives is a few lines of Python that send the entry's
    status to this process (a loopback socket, a secret from the
    environment) and wait for the answer - the bench is read here, by
    :func:`_bench_is_safe`, at that very moment, before the next entry starts.
    """

    _CLIENT = "\n".join(
        [
            "import os, socket",
            f"port, secret = os.environ['{PROBE_PORT_ENV}'], os.environ['{PROBE_SECRET_ENV}']",
            "c = socket.create_connection(('127.0.0.1', int(port)), timeout=120)",
            "c.sendall((secret + ' ' + os.environ['LABCTL_STATUS'] + '\\n').encode())",
            "c.recv(1)",
        ]
    )

    def __init__(self, data: Path) -> None:
        self.data = data
        self.needed = 0
        self.reached = 0
        self.secret = secrets.token_hex(16)
        self._closing = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.environment = {
            PROBE_PORT_ENV: str(self._server.getsockname()[1]),
            PROBE_SECRET_ENV: self.secret,
        }
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def command(self) -> str:
        """The ``--notify`` command (it needs :attr:`environment` in its environment)."""
        return shlex.join([sys.executable, "-c", self._CLIENT])

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            if self._closing:
                connection.close()
                return
            with connection:
                connection.settimeout(120)
                try:
                    secret, _, status = connection.makefile("r").readline().strip().partition(" ")
                    if hmac.compare_digest(secret, self.secret) and status != "completed":
                        self.needed += 1
                        self.reached += _bench_is_safe(self.data)
                    connection.sendall(b"k")
                except OSError:
                    continue

    @contextlib.contextmanager
    def exported(self) -> Iterator[None]:
        """:attr:`environment` in this process's environment (an in-process queue's notify)."""
        before = {key: os.environ.get(key) for key in self.environment}
        os.environ.update(self.environment)
        try:
            yield
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def close(self) -> None:
        self._closing = True
        # A thread blocked in accept() does not see its socket closed: wake it.
        with contextlib.suppress(OSError):
            socket.create_connection(self._server.getsockname(), timeout=5).close()
        self._thread.join(timeout=5)
        self._server.close()


def _run_queue(data: Path, probe: _SafetyProbe) -> int:
    """``labctl queue run`` in this process, the probe after every entry. Its exit code."""
    with probe.exported():
        code, _ = _labctl("queue", "run", "--data", str(data), "--notify", probe.command())
    return code


def _run_queue_process(data: Path, environment: dict[str, str], probe: _SafetyProbe) -> int:
    """``labctl queue run`` as a user starts it: a supervisor and a child per entry."""
    command = [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(data)]
    result = subprocess.run(
        [*command, "--notify", probe.command()],
        capture_output=True,
        text=True,
        timeout=600,
        env={**environment, **probe.environment},
    )
    return result.returncode


def _failing_disk(after_commits: int) -> Any:
    """Make the run store's writes fail after ``after_commits`` commits (a full disk)."""
    from labctl import store as store_module

    original = store_module.RunStore._transaction
    state = {"commits": 0}

    def transaction(self: Any) -> Any:
        state["commits"] += 1
        if state["commits"] > after_commits:
            raise store_module.StoreError(f"{self.path}: write failed: disk I/O error (injected)")
        return original(self)

    store_module.RunStore._transaction = transaction  # type: ignore[method-assign]
    return lambda: setattr(store_module.RunStore, "_transaction", original)


def _bench_is_safe(data: Path) -> bool:
    """The simulators' own view: motor off, source off, shutter closed, plate idle."""
    from .bench import VirtualBench

    # Read, not closed: closing saves, and a look must not write the bench's state.
    report = VirtualBench(data_dir=data).safe_state_report()
    return bool(
        not report["spin_coater"]["motor_on"]
        and not report["exposure_source"]["output"]
        and not report["exposure_shutter"]["open"]
        and report["hotplate"]["idle"]
    )


def _examine(data: Path, fault: str, runs: int, probe: _SafetyProbe) -> ClassResult:
    from labctl.store import RunStore

    from .bench import VirtualBench

    store = RunStore(data)
    bench = VirtualBench(data_dir=data)
    records = store.runs()
    lost = repeated = failures = with_reason = completed = 0
    for record in records:
        run_id = record["run_id"]
        steps = store.steps(run_id)
        rows = store.measurement_rows(run_id)
        for step in steps:
            if step["name"] == "measure" and step["status"] == "finished":
                expected = len(step["parameters"]["sites"])
                found = sum(1 for r in rows if r["seq"] == step["seq"])
                lost += max(0, expected - found)
        if record["status"] == "completed":
            completed += 1
        else:
            failures += 1
            with_reason += bool(record["reason"])
        for wafer_id, info in store.wafers(run_id).items():
            if info["state"] == "quarantined":
                failures += 1
                with_reason += bool(info["reason"])
            wafer = bench.wafers.get(f"{run_id}/{wafer_id}")
            if wafer is None:
                continue
            events = Counter(e[1] for e in wafer.events)
            loads = Counter(e[2] for e in wafer.events if e[1] == "load")
            fields = Counter((round(e.x, 3), round(e.y, 3)) for e in wafer.exposures)
            developer = sum(1 for e in wafer.events if e[1] == "puddle" and e[2] == "developer")
            repeated += max(0, events["dispense"] - 1) + max(0, loads["hotplate"] - 2)
            repeated += sum(count - 1 for count in fields.values() if count > 1)
            repeated += max(0, developer - 1)
    store.close()
    missing_runs = runs - len(records)
    # A crash or a failing disk ends a run with no queue entry finishing:
    # count those ends too, from the bench as the night left it.
    needed, reached = probe.needed, probe.reached
    if not needed and completed < runs:
        needed, reached = 1, int(_bench_is_safe(data))
    return ClassResult(
        fault,
        runs,
        completed,
        lost,
        repeated,
        needed,
        reached,
        failures + missing_runs,
        with_reason,
    )


def run_campaign(
    formulation: Path,
    *,
    runs: int = 3,
    seed: int = 0,
    classes: list[str] | None = None,
    workdir: Path | None = None,
) -> list[ClassResult]:
    """Run every fault class (or ``classes``); return one result per class."""
    from labctl.private import private_dir

    from .bench import VirtualBench

    logging.getLogger("labctl").setLevel(logging.CRITICAL)
    rng = random.Random(seed)
    results = []
    base = Path(tempfile.mkdtemp(prefix="labctl-campaign-")) if workdir is None else workdir
    for name in classes or list(FAULT_CLASSES):
        role, kind = FAULT_CLASSES[name]
        data = base / name.replace(" ", "_")
        private_dir(data)
        _queue(data, formulation, runs)
        probe = _SafetyProbe(data)
        moment = rng.uniform(0.1, 0.9) * SECONDS_PER_RUN  # inside the first run
        if kind == "kill":
            seq = rng.randint(1, STEPS_PER_RUN)
            phase = rng.choice(["started", "during", "finished"])
            # The run's process dies (once); its supervisor, the queue process,
            # makes the bench safe, resumes the run and goes on with the night.
            marker = data / "kill-struck"
            environment = {
                **os.environ,
                "LABCTL_INJECT_KILL": f"seq={seq},phase={phase},once={marker}",
            }
            code = _run_queue_process(data, environment, probe)
            assert marker.exists(), "the run process was not killed"
            assert code in (0, 1), f"the queue process ended with {code}"
            _run_queue(data, probe)
        elif kind == "disk":
            bench = VirtualBench(data_dir=data)
            bench.close()
            restore = _failing_disk(after_commits=rng.randint(20, 60))
            try:
                # The queue's own bookkeeping write fails too: it stops. That is
                # the failure this class injects; the bench must still be safe.
                _run_queue(data, probe)
            finally:
                restore()
            _record_disk_failure(data)
            _run_queue(data, probe)  # the disk is back: the night goes on
        else:
            bench = VirtualBench(data_dir=data, seed=seed)
            assert role is not None
            count = -1 if kind in ("heater_runaway", "lamp_failure", "spinner_stall") else 1
            bench.inject(role, kind, start=bench.now() + moment, count=count, delay=3.0)
            bench.close()
            _run_queue(data, probe)
            bench = VirtualBench(data_dir=data)
            bench.clear_faults()
            bench.close()
        try:
            results.append(_examine(data, name, runs, probe))
        finally:
            probe.close()
    return results


def _record_disk_failure(data: Path) -> None:
    """After a write failure, the next start finds the run 'running' and records it killed."""
    from labctl.store import RunStore

    store = RunStore(data)
    try:
        for entry in store.queue():
            if entry["status"] == "running":
                store.queue_update(entry["id"], pid=999_999_999)  # its process is gone
    except sqlite3.Error:
        pass
    finally:
        store.close()


def format_table(results: list[ClassResult]) -> str:
    lines = [
        f"{'fault class':24s} {'runs':>4s} {'done':>4s} {'meas. lost':>10s} "
        f"{'repeated':>8s} {'safe':>9s} {'failures w/ reason':>18s}"
    ]
    for r in results:
        lines.append(
            f"{r.fault:24s} {r.runs:4d} {r.completed:4d} {r.measurements_lost:10d} "
            f"{r.steps_repeated:8d} {r.safe_reached:4d}/{r.safe_needed:<4d} "
            f"{r.failures_with_reason:9d}/{r.failures:<8d}"
        )
    return "\n".join(lines)
