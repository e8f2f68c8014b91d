"""Start-up: the main job's whole process, ``labctl --help``, and what ``import labctl.cli`` costs.

Prints:
* the main job - ``labctl run contrast-curve --sim --formulation
  examples/formulations/in_claims.toml --data D``, a fresh D each time - as
  whole processes: median (and each) of ``--runs`` wall times; goal <= 1.0 s;
* ``labctl --help``: median wall time; goal < 0.1 s;
* ``python -X importtime -c "import labctl.cli"``: its cumulative time and
  the heaviest imports under it;
* whether this interpreter keeps compiled bytecode (``PYTHONDONTWRITEBYTECODE``
  set, no ``__pycache__``: every start compiles labctl's 25,000 lines again,
  which an installed labctl - ``pip install .`` compiles them - never does).

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABCTL = Path(sys.executable).with_name("labctl")


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    formulation = ROOT / "examples" / "formulations" / "in_claims.toml"
    cached = not sys.flags.dont_write_bytecode or bool(os.environ.get("PYTHONPYCACHEPREFIX"))
    print(f"bytecode kept between starts: {'yes' if cached else 'no (compiled at every start)'}")

    times = []
    base = Path(tempfile.mkdtemp(prefix="labctl-startup-"))
    try:
        run = [str(LABCTL), "run", "contrast-curve", "--sim", "--formulation", str(formulation)]
        wall([*run, "--data", str(base / "warm")])  # the page cache and pint's parse cache
        for index in range(args.runs):
            times.append(wall([*run, "--data", str(base / f"d{index}")]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    shown = ", ".join(f"{t:.2f}" for t in times)
    print(f"main job, whole process: median {statistics.median(times):.2f} s ({shown})")

    helps = [wall([str(LABCTL), "--help"]) for _ in range(max(args.runs, 5))]
    print(f"labctl --help: median {statistics.median(helps):.3f} s")

    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import labctl.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    subtree: list[tuple[int, int, str]] = []  # importtime prints a module after its imports
    total = 0
    for line in result.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not found:
            continue
        cumulative, depth, name = int(found[2]), (len(found[3]) - 1) // 2, found[4]
        if depth == 0:
            if name == "labctl.cli":
                total = cumulative
                break
            subtree = []
        else:
            subtree.append((cumulative, depth, name))
    print(f"import labctl.cli: {total / 1000:.1f} ms cumulative; the heaviest of its imports:")
    for cumulative, depth, name in sorted(subtree, reverse=True)[:6]:
        print(f"  {cumulative / 1000:6.1f} ms  {'  ' * (depth - 1)}{name}")


if __name__ == "__main__":
    main()
