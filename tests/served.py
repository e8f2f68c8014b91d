"""The served virtual bench (``labctl sim serve``) in its own process, for tests.

What its own records say (``light.jsonl``, the wafers' files, the handler's
``STATE``) is the ground truth the tests hold a run's journal to.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sim_instruments.serve import handler_of

#: Bench seconds per wall second: fast, and still the in-process physics
#: (``benchmarks/served_speed.py`` finds where that stops being true).
SPEED = 1000


class ServedBench:
    """``labctl sim serve`` in its own process, and what its records say."""

    def __init__(
        self,
        root: Path,
        serial: str = "pty",
        *,
        speed: float = SPEED,
        seed: int = 0,
        faults: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.directory = root / "served"
        self.data = root / "bench-data"
        self.serial = serial
        self.speed = speed
        self.seed = seed
        self.faults = faults
        self.station = self.directory / "station.toml"
        self.start()

    def start(self) -> None:
        """Start ``labctl sim serve`` (again: the same data, the same identity)."""
        command = [sys.executable, "-m", "labctl.cli", "sim", "serve", "--dir", str(self.directory)]
        command += ["--data", str(self.data), "--speed", str(self.speed), "--serial", self.serial]
        command += ["--seed", str(self.seed)]
        for fault in self.faults:
            command += ["--fault", fault]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while not self.station.exists():
            assert self.process.poll() is None, "sim serve exited"
            assert time.monotonic() < deadline, "sim serve did not write its station file"
            time.sleep(0.05)
        self.handler, self.token = handler_of(self.station)

    def ask(self, command: str) -> str:
        with socket.create_connection(self.handler, timeout=10) as connection:
            stream = connection.makefile("rwb")
            # Every connection authenticates first, with the station file's token.
            stream.write(f"AUTH {self.token}\n{command}\n".encode("ascii"))
            stream.flush()
            assert stream.readline() == b"OK\n"
            reply = stream.readline().decode("ascii").strip()
        assert reply.startswith("OK"), reply
        return reply[3:]

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.ask("STATE"))
        return result

    def is_safe(self) -> bool:
        state = self.state()
        report = state["instruments"]
        return bool(
            not report["spin_coater"]["motor_on"]
            and not report["exposure_source"]["output"]
            and not report["exposure_shutter"]["open"]
            and report["hotplate"]["idle"]
            and all(holder is None for holder in state["holders"].values())
        )

    def light(self) -> list[dict[str, Any]]:
        path = self.data / "bench" / "light.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def exposures(self, wafer_id: str) -> list[dict[str, Any]]:
        path = self.data / "bench" / "wafers" / f"{quote(wafer_id, safe='')}.json"
        if not path.exists():
            return []
        exposures: list[dict[str, Any]] = json.loads(path.read_text())["exposures"]
        return exposures

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def kill(self) -> None:
        """``kill -9`` the served bench: no chance to save or clean up."""
        self.process.kill()
        self.process.wait(timeout=30)
