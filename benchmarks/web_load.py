"""What the live page costs a run: 20 open pages during a run on a served bench.

    python benchmarks/web_load.py [--speed 100] [--pages 20] [--rounds 3]

A served virtual bench (``labctl sim serve --speed N``, TCP links) runs the
same short contrast curve (6 fields, one wafer) as ``labctl run --station
... --unattended`` again and again, each time in a new data directory:
alone, or with ``labctl web`` serving that directory and N pages open on it
for the whole run. A "page" here is what a browser tab does: it loads the
page, its three assets and ``/api/runs``, then keeps ``/api/stream`` open
and reads every message (and asks ``/api/runs`` again when the list of runs
changes), in a thread of this process. The two kinds of run alternate
(``--rounds`` pairs, the order swapped each round) so a drift of the
machine falls on both.

Prints each run's wall time (the whole ``labctl run`` process), then the
median of each kind and the change, and the web server's CPU time per run
(``/proc/<pid>/stat``). The goal: the pages change the run's wall time by
less than 5 %.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from labctl.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
FORMULATION = ROOT / "examples" / "formulations" / "in_claims.toml"
OVERRIDES = (
    "fields=6",
    "fine_fields=0",
    "dose_min=10 mJ/cm**2",
    "dose_max=120 mJ/cm**2",
    "coat_time=20 s",
    "soft_bake_time=30 s",
    "peb_time=60 s",
)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Page(threading.Thread):
    """One open page: the page and its assets once, then its stream, read to the end."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.messages = 0
        self.runs_fetched = 0
        self.ready = threading.Event()
        self.connection: http.client.HTTPConnection | None = None
        self.failed: str | None = None

    def _get(self, path: str) -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 200, (path, answer.status)
            return body
        finally:
            connection.close()

    def run(self) -> None:
        try:
            page = self._get("/").decode()
            for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
                self._get(asset)
            self._get("/api/runs?limit=20")
            self.runs_fetched += 1
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.connection.request("GET", "/api/stream")
            answer = self.connection.getresponse()
            runs_key: Any = None
            for raw in answer:
                line = raw.decode()
                if not line.startswith("data: "):
                    continue
                self.messages += 1
                self.ready.set()
                status = json.loads(line[6:]).get("status") or {}
                if status.get("runs") != runs_key:  # as the page does
                    runs_key = status.get("runs")
                    self._get("/api/runs?limit=20")
                    self.runs_fetched += 1
        except (OSError, http.client.HTTPException, AssertionError) as exc:
            if self.connection is not None and self.connection.sock is None:
                return  # closed by close(): the end of the measurement
            self.failed = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()

    def close(self) -> None:
        connection = self.connection
        if connection is not None and connection.sock is not None:
            sock = connection.sock
            connection.sock = None
            with contextlib.suppress(OSError):
                sock.shutdown(2)
            sock.close()


def _web(data: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "web", "--data", str(data), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    match = re.search(r"http://\S+:(\d+)/", first)
    assert match, first
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
    port = int(match.group(1))
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api")
            connection.getresponse().read()
            connection.close()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _run(station: Path, data: Path) -> tuple[float, str]:
    overrides = [item for value in OVERRIDES for item in ("--set", value)]
    command = [sys.executable, "-m", "labctl.cli", "run", "contrast-curve"]
    command += ["--station", str(station), "--unattended", "--formulation", str(FORMULATION)]
    command += ["--data", str(data), *overrides]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    status = "completed" if result.returncode == 0 else f"exit {result.returncode}"
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
    return wall, status


def _with_pages(station: Path, data: Path, pages: int) -> dict[str, Any]:
    RunStore(data).close()  # the page serves a store; the run then records into it
    web, port = _web(data)
    opened = [Page(port) for _ in range(pages)]
    try:
        for page in opened:
            page.start()
        for page in opened:
            page.ready.wait(60)
        failed = [page.failed for page in opened if page.failed]
        assert not failed, failed
        before = _cpu_seconds(web.pid)
        wall, status = _run(station, data)
        cpu = _cpu_seconds(web.pid) - before
        time.sleep(1.0)  # the pages see the end
        after = _cpu_seconds(web.pid) - before - cpu
        messages = statistics.median(page.messages for page in opened)
        failed = [page.failed for page in opened if page.failed]
        assert not failed, failed
    finally:
        for page in opened:
            page.close()
        web.terminate()
        web.wait(timeout=30)
    return {
        "wall": wall,
        "status": status,
        "web_cpu": cpu,
        "web_cpu_after": after,
        "messages": messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=100.0, help="bench s per wall s")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labctl-web-load-") as scratch:
        root = Path(scratch)
        serve = [sys.executable, "-m", "labctl.cli", "sim", "serve", "--dir", str(root / "served")]
        serve += ["--speed", str(options.speed), "--serial", "tcp"]
        bench = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        station = root / "served" / "station.toml"
        try:
            deadline = time.monotonic() + 30
            while not station.exists():
                assert bench.poll() is None and time.monotonic() < deadline, "sim serve"
                time.sleep(0.05)
            _run(station, root / "warm-up")  # caches, bytecode, the bench's first wafer
            alone: list[float] = []
            watched: list[dict[str, Any]] = []
            print(f"speed {options.speed:g}x, {options.pages} pages, {options.rounds} rounds")
            for index in range(options.rounds):
                order = ("alone", "pages") if index % 2 == 0 else ("pages", "alone")
                for kind in order:
                    data = root / f"{kind}-{index}"
                    if kind == "alone":
                        wall, status = _run(station, data)
                        alone.append(wall)
                        print(f"round {index + 1} alone        {wall:7.2f} s  {status}")
                    else:
                        measured = _with_pages(station, data, options.pages)
                        watched.append(measured)
                        print(
                            f"round {index + 1} {options.pages:2d} pages     "
                            f"{measured['wall']:7.2f} s  {measured['status']}  (web server"
                            f" {measured['web_cpu']:.2f} s CPU during the run,"
                            f" {measured['web_cpu_after']:.2f} s in the second after it;"
                            f" {measured['messages']:.0f} messages to each page)"
                        )
        finally:
            bench.terminate()
            bench.wait(timeout=30)
    quiet = statistics.median(alone)
    busy = statistics.median(m["wall"] for m in watched)
    cpu = statistics.median(m["web_cpu"] for m in watched)
    change = 100.0 * (busy - quiet) / quiet
    print(f"median alone {quiet:.2f} s; with {options.pages} pages {busy:.2f} s: {change:+.1f} %")
    print(f"web server CPU during a run: {cpu:.2f} s ({100 * cpu / busy:.1f} % of one core)")
    print(f"goal: |change| < 5 %: {'met' if abs(change) < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
