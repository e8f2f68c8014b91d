"""A simulated lab night against one PostgreSQL, and the shipper's throughput.

Part 1 - the night: 8 benches (separate `labctl queue run --lab` processes,
each on its own in-process virtual bench and data directory, shipping
continuously through $LABCTL_DATABASE_URL) work through a lab-wide queue of
fast contrast curves. The server is stopped (as a crash: pg_ctl -m
immediate) and started again twice during the night. Afterwards, every
bench's store is compared row by row, every column, with what the lab holds
for it: rows lost, rows duplicated; and every queue entry must have run
exactly once. Lag: from a run's end on its bench (ended_at) to the moment its
final record was first seen in the lab (polled every 0.2 s).

Part 2 - throughput: a store of 1,000,000 samples (20 runs) shipped to an
empty lab store by one Shipper (binary COPY), samples per second.

    .venv/bin/python benchmarks/lab_night.py [--benches 8] [--entries 24] [--samples 1000000]

Needs the test extra (pgserver). Prints one table; docs/performance.md keeps it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labctl.store import RunStore  # noqa: E402
from tests.lab import LabServer, lost_and_duplicated  # noqa: E402
from tests.protocols.conftest import BASELINE, FAST  # noqa: E402


def night(root: Path, server: LabServer, benches: int, entries: int) -> dict[str, object]:
    from protocols.lab_queue import add
    from protocols.lab_queue import entries as lab_entries
    from protocols.runner import RunRequest

    url = server.new_database()
    for _ in range(entries):
        add(
            RunRequest(
                protocol="contrast-curve",
                data_dir=root / "adder",
                formulation=BASELINE,
                sim=True,
                overrides=FAST,
            ),
            url,
        )
    seen: dict[tuple[str, str], float] = {}
    polling = threading.Event()

    def watch() -> None:
        import psycopg

        while not polling.is_set():
            try:
                with psycopg.connect(url, connect_timeout=2) as connection:
                    while not polling.is_set():
                        for bench, run in connection.execute(
                            "SELECT bench_id, run_id FROM runs WHERE status NOT IN"
                            " ('created', 'running')"
                        ):
                            seen.setdefault((bench, run), time.time())
                        time.sleep(0.2)
            except Exception:
                time.sleep(0.2)  # the server is down: look again

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    environment = {**os.environ, "LABCTL_DATABASE_URL": url}
    started = time.time()
    runners = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "labctl.cli", "queue", "run", "--lab", url),
                *("--bench", f"bench-{n}", "--lease", "10", "--data", str(root / f"bench-{n}")),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(1, benches + 1)
    ]
    outages = []
    for at in (0.25, 0.6):  # of the expected night, twice
        while (time.time() - started) < at * entries * 2.4 and any(
            r.poll() is None for r in runners
        ):
            time.sleep(0.2)
        down = time.time()
        server.stop("immediate")
        time.sleep(5.0)
        server.start()
        outages.append((down - started, time.time() - down))
    for runner in runners:
        runner.wait(timeout=1800)
    ended = time.time() - started
    time.sleep(1.0)
    polling.set()
    watcher.join(timeout=5)
    failed = [r.stderr.read()[-300:] for r in runners if r.returncode != 0 and r.stderr]
    queue = lab_entries(url)
    lost = duplicated = local_rows = 0
    lags = []
    runs_here = []
    for n in range(1, benches + 1):
        data = root / f"bench-{n}"
        if not (data / "labctl.sqlite").exists():
            continue
        losses = lost_and_duplicated(data, url, f"bench-{n}")
        lost += sum(a for a, _ in losses.values())
        duplicated += sum(b for _, b in losses.values())
        store = RunStore(data, create=False)
        try:
            for run in store.runs():
                runs_here.append(run["run_id"])
                done_at = datetime.fromisoformat(run["ended_at"]).timestamp()
                if (f"bench-{n}", run["run_id"]) in seen:
                    lags.append(seen[(f"bench-{n}", run["run_id"])] - done_at)
            local_rows += sum(
                store._query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
                for t in ("runs", "steps", "wafers", "moves", "measurements", "events", "samples")
            )
        finally:
            store.close()
    entry_runs = [entry["run_id"] for entry in queue]
    return {
        "benches": benches,
        "entries": entries,
        "night_s": ended,
        "outages": outages,
        "entries_done": sum(entry["status"] == "done" for entry in queue),
        "runs_on_benches": len(runs_here),
        "each_entry_once": sorted(entry_runs) == sorted(runs_here)
        and len(set(runs_here)) == len(runs_here),
        "rows_on_benches": local_rows,
        "rows_per_s": local_rows / ended,
        "lost": lost,
        "duplicated": duplicated,
        "lag_median_s": statistics.median(lags) if lags else float("nan"),
        "lag_max_s": max(lags) if lags else float("nan"),
        "lag_counted": len(lags),
        "runner_failures": failed,
    }


def throughput(root: Path, server: LabServer, samples: int) -> dict[str, float]:
    from labctl.shipper import Shipper
    from labctl.store import now_text

    store = RunStore(root / "big")
    runs, per_step = 20, samples // 200
    stamp = now_text()
    for r in range(runs):
        run_id = f"run-{r:02d}"
        store.create_run(
            {
                "run_id": run_id, "protocol": "contrast-curve", "parameters": {},
                "software": {}, "operator": "bench", "attended": False, "simulated": True,
            }
        )  # fmt: skip
        for seq in range(10):
            store.add_samples(
                run_id,
                seq,
                [
                    ("plate_temperature", i * 0.1, 100 + i * 1e-3, "degC", i * 0.1, stamp)
                    for i in range(per_step)
                ],
            )
    store.close()
    url = server.new_database()
    Shipper(root / "big", url, bench="warm-up").close()  # makes the schema, outside the timing
    from labctl import labdb

    connection = labdb.connect(url)
    labdb.ensure_schema(connection, url)
    connection.close()
    shipper = Shipper(root / "big", url)
    begun = time.perf_counter()
    report = shipper.ship()
    seconds = time.perf_counter() - begun
    shipper.close()
    return {"samples": report.rows.get("samples", 0), "seconds": seconds,
            "samples_per_s": report.rows.get("samples", 0) / seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benches", type=int, default=8)
    parser.add_argument("--entries", type=int, default=24)
    parser.add_argument("--samples", type=int, default=1_000_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-night-") as temporary:
        root = Path(temporary)
        os.chmod(root, 0o755)  # the server runs as its own user (pgserver, as root)
        server = LabServer(root / "server")
        try:
            fast = throughput(root, server, arguments.samples)
            print(
                f"shipping throughput: {fast['samples']:,.0f} samples in {fast['seconds']:.2f} s"
                f" = {fast['samples_per_s']:,.0f} samples/s (binary COPY, one shipper)"
            )
            result = night(root, server, arguments.benches, arguments.entries)
        finally:
            server.close()
    for key, value in result.items():
        print(f"{key:18s} {value}")


if __name__ == "__main__":
    main()
