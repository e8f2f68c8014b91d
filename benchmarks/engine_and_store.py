"""Engine and run-store costs, measured in one run.

Prints:
* engine overhead per durable step (journal started + finished, both
  committed with synchronous=FULL) - goal <= 1 ms;
* run-store samples per second with every step boundary durable
  (steps of 1,000 samples each) - goal >= 200,000/s;
* ``labctl --help`` start-up (fresh interpreter) - goal <= 0.2 s.

    python benchmarks/engine_and_store.py [--steps 2000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    from labctl.clock import VirtualClock
    from labctl.engine import Run
    from labctl.store import RunStore
    from labctl.units import Q_

    with tempfile.TemporaryDirectory() as directory:
        store = RunStore(directory)
        store.create_run(
            {
                "run_id": "bench",
                "protocol": "benchmark",
                "parameters": {},
                "software": {},
                "operator": "benchmark",
                "attended": False,
                "simulated": True,
            }
        )
        run = Run(
            store=store,
            run_id="bench",
            station={},
            clock=VirtualClock(),
            handler=None,
            parameters={},
            interlocks={},
        )  # type: ignore[arg-type]
        value = Q_(1.0, "s")
        start = time.perf_counter()
        for index in range(args.steps):
            run.step("noop", lambda context: {"t": value}, wafer="W", parameters={"i": index})
        per_step = (time.perf_counter() - start) / args.steps

        samples_per_step = 1000
        steps = 50
        rows = [("spin_speed", float(i), 3000.0 + i % 7, "rpm") for i in range(samples_per_step)]
        start = time.perf_counter()
        for index in range(steps):
            seq = 100_000 + index
            store.step_started("bench", seq, "sampling", "W", False, {})
            store.step_finished("bench", seq, {}, samples=rows)
        samples_per_second = steps * samples_per_step / (time.perf_counter() - start)
        store.close()

    startups = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "labctl.cli", "--help"], capture_output=True, check=True
        )
        startups.append(time.perf_counter() - start)
    startup = statistics.median(startups)

    for label, value, goal, better in (
        ("engine overhead per durable step", per_step * 1000, 1.0, "ms, <="),
        ("run store samples per second", samples_per_second, 200_000, "/s, >="),
        ("labctl --help start-up", startup, 0.2, "s, <="),
    ):
        met = value <= goal if "<=" in better else value >= goal
        print(f"{label:36s} {value:12,.3f}   goal {better} {goal:g}   {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
