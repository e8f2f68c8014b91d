"""The ``labctl`` command as a separate process, the way a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.protocols.conftest import BASELINE, FAST


def labctl(
    *arguments: str, environment: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``labctl ARGUMENTS`` in a new interpreter; ``environment`` is added to ours."""
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(environment or {})},
    )


def fast_contrast_curve(data: Path, *, station: Path | None = None) -> list[str]:
    """Arguments of ``labctl run`` for the fast contrast curve (simulated, or on ``station``)."""
    where = ["--station", str(station), "--unattended"] if station else ["--sim"]
    overrides = [item for value in FAST for item in ("--set", value)]
    return [
        "run",
        "contrast-curve",
        *where,
        "--formulation",
        str(BASELINE),
        "--data",
        str(data),
        *overrides,
    ]
