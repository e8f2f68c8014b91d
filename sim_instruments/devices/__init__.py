"""Simulated instruments speaking their real wire protocols over the bench's state.

Each module implements one instrument from ``shared/domain/instruments.md``
from scratch - its own framing, checksums, echo and error replies - and
imports nothing from :mod:`drivers`: a simulator that shared the driver's code
could not catch the driver's mistakes.
"""

from .base import SimDevice
from .completeease import CompleteEaseSim
from .dc2200 import DC2200Sim
from .esp301 import ESP301Sim
from .hotplate import HotplateSim
from .pm100d import PM100DSim
from .sc10 import SC10Sim
from .sck300p import SCK300PSim

__all__ = [
    "CompleteEaseSim",
    "DC2200Sim",
    "ESP301Sim",
    "HotplateSim",
    "PM100DSim",
    "SC10Sim",
    "SCK300PSim",
    "SimDevice",
]
