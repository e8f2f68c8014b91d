"""Testing whole runs with no hardware: a recorded session replayed as ``labctl replay`` does.

::

    from protocols.testing import assert_replays

    def test_the_night_of_the_24th_still_replays():
        outcome = assert_replays(DATA / "bench-2026-11-24.rec")
        assert outcome.status == "completed"

A whole run's replay needs the protocol, the engine and the wafer handler,
so it lives here, in the protocol layer; one level down, drivers on
transports that answer from a recording are :func:`labctl.testing.replay_transports`.
"""

from __future__ import annotations

from pathlib import Path

from .replay import ReplayOutcome, replay

__all__ = ["assert_replays"]


def assert_replays(
    path: str | Path, data_dir: str | Path | None = None, *, allow_import: bool = False
) -> ReplayOutcome:
    """Replay a recorded run as ``labctl replay`` does; ``AssertionError`` at the first difference.

    Returns the outcome (:class:`protocols.replay.ReplayOutcome`: exchanges
    matched, the replayed run's status ...); ``data_dir`` keeps the replayed
    run (default: a temporary directory).
    """
    outcome = replay(path, None if data_dir is None else Path(data_dir), allow_import=allow_import)
    if outcome.mismatch is not None:
        raise AssertionError(f"{path}: {outcome.mismatch}")
    return outcome
