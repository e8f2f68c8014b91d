"""How fast a whole experiment runs over real links and still gives the in-process result.

    python benchmarks/served_speed.py [--speeds 200,500,1000,2000,5000,10000] [--serial pty,tcp]

The README's main job (the full contrast curve: 2 wafers, 32 fields) runs
once on the in-process virtual bench, then as ``labctl run --station`` in its
own process against ``labctl sim serve --speed N`` in another, over ptys and
over TCP, at each speed. A speed "gives the in-process result" when the
served run's Dg and D100 lie inside the in-process run's 95 % intervals and
the in-process figures inside the served run's. Prints one line per run (wall time of
the ``labctl run`` process, bench time, the speed actually achieved, Dg and
D100 with intervals) and, per link, the highest speed up to which every
speed tried held - the table in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.analysis import contrast_from_store
from labctl.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
FORMULATION = ROOT / "examples" / "formulations" / "in_claims.toml"


def _labctl(*arguments: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "labctl.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "COLUMNS": "200"},
    )
    return result, time.perf_counter() - started


def _figures(data: Path) -> dict[str, Any]:
    store = RunStore(data, create=False)
    try:
        (record,) = store.runs()
        run_id = str(record["run_id"])
        steps = store.steps(run_id)
        result = contrast_from_store(store, run_id)
    finally:
        store.close()
    bench_seconds = max(float(s["bench_finished"] or 0.0) for s in steps)
    return {
        "status": record["status"],
        "dg": result.dg,
        "d100": result.d100,
        "bench": bench_seconds,
    }


def _estimate(estimate: Any) -> str:
    if not estimate.determined:
        return f"{estimate.kind}"
    return (
        f"{estimate.value.magnitude:.1f} ({estimate.low.magnitude:.1f}-"
        f"{estimate.high.magnitude:.1f})"
    )


def _serve(directory: Path, speed: float, serial: str, seed: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "labctl.cli", "sim", "serve", "--dir", str(directory)]
    command += ["--speed", str(speed), "--serial", serial, "--seed", str(seed)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (directory / "station.toml").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("sim serve did not start")
        time.sleep(0.05)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", default="200,500,1000,2000,5000,10000")
    parser.add_argument("--serial", default="pty,tcp")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    speeds = [float(s) for s in args.speeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="labctl-served-speed-") as scratch:
        root = Path(scratch)
        common = ["--formulation", str(FORMULATION)]
        result, wall = _labctl(
            "run", "contrast-curve", "--sim", "--seed", str(args.seed), *common,
            "--data", str(root / "in-process"),
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(result.stderr)
        reference = _figures(root / "in-process")
        print(
            f"in-process: wall {wall:.2f} s, bench {reference['bench']:.0f} s, "
            f"Dg {_estimate(reference['dg'])}, D100 {_estimate(reference['d100'])} mJ/cm2"
        )
        print("| link | speed | wall s | bench s | achieved | Dg mJ/cm2 | D100 mJ/cm2 | same |")
        print("|---|---|---|---|---|---|---|---|")
        best: dict[str, float] = {}
        for serial in args.serial.split(","):
            held = True  # every speed so far gave the in-process result
            for speed in speeds:
                where = root / f"{serial}-{speed:g}"
                server = _serve(where / "served", speed, serial, args.seed)
                try:
                    result, wall = _labctl(
                        "run", "contrast-curve", "--unattended",
                        "--station", str(where / "served" / "station.toml"),
                        *common, "--data", str(where / "data"),
                    )  # fmt: skip
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                if result.returncode != 0:
                    print(f"| {serial} | {speed:g} | {wall:.2f} | - | - | failed | - | no |")
                    held = False
                    continue
                served = _figures(where / "data")
                same = all(
                    served[figure].determined
                    and reference[figure].covers(served[figure].value)
                    and served[figure].covers(reference[figure].value)
                    for figure in ("dg", "d100")
                )
                held = held and same
                if held:
                    best[serial] = speed
                print(
                    f"| {serial} | {speed:g} | {wall:.2f} | {served['bench']:.0f} | "
                    f"{served['bench'] / wall:.0f}x | {_estimate(served['dg'])} | "
                    f"{_estimate(served['d100'])} | {'yes' if same else 'no'} |"
                )
        for serial, speed in best.items():
            print(f"over {serial}, every speed up to {speed:g}x gives the in-process result")


if __name__ == "__main__":
    main()
