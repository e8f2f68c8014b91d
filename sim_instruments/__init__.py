"""Simulated instruments.

* ``*.yaml`` - pyvisa-sim definitions of every instrument of the default
  bench (table mocks with the real terminations, ranges and error replies),
  and ``bench.yaml`` holding all seven; ``sim_station.toml`` points every
  role at them.

This package imports from :mod:`labctl` only (units, clock, errors), never
from :mod:`drivers`: a simulator sharing code with the driver it stands in
for could not catch that driver's mistakes.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["DEFINITIONS", "definition_path"]

#: The pyvisa-sim definition files, by instrument.
DEFINITIONS = (
    "intras_sck300p.yaml",
    "torrey_pines_sc.yaml",
    "thorlabs_dc2200.yaml",
    "thorlabs_sc10.yaml",
    "thorlabs_pm100d.yaml",
    "newport_esp300.yaml",
    "woollam_completeease.yaml",
    "bench.yaml",
    "in_claims.toml",
)


def definition_path(name: str = "bench.yaml") -> Path:
    """Filesystem path of a packaged definition (works from an installed wheel)."""
    return Path(str(files(__name__).joinpath(name)))
