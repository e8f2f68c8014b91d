"""Hostile input, measured: each refusal's time and peak memory, as a process and in-process.

For every case of the corpus of ``tests/reliability/test_hostile_input.py``
(deep nesting, a 100,000-part dotted key, 100 MB files, other scripts' digits,
120,000-digit numbers, powers of powers, bad names, ``%``/``_``/empty run
ids), prints:

* the ``labctl`` process: exit code, wall and CPU time (s), peak resident
  memory (MB, the kernel's ``ru_maxrss`` of that process) - goals: exit 2,
  one line, under 1 s and 200 MB;
* the check itself, in-process (ms): the refusal without the interpreter's
  start-up and imports (``read_toml`` for files, ``resolve_parameters`` for
  ``--set``; the other cases are shown as a process only);
* the baseline: ``labctl --version`` (a new interpreter, click only) and
  ``labctl formulation check`` of a good file, for comparison.

    python benchmarks/hostile_input.py [--repeat 3]

The worst accepted file (1 MiB of 16-part dotted keys, the most the bounds
let through) is timed too: tomllib's cost at the bounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="processes per case (best shown)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))

    from labctl.errors import InputError
    from labctl.files import MAX_FILE_BYTES, MAX_KEY_PARTS, read_toml
    from tests.reliability.test_hostile_input import (
        BASELINE,
        Case,
        corpus_cases,
        run_case,
        write_corpus,
    )

    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        write_corpus(directory)
        cases = corpus_cases(directory)
        baselines = [
            Case("baseline: labctl --version", ("--version",), ()),
            Case("baseline: formulation check (good)", ("formulation", "check", str(BASELINE)), ()),
        ]
        print(
            f"{'case':46s} {'exit':>4s} {'lines':>5s} {'wall s':>7s} {'cpu s':>6s} "
            f"{'peak MB':>7s} {'check ms':>8s}"
        )
        worst_wall = worst_cpu = worst_peak = 0.0
        for case in [*baselines, *cases]:
            outcomes = [run_case(case) for _ in range(args.repeat)]
            wall = min(o.wall for o in outcomes)
            cpu = min(o.cpu for o in outcomes)
            peak = max(o.peak for o in outcomes) / 2**20
            first = outcomes[0]
            check = _in_process(case)
            shown = "" if check is None else f"{check * 1000:8.2f}"
            print(
                f"{case.name[:46]:46s} {first.returncode:4d} {len(first.stderr.splitlines()):5d} "
                f"{wall:7.3f} {cpu:6.3f} {peak:7.1f} {shown:>8s}"
            )
            if case not in baselines:
                worst_wall, worst_cpu = max(worst_wall, wall), max(worst_cpu, cpu)
                worst_peak = max(worst_peak, peak)
        print(
            f"worst refusal: wall {worst_wall:.3f} s, cpu {worst_cpu:.3f} s, "
            f"peak {worst_peak:.1f} MB over {len(cases)} cases"
        )
        worst = directory / "worst_accepted.toml"
        tail = ".".join(f"p{i}" for i in range(MAX_KEY_PARTS - 1))  # with k<n>: the most parts
        lines, size = [], 0
        while size < MAX_FILE_BYTES - 64:
            lines.append(f"k{len(lines)}.{tail} = 1\n")
            size += len(lines[-1])
        worst.write_text("".join(lines))
        times = []
        for _ in range(args.repeat):
            started = time.process_time()
            read_toml(worst, InputError)
            times.append(time.process_time() - started)
        print(
            f"worst accepted file ({size} bytes, {len(lines)} keys of {MAX_KEY_PARTS} parts): "
            f"read_toml {statistics.median(times):.3f} s cpu"
        )


def _in_process(case: Any) -> float | None:
    """CPU seconds of the refusal alone, for file and --set cases; None for the others."""
    from labctl.errors import InputError
    from labctl.files import read_toml
    from labctl.formulation import load_formulation
    from protocols.experiments import PROTOCOLS
    from protocols.recipes import resolve_parameters

    arguments = list(case.arguments)

    def after(option: str) -> str:
        return arguments[arguments.index(option) + 1]

    started = time.process_time()
    try:
        if arguments[0] == "run" and "--set" in arguments:
            resolve_parameters(PROTOCOLS["contrast-curve"].parameters, None, [after("--set")])
        elif arguments[0] == "run" and ("--recipe" in arguments or "--station" in arguments):
            read_toml(after("--recipe" if "--recipe" in arguments else "--station"), InputError)
        elif arguments[:2] in (["formulation", "check"], ["check", "--station"]):
            read_toml(arguments[2], InputError)
        elif arguments[0] == "run" and "examples" not in after("--formulation"):
            load_formulation(after("--formulation"))
        else:
            return None
    except InputError:
        pass
    return time.process_time() - started


if __name__ == "__main__":
    main()
