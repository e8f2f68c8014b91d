"""The live page in a real browser: Debian's Chromium, driven by Playwright.

A queue runs a contrast curve on a served virtual bench at 20x real time
(``labctl sim serve --speed 20``: a 30 s bake takes 1.5 s), ``labctl web``
serves its data directory, and Chromium opens the page. Without reloading
it, the step counter and a trace move on. Stop is pressed without the token
(401) and with a wrong one (403): nothing happens and the run goes on. With
the token, the run ends at its next safe point - the step under way
finishes, no step starts after the request - and the bench is safe.

The browser is ``/usr/bin/chromium`` (``scripts/install-test-browser.sh``
installs it; ``$LABCTL_CHROMIUM`` names another); Playwright never
downloads one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.web.actions import TOKEN_FILE
from tests.cli import labctl
from tests.labctl.web_process import WebProcess
from tests.protocols.conftest import BASELINE
from tests.served import ServedBench

SPEED = 20
#: Long enough that the run is still going when stop is pressed, even on a busy
#: machine (about 35 s at 20x; it is stopped well before).
OVERRIDES = (
    "fields=16",
    "fine_fields=0",
    "coat_time=20 s",
    "soft_bake_time=30 s",
    "peb_time=60 s",
)
#: Chromium as root in a container, with nothing reaching out to the network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WAIT = 30_000  # ms: a bound on each wait, not a measurement


def chromium() -> str:
    """The browser to drive: ``$LABCTL_CHROMIUM``, else Debian's."""
    for candidate in (
        os.environ.get("LABCTL_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    message = "no Chromium: run scripts/install-test-browser.sh (Debian's chromium package)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def night(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A served bench, a queued contrast curve running on it, and ``labctl web`` on its data."""
    served = ServedBench(tmp_path, "tcp", speed=SPEED)
    data = tmp_path / "data"
    runner: subprocess.Popen[bytes] | None = None
    try:
        overrides = [item for value in OVERRIDES for item in ("--set", value)]
        added = labctl(
            "queue", "add", "contrast-curve", "--station", str(served.station),
            "--formulation", str(BASELINE), "--data", str(data), *overrides,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        log = (tmp_path / "queue.log").open("wb")
        runner = subprocess.Popen(
            [sys.executable, "-m", "labctl.cli", "queue", "run", "--data", str(data)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        with WebProcess(data) as web:
            yield {
                "served": served,
                "data": data,
                "web": web,
                "runner": runner,
                "token": (data / TOKEN_FILE).read_text().strip(),
                "log": tmp_path / "queue.log",
            }
    finally:
        if runner is not None:
            if runner.poll() is None:
                runner.terminate()
            runner.wait(timeout=60)
        served.stop()


def _press_stop(page: Any) -> int:
    """Press the page's stop button (accepting its confirmation); the answer's status."""
    with page.expect_response(lambda answer: answer.url.endswith("/stop")) as answer:
        page.click("#stop")
    status: int = answer.value.status
    return status


def _step(page: Any) -> int:
    return int(page.get_attribute("#step-counter", "data-n"))


def test_the_page_follows_a_run_live_and_stops_it_only_with_the_token(
    night: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    web, served, token = night["web"], night["served"], night["token"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(f"{web.url}/")
            page.evaluate("() => { window.__notReloaded = true; }")

            # The counter and a trace move on, pushed by the server.
            page.wait_for_function(
                "() => document.getElementById('run-status').dataset.status === 'running'"
                " && Number(document.getElementById('step-counter').dataset.n) >= 1",
                timeout=WAIT,
            )
            first = _step(page)
            page.wait_for_function(
                f"() => Number(document.getElementById('step-counter').dataset.n) > {first}",
                timeout=WAIT,
            )
            plate = "Number(document.getElementById('trace-plate_temperature').dataset.points)"
            page.wait_for_function(f"() => {plate} >= 3", timeout=WAIT)
            seen = int(page.get_attribute("#trace-plate_temperature", "data-points"))
            page.wait_for_function(f"() => {plate} > {seen}", timeout=WAIT)
            assert page.evaluate("() => window.__notReloaded") is True

            # No token, then a wrong one: refused, and the run goes on.
            run_id = page.get_attribute("#stop", "data-run")
            assert _press_stop(page) == 401
            assert page.get_attribute("#action-message", "data-status") == "401"
            page.fill("#token", token[:-4] + "abcd")
            assert _press_stop(page) == 403
            assert "wrong token" in page.inner_text("#action-message")
            going = _step(page)
            page.wait_for_function(
                f"() => Number(document.getElementById('step-counter').dataset.n) > {going}",
                timeout=WAIT,
            )
            detail = web.get(f"/api/runs/{run_id}")
            assert detail["status"] == "running"
            assert not [e for e in detail["events"] if e["kind"] == "stop_request"]

            # The token: stopped at the next safe point, the bench safe.
            page.fill("#token", token)
            page.fill("#who", "alice")
            assert _press_stop(page) == 202
            page.wait_for_function(
                "() => document.getElementById('run-status').dataset.status === 'aborted'",
                timeout=WAIT,
            )
            page.screenshot(path=str(tmp_path / "stopped.png"), full_page=True)
            assert page.evaluate("() => window.__notReloaded") is True
            assert errors == []
        finally:
            browser.close()

    assert night["runner"].wait(timeout=60) == 0, night["log"].read_text()
    detail = web.get(f"/api/runs/{run_id}")
    assert detail["status"] == "aborted"
    assert detail["reason"] == "stopped by the operator at a safe point"
    (request,) = [e for e in detail["events"] if e["kind"] == "stop_request"]
    assert "alice" in request["message"]
    # A safe point: the step under way finished, none started after the request.
    assert all(step["status"] == "finished" for step in detail["steps"])
    assert not [s for s in detail["steps"] if s["wall_started"] > request["at"]]
    assert all(w["state"] != "quarantined" for w in detail["wafers"])
    assert served.is_safe(), served.state()
    (entry,) = web.get("/api/queue")["entries"]
    assert entry["status"] == "cancelled" and entry["can_retry"]
