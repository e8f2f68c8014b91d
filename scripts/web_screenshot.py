"""Take docs/web-screenshot.png: the live page during a run of a queue on a served bench.

    python scripts/web_screenshot.py [--out docs/web-screenshot.png] [--speed 20]

A served virtual bench (``labctl sim serve``) runs a queue of two contrast
curves - in the second, a reading of the hotplate goes missing, so it has a
retry to show; ``labctl web``
serves the data directory and Debian's Chromium (``/usr/bin/chromium``, or
``$LABCTL_CHROMIUM``) takes the page, full
length, during the second run's post-exposure bake - the first run
finished, with its figures in the list.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FORMULATION = ROOT / "examples" / "formulations" / "in_claims.toml"
SHORT = ("coat_time=20 s", "soft_bake_time=30 s", "peb_time=60 s", "fine_fields=0")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def labctl(*arguments: str, **kw: Any) -> Any:
    return subprocess.Popen([sys.executable, "-m", "labctl.cli", *arguments], **kw)


def _ask(station: Path, command: str) -> None:
    """One command to the served bench's handler (as ``tests/served.py`` does)."""
    import socket

    from sim_instruments.serve import handler_of

    address, token = handler_of(station)
    with socket.create_connection(address, timeout=10) as connection:
        stream = connection.makefile("rwb")
        stream.write(f"AUTH {token}\n{command}\n".encode("ascii"))
        stream.flush()
        assert stream.readline() == b"OK\n"
        reply = stream.readline().decode("ascii").strip()
    assert reply.startswith("OK"), reply


def _wait(page: Any, expression: str) -> None:
    """Wait (3 min at most) for the page to show something; say what it showed if it never did."""
    try:
        page.wait_for_function(expression, timeout=180_000)
    except Exception as exc:
        shown = {
            key: page.inner_text(key) for key in ("#run-status", "#step-name", "#queue", "#runs")
        }
        raise SystemExit(f"the page never showed it ({exc}): {shown}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web-screenshot.png")
    parser.add_argument("--speed", type=float, default=20.0)
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    browser_path = os.environ.get("LABCTL_CHROMIUM") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="labctl-shot-") as scratch:
        root = Path(scratch)
        data = root / "data"
        station = root / "served" / "station.toml"
        bench = labctl(
            "sim", "serve", "--dir", str(root / "served"), "--speed", str(options.speed),
            "--serial", "tcp", "--seed", "3",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes = [bench]
        try:
            while not station.exists():
                time.sleep(0.05)
            for fields in ("6", "8"):
                overrides = [x for v in (*SHORT, f"fields={fields}") for x in ("--set", v)]
                added = labctl(
                    "queue", "add", "contrast-curve", "--station", str(station),
                    "--formulation", str(FORMULATION), "--data", str(data), *overrides,
                    stdout=subprocess.DEVNULL,
                )  # fmt: skip
                assert added.wait() == 0
            processes.append(labctl("queue", "run", "--data", str(data), stdout=subprocess.DEVNULL))
            web = labctl(
                "web", "--data", str(data), "--port", "0",
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            processes.append(web)
            match = re.search(r"http://\S+:(\d+)/", web.stderr.readline())
            assert match
            url = f"http://127.0.0.1:{match.group(1)}/"
            time.sleep(1.0)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=browser_path, args=FLAGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                page.goto(url)
                # The second run's soft bake: a plate reading goes missing (a retry).
                _wait(
                    page,
                    "() => document.querySelectorAll('#runs tbody tr[data-run]').length >= 1"
                    " && document.getElementById('run-status').dataset.status === 'running'"
                    " && /soft bake/.test(document.getElementById('step-name').textContent)",
                )
                _ask(station, "FAULT hotplate no_reply count=1")
                # Its post-exposure bake, some way in.
                _wait(
                    page,
                    "() => /post-exposure bake/"
                    ".test(document.getElementById('step-name').textContent)"
                    " && Number(document.getElementById('trace-plate_temperature').dataset.points)"
                    " >= 25",
                )
                page.screenshot(path=str(options.out), full_page=True)
                browser.close()
            print(f"wrote {options.out}")
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
