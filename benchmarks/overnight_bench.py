"""A simulated 12-hour night of bench actions: wall time against bench time.

Runs, on an in-process virtual bench and through the real drivers, wafer
after wafer of coat -> soft bake -> calibrate -> a 12-field dose matrix ->
PEB -> develop -> 12-point measurement, until 12 hours of bench time have
passed, and prints the ratio. Goal (issue 7): a night in <= 20 s of wall time.

    python benchmarks/overnight_bench.py [--hours 12] [--data DIR]

With --data the bench persists every change (what a resumable night costs).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    logging.getLogger("labctl.transport").setLevel(logging.ERROR)

    from drivers.exposure import ExposureTool
    from labctl.units import Q_
    from sim_instruments.bench import VirtualBench

    bench = VirtualBench(seed=1, data_dir=args.data)
    station = bench.station()
    station.connect()
    spinner, plate, ellipsometer = (
        station["spin_coater"],
        station["hotplate"],
        station["ellipsometer"],
    )
    tool = ExposureTool.from_station(station)
    positions = [(-33.0 + 6.0 * i, 0.0) for i in range(12)]
    doses = [10.0 * 1.26**i for i in range(12)]
    start = time.perf_counter()
    wafers = 0
    while bench.now() < args.hours * 3600:
        wafer = f"W{wafers:04d}"
        bench.new_wafer(wafer)
        bench.load(wafer, "spin_coater")
        bench.dispense_resist()
        spinner.spin(Q_(500, "rpm"))
        spinner.wait(Q_(3, "s"))
        spinner.spin(Q_(3000, "rpm"))
        for _ in range(30):  # log the speed once a second, as a protocol does
            spinner.wait(Q_(1, "s"))
            _ = spinner.speed
        spinner.stop()
        bench.unload("spin_coater")
        for temperature, place in ((100, "soft bake"), (110, "PEB")):
            if place == "PEB":
                tool.calibrate()
                bench.load(wafer, "exposure_stage")
                for dose, (x, y) in zip(doses, positions, strict=True):
                    tool.expose(Q_(dose, "mJ/cm**2"), Q_(x, "mm"), Q_(y, "mm"))
                tool.safe_state()
                bench.unload("exposure_stage")
            plate.heat_to(Q_(temperature, "degC"))
            plate.wait(Q_(30, "s"))
            bench.load(wafer, "hotplate")
            for _ in range(60):
                plate.wait(Q_(1, "s"))
                _ = plate.plate_temperature
            bench.unload("hotplate")
        bench.load(wafer, "spin_coater")
        bench.dispense_developer()
        spinner.wait(Q_(60, "s"))
        bench.rinse()
        spinner.spin(Q_(3000, "rpm"))
        spinner.wait(Q_(15, "s"))
        spinner.stop()
        bench.spin_dry()
        bench.unload("spin_coater")
        bench.load(wafer, "ellipsometer")
        for index, (x, y) in enumerate(positions):
            ellipsometer.move_to(Q_(x, "mm"), Q_(y, "mm"))
            ellipsometer.run_recipe("Resist on Si", f"{wafer}_{index}")
        bench.unload("ellipsometer")
        wafers += 1
    wall = time.perf_counter() - start
    bench_hours = bench.now() / 3600
    commands = sum(device.commands_executed for device in bench.devices.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"bench time        {bench_hours:.2f} h ({wafers} wafers, {commands} instrument commands)"
    )
    print(f"wall time         {wall:.2f} s")
    print(f"speed-up          {bench_hours * 3600 / wall:,.0f}x")
    print(f"peak RSS          {peak_mb:.0f} MB")
    print(f"persistence       {'on: ' + str(args.data) if args.data else 'off'}")
    goal = wall <= 20.0 * args.hours / 12.0
    print(f"goal <= 20 s per 12 h: {'met' if goal else 'MISSED'}")
    bench.close()


if __name__ == "__main__":
    main()
