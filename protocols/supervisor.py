"""A supervisor that outlives the run: the protocol runs in a child process.

A run process can die in ways no ``finally`` survives - ``kill -9``, the OOM
killer, a SIGBUS from a failing disk under SQLite's shared memory. Left
alone, the bench would then stay as the run left it (plate at 100 degC,
spinner at 3000 rpm, LED on) until somebody typed a labctl command.

So ``labctl run``, ``labctl resume`` and ``labctl queue run`` are two
processes. The parent (this module) takes the bench lock, starts the same
command as a child with :data:`SUPERVISED_ENV` set, and waits. The child
does the work exactly as an unsupervised run would: progress, prompts,
Ctrl-C (the parent ignores SIGINT; the terminal delivers it to both, and the
child's own handler decides: first one stops at the next safe point, the
second aborts now), SIGTERM (the parent forwards it). When the child dies
with its run still marked *running*, the parent at once puts the bench in
its safe state, records the death with its signal and parks the run's wafers
(journaled) - :func:`protocols.runner.recover` - and says how to resume.

The parent holds no port while the child runs; it opens the station only to
recover. On POSIX the child is a fork of the parent (:func:`os.fork`) that
runs the same command line in-process - the modules the parent imported to
check the request (pint, the engine, the store: most of a second) are not
imported again - unless the parent runs other threads (a shipper, a lab
queue's lease), which a fork would leave half-copied: then, and on Windows,
the child is a new interpreter (``python -m labctl.cli``), as before.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.benchlock import HELD_BY_ENV, BenchLock
from labctl.store import RunStore

__all__ = ["SUPERVISED_ENV", "ChildExit", "is_supervised_child", "run_child"]

#: Set in a child's environment: it is supervised (do not supervise again).
SUPERVISED_ENV = "LABCTL_SUPERVISED"


def is_supervised_child() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


@dataclass
class ChildExit:
    """How a supervised child ended."""

    returncode: int
    #: The signal that killed it, or None if it exited.
    signal: int | None
    #: Runs the parent found killed and recovered (bench safe, death recorded).
    recovered: list[str]

    @property
    def died(self) -> bool:
        return bool(self.recovered) or self.signal is not None


def _describe(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def run_child(
    arguments: Sequence[str],
    *,
    data_dir: Path,
    sim: bool,
    station_file: Path | None,
    seed: int = 0,
    unattended: bool = True,
    lock: BenchLock | None = None,
    report: Callable[[str], None] = print,
    allow_import: bool = False,
) -> ChildExit:
    """Run ``labctl <arguments>`` as a supervised child; recover the bench if it dies.

    ``lock`` is the bench lock the caller holds for the child (the child is
    told so); without one, this function takes it for the child's lifetime.
    ``allow_import``: the station file is trusted (``--allow-import``) when the
    bench is recovered from here.
    """
    own_lock = lock is None
    held = lock if lock is not None else BenchLock(data_dir)
    if own_lock:
        held.acquire()
    try:
        if _can_fork():
            pid = _fork_child(arguments)
            wait: Callable[[], int] = functools.partial(_wait_for, pid)
            send: Callable[[int], None] = functools.partial(os.kill, pid)
        else:
            environment = {**os.environ, SUPERVISED_ENV: "1", HELD_BY_ENV: str(os.getpid())}
            child = subprocess.Popen(
                [sys.executable, "-m", "labctl.cli", *arguments],
                env=environment,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            pid, wait, send = child.pid, child.wait, child.send_signal

        def forward(signum: int, frame: Any) -> None:
            send(signum)

        restore = _forward_signals(forward)
        try:
            returncode = wait()
        finally:
            restore()
        died_of = -returncode if returncode < 0 else None
        recovered = _recover_if_dead(
            pid,
            data_dir,
            sim,
            station_file,
            seed,
            unattended,
            died_of,
            report,
            allow_import=allow_import,
        )
        return ChildExit(returncode, died_of, recovered)
    finally:
        if own_lock:
            held.release()


def _can_fork() -> bool:
    """A fork is safe here: POSIX, and no other thread whose locks it would copy held."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def _fork_child(arguments: Sequence[str]) -> int:
    """Fork; the child runs ``labctl <arguments>`` in-process, supervised, and exits. Its pid.

    The child is what ``python -m labctl.cli <arguments>`` would be, with
    every module already imported: :data:`SUPERVISED_ENV` and
    :data:`HELD_BY_ENV` set, SIGTERM when this process dies, and it leaves
    with :func:`os._exit` - nothing of the parent's (its exit handlers, its
    objects' finalizers) runs twice.
    """
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would print what the parent has buffered
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.environ[SUPERVISED_ENV] = "1"
        os.environ[HELD_BY_ENV] = str(parent)
        if sys.platform == "linux":
            _die_with_parent()
            if os.getppid() != parent:  # it died before the child could ask to be told
                os._exit(1)
        sys.argv = [sys.argv[0], *arguments]
        from labctl.cli import main

        main(list(arguments))
        code = 0
    except SystemExit as exit_:
        if isinstance(exit_.code, int) or exit_.code is None:
            code = exit_.code or 0
        else:  # sys.exit("message"), as the interpreter shows it
            print(exit_.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _wait_for(pid: int) -> int:
    """Wait for the forked child; its exit code, or minus the signal that killed it."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux ``prctl``).

    A child left running by a dead supervisor would drive the bench with
    nobody holding its lock; SIGTERM makes it abort at once, bench safe.
    """
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _forward_signals(forward: Callable[[int, Any], None]) -> Callable[[], None]:
    """Parent: ignore SIGINT (the child gets the terminal's), forward SIGTERM and SIGHUP."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
    }
    if hasattr(signal, "SIGHUP"):
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, forward)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def _recover_if_dead(
    pid: int,
    data_dir: Path,
    sim: bool,
    station_file: Path | None,
    seed: int,
    unattended: bool,
    died_of: int | None,
    report: Callable[[str], None],
    *,
    allow_import: bool = False,
) -> list[str]:
    """If the child left a run *running*, make the bench safe and record the death."""
    from .runner import recover

    try:
        store = RunStore(data_dir)
    except Exception as exc:  # the store itself may be what killed the child
        report(f"labctl: the run process {pid} died and the store cannot be opened: {exc}")
        return _safe_without_store(
            data_dir, sim, station_file, seed, report, allow_import=allow_import
        )
    try:
        orphans = [r["run_id"] for r in store.interrupted_runs()]
        if died_of is None and not orphans:
            return []
        how = f"died of {_describe(died_of)}" if died_of is not None else "ended mid-run"
        for run_id in orphans:
            store.event(run_id, "supervisor", f"run process {pid} {how}")
    finally:
        store.close()
    if not orphans:
        # Dead before it recorded a run, or after it recorded the end: still
        # make sure the bench is safe.
        return _safe_without_store(
            data_dir, sim, station_file, seed, report, allow_import=allow_import
        )
    report(f"labctl: the run process (pid {pid}) {how}; putting the bench in its safe state")
    recovered = recover(
        data_dir,
        sim=sim,
        station_file=station_file,
        seed=seed,
        unattended=unattended,
        lock=False,
        allow_import=allow_import,
    )
    for run_id in recovered:
        report(
            f"labctl: run {run_id} recorded killed, bench safe; "
            f"continue it with: labctl resume {run_id} --data {data_dir}"
        )
    return recovered


def _safe_without_store(
    data_dir: Path,
    sim: bool,
    station_file: Path | None,
    seed: int,
    report: Callable[[str], None],
    *,
    allow_import: bool = False,
) -> list[str]:
    from .runner import safe_bench

    failures = safe_bench(
        data_dir, sim=sim, station_file=station_file, seed=seed, allow_import=allow_import
    )
    if failures:
        report("labctl: SAFE STATE INCOMPLETE: " + "; ".join(failures))
    return []
