"""Fixtures for runs on the virtual bench."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "formulations"
BASELINE = EXAMPLES / "in_claims.toml"
#: A short contrast curve: 6 fields on one wafer, short times, so each run is quick.
FAST = (
    "fields=6",
    "fine_fields=0",
    "dose_min=10 mJ/cm**2",
    "dose_max=120 mJ/cm**2",
    "coat_time=20 s",
    "soft_bake_time=30 s",
    "peb_time=60 s",
)


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
