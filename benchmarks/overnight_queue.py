"""A 12-hour overnight queue through the whole stack: queue -> engine -> store -> drivers -> bench.

Queues contrast-curve runs (16 fields each, the main job's process) on the
virtual bench until 12 hours of bench time have passed, runs the queue, and
prints wall time and resident memory. Goals (issue 7): <= 20 s wall, < 20 MB
growth of resident memory over the night.

    python benchmarks/overnight_queue.py [--hours 12]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    logging.getLogger("labctl").setLevel(logging.ERROR)

    from protocols.queue import add, run_queue
    from protocols.runner import RunRequest
    from sim_instruments.bench import VirtualBench

    formulation = root / "examples" / "formulations" / "in_claims.toml"
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        # A first run tells how much bench time one contrast curve takes.
        add(RunRequest(protocol="contrast-curve", data_dir=data, formulation=formulation, sim=True))
        run_queue(data, report=lambda line: None)
        per_run = VirtualBench(data_dir=data).now()
        count = max(1, round(args.hours * 3600 / per_run))
        for _ in range(count):
            add(
                RunRequest(
                    protocol="contrast-curve", data_dir=data, formulation=formulation, sim=True
                )
            )
        memory_before = rss_mb()
        start = time.perf_counter()
        summary = run_queue(data, report=lambda line: None)
        wall = time.perf_counter() - start
        memory_after = rss_mb()
        bench_hours = (VirtualBench(data_dir=data).now() - per_run) / 3600
    print(
        f"queue             {count} contrast-curve runs, {summary.done} done, "
        f"{summary.failed} failed"
    )
    print(f"bench time        {bench_hours:.2f} h")
    print(f"wall time         {wall:.2f} s ({bench_hours * 3600 / wall:,.0f}x)")
    print(
        f"resident memory   {memory_before:.1f} MB -> {memory_after:.1f} MB "
        f"(growth {memory_after - memory_before:+.1f} MB)"
    )
    scale = args.hours / 12.0
    print(
        f"goal <= 20 s per 12 h: {'met' if wall <= 20 * scale else 'MISSED'}; "
        f"goal < 20 MB growth: {'met' if memory_after - memory_before < 20 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
