"""``labctl web`` in its own process, as an operator starts it, for tests and benchmarks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any


class WebProcess:
    """``labctl web --data DATA --port 0`` in a subprocess; its address read from what it prints."""

    def __init__(self, data: Path, *, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
        self.data = data
        self.host = host
        self.timeout = timeout
        self.lines: list[str] = []
        self.url = ""

    def __enter__(self) -> WebProcess:
        command = [sys.executable, "-m", "labctl.cli", "web", "--data", str(self.data)]
        command += ["--port", "0", "--host", self.host]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        banner_done = threading.Event()
        wanted = 4 if self.host not in ("127.0.0.1", "localhost", "::1") else 3

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line.rstrip("\n"))
                if len(self.lines) >= wanted:
                    banner_done.set()
            banner_done.set()

        threading.Thread(target=read, daemon=True).start()
        if not banner_done.wait(self.timeout) or len(self.lines) < wanted:
            self.process.kill()
            raise AssertionError(f"labctl web did not start: {self.lines}")
        match = re.search(r"http://\S+:(\d+)/", self.lines[0])
        assert match, self.lines
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + self.timeout
        while True:  # the banner comes just before uvicorn starts to serve
            try:
                self.get("/api")
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)
        return self

    @property
    def banner(self) -> str:
        return "\n".join(self.lines)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as answer:
            return json.loads(answer.read())

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
