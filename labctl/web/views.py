"""The JSON of the page and its API: units beside every number.

Every physical number is an object ``{"value": 95.0, "unit": "degC"}``
(``"1"`` for a pure number, ``"s"`` for a duration or a bench time); a trace
is ``{"unit": ..., "t_unit": "s", "points": [[t, value], ...]}``. Counts
(steps, fields, entries) and ids are plain integers. Wall times are ISO 8601
UTC text. A figure with an interval is :meth:`labctl.contrast.Estimate.to_json`
(``value``, ``low``, ``high``, ``unit``, ``kind``).

:class:`Views` keeps what is costly and never changes once known: a finished
run's headline figures (about 0.2 s of analysis each), a formulation's claim
verdicts, a protocol's planned step count.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import LabctlError
from .reader import BenchReader

__all__ = ["CHANNELS", "Views", "event_level", "quantity"]

log = logging.getLogger(__name__)

#: The live traces, in the order the page draws them: channel -> its unit.
CHANNELS = {"plate_temperature": "degC", "spin_speed": "rpm", "irradiance": "mW/cm^2"}

#: Event kinds by how loudly the page shows them.
_FAULTS = {"interlocked", "failed", "killed", "quarantine", "supervisor", "hold", "interrupted"}
_WARNINGS = {"retry", "skip", "replace", "park"}
_ACTIONS = {"stop_request", "web"}
#: Run statuses that are over for good or for now.
ENDED = ("completed", "incomplete", "aborted", "failed", "interlocked", "killed")


def quantity(value: Any, unit: str) -> dict[str, Any]:
    """``{"value": v, "unit": u}``; a missing or non-finite number is ``null``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {"value": None, "unit": unit}
    return {"value": value, "unit": unit}


def event_level(kind: str, message: str) -> str:
    """``fault``, ``warning``, ``action``, ``safe`` or ``info``: how the page marks an event."""
    if kind == "safe_state":
        return "fault" if "FAILED" in message else "safe"
    if kind in _FAULTS:
        return "fault"
    if kind in _WARNINGS:
        return "warning"
    if kind in _ACTIONS:
        return "action"
    return "info"


def event_json(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event.get("id"),
        "at": event["at"],
        "kind": event["kind"],
        "message": event["message"],
        "level": event_level(event["kind"], event["message"]),
    }


def measurement_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.get("id"),
        "seq": row["seq"],
        "wafer": row["wafer_id"],
        "label": row["label"],
        "site": row["site"],
        "x": quantity(row["x_mm"], "mm"),
        "y": quantity(row["y_mm"], "mm"),
        "dose_requested": quantity(row["dose_requested_mJ_cm2"], "mJ/cm^2"),
        "dose_delivered": quantity(row["dose_delivered_mJ_cm2"], "mJ/cm^2"),
        "thickness": quantity(row["thickness_nm"], "nm"),
        "thickness_error": quantity(row["thickness_error_nm"], "nm"),
        "refractive_index": quantity(row["refractive_index"], "1"),
        "mse": quantity(row["mse"], "1"),
        "bench_time": quantity(row.get("bench_time"), "s"),
        "wall_time": row.get("wall_time"),
    }


def _parsed_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _decoded(parameters: Any) -> dict[str, Any]:
    from ..engine import decode

    try:
        value = decode(parameters or {})
    except Exception:  # a parameter this labctl cannot read back is shown without detail
        return {}
    return value if isinstance(value, dict) else {}


def step_json(step: dict[str, Any]) -> dict[str, Any]:
    from ..progress import describe_step

    started, finished = step.get("bench_started"), step.get("bench_finished")
    return {
        "seq": step["seq"],
        "name": step["name"],
        "wafer": step["wafer_id"],
        "status": step["status"],
        "attempts": step["attempts"],
        "detail": describe_step(step["name"], _decoded(step["parameters"])),
        "error": step["error"],
        "bench_started": quantity(started, "s"),
        "bench_finished": quantity(finished, "s"),
        "bench_duration": quantity(
            None if started is None or finished is None else finished - started, "s"
        ),
        "wall_started": step["started_at"],
        "wall_finished": step["finished_at"],
    }


class Views:
    """The API's JSON, read through a :class:`~labctl.web.reader.BenchReader`."""

    def __init__(self, reader: BenchReader) -> None:
        self.reader = reader
        self._lock = threading.Lock()
        self._working = threading.Lock()
        self._figures: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._formulations: dict[str, dict[str, Any]] = {}
        self._plans: dict[tuple[str, str], int | None] = {}

    # -- a run ------------------------------------------------------------------------

    def formulation(self, content_hash: str | None) -> dict[str, Any] | None:
        """Name, hash and the claim verdicts (1-13) of a stored formulation."""
        if not content_hash:
            return None
        with self._lock:
            known = self._formulations.get(content_hash)
        if known is not None:
            return known
        stored = self.reader.formulation(content_hash)
        if stored is None:
            return {"hash": content_hash, "name": None, "claims": {}}
        from ..formulation import parse_formulation

        try:
            recipe = parse_formulation(tomllib.loads(stored["content"]), source=stored["source"])
            claims = {
                str(n): {"verdict": v.verdict, "reason": v.reason}
                for n, v in recipe.check_claims().items()
            }
        except (LabctlError, tomllib.TOMLDecodeError) as exc:
            claims = {}
            log.warning("formulation %s: claims not checked: %s", content_hash[:12], exc)
        made = {"hash": content_hash, "name": stored["name"], "claims": claims}
        with self._lock:
            self._formulations[content_hash] = made
        return made

    def planned_steps(self, protocol: str, parameters: Any) -> int | None:
        """Steps the protocol plans for these parameters (None for a protocol not known here)."""
        import json

        key = (protocol, json.dumps(parameters, sort_keys=True, default=str))
        with self._lock:
            if key in self._plans:
                return self._plans[key]
        planned = self._planned(protocol, parameters)
        with self._lock:
            self._plans[key] = planned
        return planned

    def _planned(self, protocol: str, parameters: Any) -> int | None:
        from ..errors import LabctlError
        from ..plugins import protocol as registered

        try:
            known = registered(protocol)  # found by name (labctl.protocols)
        except LabctlError:
            return None
        try:
            planned = known.expected_steps(_decoded(parameters))
        except Exception:  # parameters of another version: no plan to show
            return None
        return None if planned is None else int(planned)

    def progress(
        self, run: dict[str, Any], steps: list[dict[str, Any]], now: datetime | None = None
    ) -> dict[str, Any]:
        """Step n of N, the step under way (or the last), both clocks."""
        now = now or datetime.now(UTC)
        made = [s for s in steps if s["status"] != "skipped"]
        current = made[-1] if made else None
        n = current["seq"] if current is not None else 0
        planned = self.planned_steps(run["protocol"], run.get("parameters"))
        total = max(planned or 0, steps[-1]["seq"] if steps else 0, n) or None
        bench_now = 0.0
        for step in steps:
            for key in ("bench_started", "bench_finished"):
                if step.get(key) is not None:
                    bench_now = max(bench_now, float(step[key]))
        started = _parsed_time(run.get("started_at"))
        ended = _parsed_time(run.get("ended_at")) if run["status"] != "running" else None
        wall = ((ended or now) - started).total_seconds() if started else None
        return {
            "n": n,
            "of": total,
            "planned": planned,
            "step": step_json(current) if current is not None else None,
            "bench_time": quantity(bench_now, "s"),
            "wall_time": quantity(None if wall is None else round(max(wall, 0.0), 1), "s"),
            "started_at": run.get("started_at"),
        }

    def run_detail(self, run_id: str) -> dict[str, Any] | None:
        """``GET /api/runs/{run_id}``: everything the page shows of one run."""
        run = self.reader.run(run_id)
        if run is None:
            return None
        run_id = run["run_id"]
        steps = self.reader.steps(run_id)
        wafers = self.reader.wafers(run_id)
        rows = self.reader.measurement_rows(run_id)
        return {
            **self.run_brief(run),
            "parameters": _parameters_json(run.get("parameters")),
            "station": run.get("station"),
            "software": run.get("software"),
            "seed": run.get("seed"),
            "progress": self.progress(run, steps),
            "steps": [step_json(s) for s in steps],
            "wafers": [
                {
                    "wafer": wafer,
                    "state": info["state"],
                    "reason": info["reason"],
                    "replaces": info["replaces"],
                }
                for wafer, info in wafers.items()
            ],
            "events": [event_json(e) for e in self.reader.events(run_id)],
            "measurements": [measurement_json(r) for r in rows],
            "figures": self.figures(run, rows) if run["status"] in ENDED else None,
        }

    def run_brief(self, run: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": run["run_id"],
            "bench": run.get("bench"),
            "protocol": run["protocol"],
            "status": run["status"],
            "reason": run["reason"],
            "operator": run["operator"],
            "simulated": bool(run["simulated"]),
            "created_at": run["created_at"],
            "started_at": run["started_at"],
            "ended_at": run["ended_at"],
            "formulation": self.formulation(run.get("formulation_hash")),
            "report": f"/reports/{run['run_id']}",
        }

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """``GET /api/runs``: the newest runs, with headline figures once a run has ended."""
        out = []
        for run in self.reader.runs(limit):
            brief = self.run_brief(run)
            brief["figures"] = self.figures(run) if run["status"] in ENDED else None
            out.append(brief)
        return out

    # -- headline figures ---------------------------------------------------------------

    def figures(
        self, run: dict[str, Any], rows: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Dg, gamma (contrast curves), the film thickness; the spin curve's exponent.

        Worked out once per run and end (a resumed run that ends again is
        worked out again) and kept.
        """
        key = (run["run_id"], run["status"], run.get("ended_at"))
        with self._lock:
            known = self._figures.get(key)
        if known is not None:
            return known
        # One at a time: twenty pages asking at a run's end cost one analysis, not twenty.
        with self._working:
            with self._lock:
                known = self._figures.get(key)
            if known is not None:
                return known
            made = self._work_out(run, rows)
            with self._lock:
                self._figures[key] = made
        return made

    def _work_out(self, run: dict[str, Any], rows: list[dict[str, Any]] | None) -> dict[str, Any]:
        from ..analysis import contrast_from_store, result_rows, spin_curve_from_store

        run_id = run["run_id"]
        figures: dict[str, Any] = {"dg": None, "gamma": None, "thickness": None, "notes": []}
        try:
            used = (
                result_rows(self.reader, run_id)
                if rows is None
                else _not_replaced(self.reader, run_id, rows)
            )
        except LabctlError as exc:
            figures["notes"].append(str(exc))
            return figures
        coated = [r["thickness_nm"] for r in used if r["label"] == "before"] or [
            r["thickness_nm"] for r in used
        ]
        if coated:
            figures["thickness"] = {
                "value": sum(coated) / len(coated),
                "low": min(coated),
                "high": max(coated),
                "unit": "nm",
                "kind": "mean",
                "sites": len(coated),
            }
        try:
            if run["protocol"] == "contrast-curve" and used:
                result = contrast_from_store(self.reader, run_id)
                figures["dg"] = _estimate(result.dg)
                figures["gamma"] = _estimate(result.gamma)
                figures["d100"] = _estimate(result.d100)
                figures["notes"].extend(result.warnings)
            elif run["protocol"] == "spin-curve" and used:
                curve, _ = spin_curve_from_store(self.reader, run_id)
                figures["spin_exponent"] = _estimate(curve.exponent)
        except LabctlError as exc:
            figures["notes"].append(str(exc))
        except Exception as exc:  # an analysis bug must not take the page down
            log.exception("figures of run %s", run_id)
            figures["notes"].append(f"not worked out: {type(exc).__name__}: {exc}")
        return figures

    # -- the queue and the night --------------------------------------------------------

    def queue(self, entries: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """``GET /api/queue``'s entries (of ``entries``, the reader's rows, if given)."""
        from ..store import _process_alive

        out = []
        for entry in self.reader.queue() if entries is None else entries:
            options = entry["options"]
            status, reason = entry["status"], entry["reason"]
            if status in ("running", "cancelling") and not _process_alive(entry.get("pid")):
                status = "interrupted"
                reason = (
                    f"its queue runner (pid {entry.get('pid')}) is gone: `labctl queue run`"
                    " resumes it"
                )
            formulation = (options.get("files") or {}).get("formulation") or {}
            out.append(
                {
                    "id": entry["id"],
                    "bench": entry.get("bench"),
                    "protocol": entry["protocol"],
                    "status": status,
                    "reason": reason,
                    "run_id": entry["run_id"],
                    "added_at": entry["added_at"],
                    "started_at": entry["started_at"],
                    "ended_at": entry["ended_at"],
                    "sim": bool(options.get("sim")),
                    "overrides": list(options.get("overrides") or []),
                    "formulation": {
                        "path": formulation.get("path") or options.get("formulation"),
                        "sha256": formulation.get("sha256"),
                    },
                    "attempts": len(options.get("attempts") or []) + 1,
                    "can_cancel": status in ("pending", "running", "interrupted"),
                    "can_retry": status in ("failed", "cancelled"),
                }
            )
        return out

    def _bench_total(self, protocol: str, parameters: Any = None) -> float | None:
        """Bench seconds a completed run of ``protocol`` took (the same parameters first)."""
        import json

        runs = [r for r in self.reader.completed_bench_times(protocol) if r["bench_total"]]
        if parameters is not None:
            wanted = json.dumps(parameters, sort_keys=True, default=str)
            same = [r for r in runs if r["parameters"] == wanted]
            if same:
                return float(same[0]["bench_total"])
        return float(runs[0]["bench_total"]) if runs else None

    def night(
        self,
        current: dict[str, Any] | None,
        steps: list[dict[str, Any]],
        queue: list[dict[str, Any]],
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """When the night's work ends, estimated; and what the estimate rests on.

        In bench time, which is the physics' and does not depend on how fast
        a served bench runs: the current run's remaining bench time (a
        completed run of the same protocol and parameters, else its own pace
        per step) and each pending entry's (the latest completed run of its
        protocol), turned into wall time at the pace the current run keeps
        (wall s per bench s between its first and its latest step).
        """
        now = now or datetime.now(UTC)
        basis: list[str] = []
        remaining = 0.0
        unknown = 0
        rate: float | None = None
        projected: float | None = None
        if current is not None and current["status"] == "running":
            timed = [
                (s["bench_started"], _parsed_time(s["started_at"]))
                for s in steps
                if s.get("bench_started") is not None and s.get("started_at")
            ]
            if len(timed) >= 2:
                (b0, w0), (b1, w1) = timed[0], timed[-1]
                if w0 is not None and w1 is not None and b1 - b0 > 1.0:
                    rate = max((w1 - w0).total_seconds(), 0.0) / (b1 - b0)
            bench_now = max(
                (
                    float(s[k])
                    for s in steps
                    for k in ("bench_started", "bench_finished")
                    if s.get(k) is not None
                ),
                default=0.0,
            )
            total = self._bench_total(current["protocol"], current.get("parameters"))
            if total is not None and total > bench_now:
                projected = total
                basis.append("the current run: a completed run of the same protocol")
            else:
                made = [s for s in steps if s["status"] != "skipped"]
                planned = self.planned_steps(current["protocol"], current.get("parameters"))
                if made and planned and bench_now > 0:
                    projected = bench_now / len(made) * max(planned, len(made))
                    basis.append("the current run: its own pace per step")
            if projected is not None:
                remaining += max(projected - bench_now, 0.0)
            else:
                unknown += 1
        for entry in queue:
            if entry["status"] not in ("pending", "interrupted"):
                continue
            total = self._bench_total(entry["protocol"])
            if total is None and current is not None and entry["protocol"] == current["protocol"]:
                total = projected
            if total is None:
                unknown += 1
            else:
                remaining += total
        if rate is None:
            end = None
        else:
            end = (now + timedelta(seconds=remaining * rate)).isoformat(timespec="seconds")
            basis.append(f"pace {rate:.3g} wall s per bench s")
        return {
            "estimated_end": end,
            "remaining_bench_time": quantity(round(remaining, 1), "s"),
            "remaining_wall_time": quantity(
                None if rate is None else round(remaining * rate, 1), "s"
            ),
            "pace": quantity(None if rate is None else rate, "1"),
            "not_estimated": unknown,
            "basis": basis,
        }


def _estimate(estimate: Any) -> dict[str, Any]:
    """An estimate's JSON with its unit in labctl's spelling (``mJ/cm^2``, ``1``)."""
    from ..units import canonical_unit

    made: dict[str, Any] = estimate.to_json()
    if made["unit"] != "1":
        with contextlib.suppress(Exception):  # a spelling pint cannot read stays as it is
            made["unit"] = canonical_unit(made["unit"]) or "1"
    return made


def _not_replaced(
    reader: BenchReader, run_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    replaced = {i["replaces"] for i in reader.wafers(run_id).values() if i.get("replaces")}
    return [r for r in rows if r["wafer_id"] not in replaced]


def _parameters_json(encoded: Any) -> dict[str, Any]:
    """A run's parameters: quantities as ``{"value", "unit"}``, the rest as recorded."""
    import json

    from ..store import export_json

    if not encoded:
        return {}
    value = json.loads(export_json(encoded))
    return value if isinstance(value, dict) else {}
