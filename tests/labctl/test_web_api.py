"""``labctl web``'s API and page over a real store: what it reads, how it refuses, what it does.

The app runs in process (Starlette's test client, lifespan and poller
running) over stores made by whole runs on the virtual bench.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from labctl.errors import InputError
from labctl.store import RunStore
from labctl.web.actions import AUDIT_FILE, TOKEN_FILE, ensure_token, token_status
from labctl.web.app import STATIC, is_loopback_name
from protocols import queue as night
from tests.labctl.web_helpers import numbers_without_units, sim_request, sim_run, web_client

#: Journal steps of the FAST contrast curve: one wafer, 6 fields.
FAST_STEPS = 29


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory with one completed contrast curve (its report written)."""
    data = tmp_path_factory.mktemp("finished")
    outcome = sim_run(data)
    assert outcome.status == "completed", outcome.reason
    return data, outcome.run_id


def test_the_runs_carry_headline_figures_with_their_units(finished: tuple[Path, str]) -> None:
    data, run_id = finished
    with web_client(data) as (client, _):
        answer = client.get("/api/runs")
    assert answer.status_code == 200
    body = answer.json()
    assert numbers_without_units(body) == []
    (run,) = body["runs"]
    assert run["run_id"] == run_id and run["status"] == "completed"
    figures = run["figures"]
    assert figures["dg"]["unit"] == "mJ/cm^2" and figures["dg"]["kind"] == "estimate"
    assert 10 < figures["dg"]["value"] < 60
    assert figures["dg"]["low"] < figures["dg"]["value"] < figures["dg"]["high"]
    assert figures["gamma"]["unit"] == "1" and figures["gamma"]["value"] > 0
    assert figures["thickness"]["unit"] == "nm" and figures["thickness"]["sites"] == 6
    assert 300 < figures["thickness"]["value"] < 1000
    formulation = run["formulation"]
    assert formulation["name"] == "NR-12 in-claim baseline"
    assert set(formulation["claims"]) == {str(n) for n in range(1, 14)}
    assert run["report"] == f"/reports/{run_id}"


def test_a_run_in_detail_by_a_prefix_of_its_id(finished: tuple[Path, str]) -> None:
    data, run_id = finished
    with web_client(data) as (client, _):
        answer = client.get(f"/api/runs/{run_id[:-3]}")
        missing = client.get("/api/runs/20990101-000000-none")
        bad = client.get("/api/runs/a%25b")
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    assert numbers_without_units(detail) == []
    assert detail["run_id"] == run_id
    progress = detail["progress"]
    assert (progress["n"], progress["of"]) == (FAST_STEPS, FAST_STEPS)
    assert progress["bench_time"]["unit"] == "s" and progress["bench_time"]["value"] > 300
    assert [s["seq"] for s in detail["steps"]] == list(range(1, FAST_STEPS + 1))
    bake = next(s for s in detail["steps"] if s["name"] == "soft bake")
    assert bake["detail"] == "30 s at 100 degC"
    assert bake["bench_duration"]["unit"] == "s"
    assert bake["bench_duration"]["value"] == pytest.approx(30, abs=1)
    assert detail["parameters"]["coat_time"] == {"value": 20, "unit": "s"}
    assert len(detail["measurements"]) == 12
    assert detail["measurements"][0]["thickness"]["unit"] == "nm"
    safe = [e for e in detail["events"] if e["kind"] == "safe_state"]
    assert safe and all(e["level"] == "safe" for e in safe)
    assert missing.status_code == 404
    assert bad.status_code == 400


def test_the_report_is_served_and_one_never_written_is_made_without_writing(
    tmp_path: Path,
) -> None:
    outcome = sim_run(tmp_path)  # in process: no report is written (the CLI writes it)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with web_client(tmp_path) as (client, _):
        answer = client.get(f"/reports/{outcome.run_id}")
        missing = client.get("/reports/no-such-run")
    assert answer.status_code == 200
    assert "Contrast curve" in answer.text and outcome.run_id in answer.text
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert missing.status_code == 404
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.name != TOKEN_FILE)
    assert [p for p in after if p not in before] == []


def test_the_page_and_every_asset_come_from_the_package(finished: tuple[Path, str]) -> None:
    data, _ = finished
    with web_client(data) as (client, _):
        page = client.get("/")
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        served = {asset: client.get(asset) for asset in assets}
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert {"/static/app.js", "/static/plot.js", "/static/style.css"} <= set(assets)
    assert all(answer.status_code == 200 for answer in served.values())
    # No CDN, no remote font, no address outside this server in any shipped file.
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text), path


def test_a_request_for_another_host_name_is_refused_when_bound_to_loopback(
    finished: tuple[Path, str],
) -> None:
    data, _ = finished
    with web_client(data) as (client, _):
        rebound = client.get("/api", headers={"Host": "attacker.example:8765"})
        local = client.get("/api", headers={"Host": "localhost:8765"})
    with web_client(data, loopback_only=False) as (client, _):
        anywhere = client.get("/api", headers={"Host": "bench-3.lab:8765"})
    assert rebound.status_code == 400
    assert local.status_code == 200 and anywhere.status_code == 200
    assert is_loopback_name("[::1]:8765") and is_loopback_name("127.0.0.2")
    assert not is_loopback_name("127.0.0.1.attacker.example")


# -- the token and the actions ---------------------------------------------------------


def test_the_token_is_made_once_owner_only_and_refused_when_others_can_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_GROUP_READABLE", "1")  # a password stays 0600 all the same
    token, made = ensure_token(tmp_path)
    path = tmp_path / TOKEN_FILE
    assert made and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    again, made_again = ensure_token(tmp_path)
    assert (again, made_again) == (token, False)
    assert token_status(f"Bearer {token}", token) == 200
    assert token_status(None, token) == 401 and token_status("Basic abc", token) == 401
    assert token_status(f"Bearer {token}x", token) == 403
    path.chmod(0o640)
    with pytest.raises(InputError, match="chmod 600"):
        ensure_token(tmp_path)


def _queued(data: Path, count: int) -> list[int]:
    return [night.add(sim_request(data)) for _ in range(count)]


def _entry(data: Path, entry_id: int) -> dict[str, object]:
    store = RunStore(data, create=False)
    try:
        entry = store.queue_entry(entry_id)
    finally:
        store.close()
    assert entry is not None
    return entry


def test_an_action_without_the_token_or_with_a_wrong_one_does_nothing(tmp_path: Path) -> None:
    (entry,) = _queued(tmp_path, 1)
    with web_client(tmp_path) as (client, token):
        missing = client.post(f"/api/queue/{entry}/cancel", json={"who": "mallory"})
        wrong = client.post(
            f"/api/queue/{entry}/cancel", headers={"Authorization": f"Bearer {token[:-2]}xx"}
        )
        stop = client.post("/api/runs/anything/stop")
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    assert wrong.status_code == 403 and stop.status_code == 401
    assert not missing.json()["done"] and not wrong.json()["done"]
    assert _entry(tmp_path, entry)["status"] == "pending"
    audit = [json.loads(line) for line in (tmp_path / AUDIT_FILE).read_text().splitlines()]
    assert [(a["action"], a["status"]) for a in audit] == [
        ("cancel", 401),
        ("cancel", 403),
        ("stop", 401),
    ]
    assert stat.S_IMODE((tmp_path / AUDIT_FILE).stat().st_mode) == 0o600


def test_cancel_and_retry_with_the_token_are_recorded_with_who_asked(tmp_path: Path) -> None:
    first, second = _queued(tmp_path, 2)
    with web_client(tmp_path) as (client, token):
        auth = {"Authorization": f"Bearer {token}"}
        cancelled = client.post(f"/api/queue/{first}/cancel", headers=auth, json={"who": "alice"})
        again = client.post(f"/api/queue/{first}/cancel", headers=auth, json={"who": "alice"})
        retried = client.post(f"/api/queue/{first}/retry", headers=auth, json={"who": "bob"})
        pending_retry = client.post(f"/api/queue/{second}/retry", headers=auth)
        unknown = client.post("/api/queue/99/cancel", headers=auth)
        bad_who = client.post(f"/api/queue/{second}/cancel", headers=auth, json={"who": "a\nb"})
        not_json = client.post(f"/api/queue/{second}/cancel", headers=auth, content=b"{oops")
        queue = client.get("/api/queue").json()
    assert cancelled.status_code == 200, cancelled.text
    assert "cancelled; it will not run" in cancelled.json()["message"]
    assert again.status_code == 409 and "nothing to cancel" in again.json()["message"]
    assert retried.status_code == 200 and "pending again" in retried.json()["message"]
    assert pending_retry.status_code == 409
    assert unknown.status_code == 404
    assert bad_who.status_code == 400 and not_json.status_code == 400
    entry = _entry(tmp_path, first)
    assert entry["status"] == "pending"
    assert "retry by bob from" in str(entry["reason"])
    assert _entry(tmp_path, second)["status"] == "pending"  # refused requests changed nothing
    assert [e["status"] for e in queue["entries"]] == ["pending", "pending"]
    assert numbers_without_units(queue) == []
    audit = (tmp_path / AUDIT_FILE).read_text()
    assert '"who": "alice"' in audit and '"who": "bob"' in audit


def test_a_run_that_is_not_running_cannot_be_stopped(finished: tuple[Path, str]) -> None:
    data, run_id = finished
    with web_client(data) as (client, token):
        auth = {"Authorization": f"Bearer {token}"}
        ended = client.post(f"/api/runs/{run_id}/stop", headers=auth)
        unknown = client.post("/api/runs/20990101-000000-none/stop", headers=auth)
    assert ended.status_code == 409 and "completed" in ended.json()["message"]
    assert unknown.status_code == 404
    store = RunStore(data, create=False)
    try:
        assert not [e for e in store.events(run_id) if e["kind"] == "stop_request"]
    finally:
        store.close()


def test_labctl_web_refuses_a_data_directory_without_a_store_in_one_line(tmp_path: Path) -> None:
    from tests.cli import labctl

    empty = labctl("web", "--data", str(tmp_path / "nothing"), "--port", "0")
    lab = labctl("web", "--data", "postgresql://lab@server/labctl", "--port", "0")
    for result in (empty, lab):
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("labctl: error:")
    assert "no such directory" in empty.stderr
    assert "lab store" in lab.stderr
    assert not (tmp_path / "nothing").exists()


def test_the_token_is_printed_at_the_first_start_only(finished: tuple[Path, str]) -> None:
    from tests.labctl.web_process import WebProcess

    data, _ = finished
    (data / TOKEN_FILE).unlink(missing_ok=True)
    with WebProcess(data) as first:
        token = (data / TOKEN_FILE).read_text().strip()
        assert token in first.banner
        assert "REACHABLE" not in first.banner
    with WebProcess(data) as second:
        assert token not in second.banner and "first start only" in second.banner
    with WebProcess(data, host="0.0.0.0") as anywhere:
        assert "REACHABLE FROM THE NETWORK" in anywhere.banner
    assert os.stat(data / TOKEN_FILE).st_mode & 0o077 == 0


def test_a_page_without_a_token_takes_no_actions(finished: tuple[Path, str]) -> None:
    """Served from a data directory where no token could be made (an unwritable disk)."""
    from labctl.web.app import WebSettings, create_app
    from labctl.web.reader import SqliteReader
    from tests.labctl.web_helpers import TestClient

    data, run_id = finished
    settings = WebSettings(reader=SqliteReader(data), reports=None, token=None, actions=None)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        refused = client.post(f"/api/runs/{run_id}/stop", headers={"Authorization": "Bearer x"})
        read = client.get(f"/api/runs/{run_id}")
    assert refused.status_code == 405 and "no web token" in refused.json()["message"]
    assert read.status_code == 200
