"""Shared fixtures: fresh pyvisa-sim definitions and real links."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Tests write only to temporary directories: pint's parsed definitions too
# (labctl.units keeps them in ~/.cache/pint unless told), for this process
# and every labctl process a test starts. Set before labctl.units is imported.
os.environ.setdefault("LABCTL_UNIT_CACHE", tempfile.mkdtemp(prefix="labctl-test-units-"))

import sim_instruments
from tests.links import PtyPeer, Respond, TcpPeer

if TYPE_CHECKING:
    from tests.lab import LabServer


@pytest.fixture
def sim_definitions(tmp_path: Path) -> Path:
    """A private copy of the pyvisa-sim definitions.

    pyvisa-sim keeps one device per resource name per resource manager for
    the life of the process; a copy under a new path is a new manager, so one
    test's state never leaks into the next.
    """
    for name in sim_instruments.DEFINITIONS:
        shutil.copy(sim_instruments.definition_path(name), tmp_path / name)
    shutil.copy(sim_instruments.definition_path("sim_station.toml"), tmp_path / "sim_station.toml")
    return tmp_path


@pytest.fixture
def pty_peer() -> Iterator[type[PtyPeer]]:
    peers: list[PtyPeer] = []

    def make(respond: Respond) -> PtyPeer:
        peer = PtyPeer(respond)
        peers.append(peer)
        return peer

    yield make  # type: ignore[misc]
    for peer in peers:
        peer.close()


@pytest.fixture
def tcp_peer() -> Iterator[type[TcpPeer]]:
    peers: list[TcpPeer] = []

    def make(respond: Respond) -> TcpPeer:
        peer = TcpPeer(respond)
        peers.append(peer)
        return peer

    yield make  # type: ignore[misc]
    for peer in peers:
        peer.close()


@pytest.fixture(scope="session")
def lab_server() -> Iterator[LabServer]:
    """One real PostgreSQL (pgserver) for the session's lab-store tests (tests/lab.py)."""
    from tests.lab import LabServer

    server = LabServer()
    yield server
    server.close()


@pytest.fixture
def lab_url(lab_server: LabServer) -> str:
    """A new, empty database of its own on the session's server: its URL (no password)."""
    return lab_server.new_database()
