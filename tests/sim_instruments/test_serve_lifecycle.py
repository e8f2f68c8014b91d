"""`labctl sim serve` as a process: it says how it stopped and leaves no links or station file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _serve(directory: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "sim", "serve", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    station = directory / "station.toml"
    for _ in range(300):  # the server is up when its station file is written
        if station.exists() or process.poll() is not None:
            break
        time.sleep(0.05)
    assert station.exists(), process.communicate(timeout=10)
    return process


@pytest.mark.parametrize(
    ("signum", "said"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_a_stopped_server_says_so_and_removes_its_links_and_station_file(
    tmp_path: Path, signum: int, said: str
) -> None:
    directory = tmp_path / "served"
    process = _serve(directory)
    links = [p for p in directory.iterdir() if p.is_symlink()]
    assert len(links) == 4  # the serial instruments, each on a pty
    assert all(os.path.exists(os.readlink(p)) for p in links)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("stopped")]
    assert f"stopped ({said})" in line and "removed 5 file(s)" in line
    assert list(directory.iterdir()) == []  # no dangling link, no stale token


def test_check_on_a_stopped_server_is_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "served"
    process = _serve(directory)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    result = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "check", "--station", str(directory / "station.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
