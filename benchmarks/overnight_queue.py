"""Overnight queues through the whole stack: queue -> engine -> store -> drivers -> bench.

Queues contrast-curve runs (16 fields each, the main job's process) on the
virtual bench until 12 hours of bench time have passed, runs the queue, and
does it again for each night asked, in one process and one data directory -
as a bench left running for days. Prints, per night, wall time and resident
memory, and the growth per run and per night after the first run.

Goals: <= 20 s wall per 12-hour night; resident memory growth < 2 MB over the
first night after its first run, and < 5 MB over three nights (issue 17).

    python benchmarks/overnight_queue.py [--hours 12] [--nights 3]
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    """Resident memory of this process (MB), after a garbage collection."""
    gc.collect()
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--nights", type=int, default=3)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    logging.getLogger("labctl").setLevel(logging.ERROR)

    from protocols.queue import add, run_queue
    from protocols.runner import RunRequest
    from sim_instruments.bench import VirtualBench

    formulation = root / "examples" / "formulations" / "in_claims.toml"

    def queue(count: int, data: Path) -> tuple[int, int]:
        for _ in range(count):
            add(
                RunRequest(
                    protocol="contrast-curve", data_dir=data, formulation=formulation, sim=True
                )
            )
        summary = run_queue(data, report=lambda line: None)
        return summary.done, summary.failed

    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        # A first run tells how much bench time one contrast curve takes.
        queue(1, data)
        per_run = VirtualBench(data_dir=data).now()
        count = max(1, round(args.hours * 3600 / per_run))
        first = rss_mb()
        print(f"after the first run: {first:.1f} MB resident; {count} runs a night")
        runs = 0
        walls = []
        for night in range(1, args.nights + 1):
            before = rss_mb()
            start = time.perf_counter()
            done, failed = queue(count, data)
            walls.append(time.perf_counter() - start)
            after = rss_mb()
            runs += count
            print(
                f"night {night}: {done} done, {failed} failed, {walls[-1]:.2f} s wall; "
                f"{before:.1f} -> {after:.1f} MB ({after - before:+.2f} MB this night, "
                f"{(after - before) / count * 1000:+.1f} kB/run)"
            )
        total = rss_mb() - first
    print(
        f"growth over {args.nights} night(s), {runs} runs: {total:+.2f} MB "
        f"({total / runs * 1000:+.1f} kB/run, {total / args.nights:+.2f} MB/night)"
    )
    scale = args.hours / 12.0
    print(
        f"goal <= 20 s per 12 h: {'met' if max(walls) <= 20 * scale else 'MISSED'}; "
        f"goal < 5 MB over three nights: {'met' if total < 5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
