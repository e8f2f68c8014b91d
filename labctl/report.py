"""The run report: one self-contained HTML file, plots embedded.

Sections: run identity; formulation and its claim verdicts; station; recipe
parameters; the contrast curve with its fit (contrast runs); the spin curve
and thickness maps (spin-curve runs); bake and spin traces; the step journal
with every fault, retry and interlock.

It is written at the end of every run, so it costs little: the figures are
SVG drawn by :mod:`labctl.figures` (no matplotlib: its import and rendering
took longer than the simulated run), inline as ``data:`` URIs.
"""

from __future__ import annotations

import html
import json
import tomllib
from pathlib import Path
from typing import Any

from . import private
from .analysis import contrast_from_store, result_rows, spin_curve_from_store
from .errors import LabctlError
from .figures import PALETTE, Figure, viridis
from .formulation import parse_formulation
from .units import Q_

__all__ = ["write_report"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd;
padding: 0.2em 0.6em; text-align: left; font-size: 0.9em; }
.met { color: #080; } .not_met { color: #b00; } .undetermined { color: #a60; }
.bad { color: #b00; font-weight: bold; } img { max-width: 100%; } .headline { font-size: 1.1em; }
"""


def _table(rows: list[list[Any]], header: list[str] | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _e(value: Any) -> str:
    return html.escape(str(value))


def write_report(store: Any, run_id: str, out: Path | None = None) -> tuple[Path, list[str]]:
    """Write the HTML report of a run; return its path and the headline figures."""
    record = store.run(run_id)
    run_id = record["run_id"]
    out = out or store.data_dir / "reports" / f"{run_id}.html"
    private.private_dir(out.parent)  # a report carries the formulation: owner-only
    headlines: list[str] = []
    sections: list[str] = []

    # identity
    identity = [
        [k, _e(record[k])]
        for k in (
            "run_id",
            "protocol",
            "status",
            "reason",
            "operator",
            "created_at",
            "started_at",
            "ended_at",
            "simulated",
        )
    ]
    identity.append(["software", _e(json.dumps(record["software"]))])
    status_class = "met" if record["status"] == "completed" else "bad"
    sections.append(
        f'<h2 id="run">Run</h2><p class="{status_class}">{_e(record["status"])}</p>'
        + _table(identity)
    )

    # formulation and claims
    stored = store.formulation(record["formulation_hash"]) if record["formulation_hash"] else None
    if stored is not None:
        formulation = parse_formulation(tomllib.loads(stored["content"]), source=stored["source"])
        rows = []
        for row in formulation.composition()["components"]:
            wt = row["wt_percent_of_solids"]
            rows.append(
                [
                    _e(row["role"]),
                    _e(row["name"]),
                    _e(row["lot"]),
                    _e(f"{row['amount']:~P}"),
                    "" if wt is None else f"{wt.magnitude:.3g} %",
                ]
            )
        claims = [
            [str(n), f'<span class="{v.verdict}">{v.verdict}</span>', _e(v.reason)]
            for n, v in formulation.check_claims().items()
        ]
        sections.append(
            f'<h2 id="formulation">Formulation: {_e(formulation.name)}</h2>'
            f"<p>hash {_e(record['formulation_hash'])}</p>"
            + _table(rows, ["role", "component", "lot", "amount", "wt % of solids"])
            + "<h3>Claims 1-13</h3>"
            + _table(claims, ["claim", "verdict", "reason"])
        )
    # station
    station = record["station"] or {}
    station_rows = [
        [
            _e(role),
            _e(s.get("maker")),
            _e(s.get("model")),
            _e(s.get("serial")),
            _e(s.get("firmware")),
            _e(s.get("link")),
        ]
        for role, s in station.items()
    ]
    sections.append(
        '<h2 id="station">Station</h2>'
        + _table(station_rows, ["role", "maker", "model", "serial", "firmware", "link"])
    )
    # recipe
    parameters = [[_e(k), _e(_plain(v))] for k, v in sorted(record["parameters"].items())]
    sections.append('<h2 id="recipe">Recipe</h2>' + _table(parameters, ["parameter", "value"]))

    # results
    if record["protocol"] in ("contrast-curve",):
        sections.append(_contrast_section(store, run_id, headlines))
    if record["protocol"] == "spin-curve":
        sections.append(_spin_section(store, run_id, headlines))
    if record["protocol"] == "claim14":
        sections.append(_claim14_section(store, run_id, headlines))
    sections.append(_map_section(store, run_id))
    sections.append(_traces_section(store, run_id))
    sections.append(_journal_section(store, run_id))

    for wafer, info in store.wafers(run_id).items():
        if info["replaces"]:
            headlines.append(
                f"wafer {wafer} replaced the quarantined wafer {info['replaces']}, "
                f"whose measurements are left out of the results"
            )
    title = f"labctl run {run_id}"
    head = "".join(f'<p class="headline">{_e(h)}</p>' for h in headlines)
    document = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{head}"
        + "\n".join(sections)
        + "</body></html>"
    )
    private.write_private(out, document.encode("utf-8"))
    return out, headlines


def _plain(value: Any) -> Any:
    if isinstance(value, dict) and "__quantity__" in value:
        magnitude, unit = value["__quantity__"]
        return f"{Q_(magnitude, unit):~P}" if unit else f"{magnitude:g}"
    if isinstance(value, list):
        return ", ".join(str(_plain(v)) for v in value)
    return value


def _contrast_section(store: Any, run_id: str, headlines: list[str]) -> str:
    try:
        result = contrast_from_store(store, run_id)
    except LabctlError as exc:
        headlines.append(f"warning: contrast curve: {exc}")
        return f'<h2 id="contrast">Contrast curve</h2><p class="bad">{_e(exc)}</p>'
    headlines.append(result.headline())
    headlines.extend(f"warning: {w}" for w in result.warnings)
    figure = Figure(720, 400)
    axes = figure.add_axes(
        70, 20, 630, 320, log_x=True, legend="lower right",
        x_label="delivered dose (mJ/cm²)", y_label="normalized remaining thickness",
    )  # fmt: skip
    axes.fit(result.doses, y_range=(-0.05, 1.13))
    axes.points(result.doses, result.nrt, label="measured (delivered dose)")
    if result.smooth:
        axes.line(*zip(*result.smooth, strict=True), width=1.0, label="estimated curve")
    if result.tangent_point and result.dg.determined and result.plateau.value is not None:
        dg = result.dg.value.magnitude
        d100 = result.d100.value.magnitude
        plateau = result.plateau.value.magnitude
        axes.line([dg, d100], [0.0, plateau], color=PALETTE[3], dash="6,4",
                  label="tangent (steepest)")  # fmt: skip
        axes.hline(plateau)
    for name, estimate, height in (
        ("Dg", result.dg, 1.02),
        ("onset", result.onset, 1.08),
        ("D100", result.d100, 1.02),
    ):
        if estimate.value is not None:
            axes.vline(estimate.value.magnitude)
            axes.text(estimate.value.magnitude, height, name, size=9)
    rows = [
        [n, _e(e)]
        for n, e in (
            ("Dg (tangent to zero: the gel dose of the headline)", result.dg),
            ("onset (first dose with film, 5 % of the plateau)", result.onset),
            ("D50", result.d50),
            ("D100 (tangent to the plateau)", result.d100),
            ("gamma (classic, 1/log10(D100/Dg))", result.gamma),
            ("gamma (IUPAC 2020, 1/(2 log10(D50/Dg)))", result.gamma_iupac),
            ("plateau (NRT)", result.plateau),
        )
    ]
    rows.append(
        ["fields / in the transition", f"{len(result.doses)} / {result.fields_in_transition}"]
    )
    rows.append(["field scatter (NRT, 1 sigma)", f"{result.noise_sd:.4f}"])
    rows.append(["local fit of the steepest part", _e(result.local_fit)])
    warnings = "".join(f'<p class="bad">{_e(w)}</p>' for w in result.warnings)
    return (
        '<h2 id="contrast">Contrast curve</h2>'
        + figure.img("contrast curve")
        + warnings
        + _table(rows, ["quantity", "value"])
        + "<p>Construction and method: docs/analysis.md (intervals: 95 %, bootstrap plus "
        "shape allowance).</p>"
    )


def _spin_section(store: Any, run_id: str, headlines: list[str]) -> str:
    try:
        result, maps = spin_curve_from_store(store, run_id)
    except LabctlError as exc:
        return f'<h2 id="spin">Spin curve</h2><p class="bad">{_e(exc)}</p>'
    b = result.exponent
    headlines.append(
        f"spin curve: h = {result.constant.value.magnitude:.4g} nm x rpm^-"
        f"{b.value.magnitude:.3f} (b 95 % CI {b.low.magnitude:.3f}-{b.high.magnitude:.3f})"
    )
    fitted = [result.thickness_at(Q_(s, "rpm")).magnitude for s in result.speeds]
    figure = Figure(620, 400)
    axes = figure.add_axes(
        70, 20, 530, 320, log_x=True, log_y=True, legend="upper right",
        x_label="spin speed (rpm)", y_label="thickness (nm)",
    )  # fmt: skip
    axes.fit(result.speeds, [*result.thicknesses, *fitted])
    axes.points(result.speeds, result.thicknesses, label="measured")
    axes.line(result.speeds, fitted, label="fit")
    rows = [[_e(w), _e(m)] for w, m in maps.items()]
    return (
        '<h2 id="spin">Spin curve</h2>'
        + figure.img("spin curve")
        + _table(rows, ["wafer", "thickness map"])
    )


def _claim14_section(store: Any, run_id: str, headlines: list[str]) -> str:
    """Claim 14's result: film kept where exposed, cleared where not."""
    rows = result_rows(store, run_id)
    before = {(r["wafer_id"], r["site"]): r["thickness_nm"] for r in rows if r["label"] == "before"}
    exposed: list[float] = []
    unexposed: list[float] = []
    doses: list[float] = []
    for r in rows:
        start = before.get((r["wafer_id"], r["site"]))
        if r["label"] != "after" or not start:
            continue
        ratio = r["thickness_nm"] / start
        if r["dose_delivered_mJ_cm2"] is None:
            unexposed.append(ratio)
        else:
            exposed.append(ratio)
            doses.append(r["dose_delivered_mJ_cm2"])
    if not exposed or not unexposed:
        line = "claim 14: no film measured before and after both exposed and unexposed film"
        headlines.append(f"warning: {line}")
        return f'<h2 id="claim14">Claim 14</h2><p class="bad">{_e(line)}</p>'
    kept = sum(exposed) / len(exposed)
    left = sum(unexposed) / len(unexposed)
    dose = sum(doses) / len(doses)
    headlines.append(
        f"claim 14: exposed fields kept {100 * kept:.1f} % of their film "
        f"(min {100 * min(exposed):.1f} %, {len(exposed)} fields, mean delivered dose "
        f"{dose:.3g} mJ/cm²); unexposed film kept {100 * left:.1f} %"
    )
    verdict = kept >= 0.5 and left <= 0.05
    if kept < 0.5:
        headlines.append(
            f"warning: the exposed fields kept only {100 * kept:.0f} % of their film: "
            "the dose is below the gel dose of this process; raise dose"
        )
    if left > 0.05:
        headlines.append(
            f"warning: unexposed film kept {100 * left:.0f} %: not developed clear; "
            "check develop time and developer"
        )
    table = _table(
        [
            ["exposed fields: thickness after / before (mean)", f"{kept:.3f}"],
            ["exposed fields: lowest", f"{min(exposed):.3f}"],
            ["unexposed film: thickness after / before", f"{left:.3f}"],
            ["mean delivered dose", f"{dose:.4g} mJ/cm²"],
        ],
        ["quantity", "value"],
    )
    status = "met" if verdict else "bad"
    summary = "negative-tone pattern formed" if verdict else "no clean negative-tone pattern"
    return f'<h2 id="claim14">Claim 14</h2><p class="{status}">{_e(summary)}</p>' + table


def _map_section(store: Any, run_id: str) -> str:
    rows = result_rows(store, run_id)
    if not rows:
        return '<h2 id="map">Thickness map</h2><p>no measurements</p>'
    label = rows[0]["label"]
    chosen = [r for r in rows if r["label"] == label]
    x = [r["x_mm"] for r in chosen]
    y = [r["y_mm"] for r in chosen]
    thickness = [r["thickness_nm"] for r in chosen]
    low, high = min(thickness), max(thickness)
    # Equal scales on x and y: the wafer as it lies, fields where they are.
    centre_x, centre_y = (min(x) + max(x)) / 2, (min(y) + max(y)) / 2
    half = max(max(x) - min(x), max(y) - min(y), 10.0) / 2 * 1.15
    figure = Figure(540, 470)
    axes = figure.add_axes(
        70, 30, 380, 380, x_label="x (mm)", y_label="y (mm)",
        title=f"{chosen[0]['wafer_id']} - {label}",
    )  # fmt: skip
    axes.fit(x_range=(centre_x - half, centre_x + half), y_range=(centre_y - half, centre_y + half))
    colors = [viridis((t - low) / (high - low) if high > low else 0.5) for t in thickness]
    axes.points(x, y, colors=colors, radius=7)
    figure.colorbar(465, 30, 380, low, high, "thickness (nm)")
    return '<h2 id="map">Thickness map</h2>' + figure.img("thickness map")


def _traces_section(store: Any, run_id: str) -> str:
    samples = store.sample_rows(run_id)
    steps = {s["seq"]: s for s in store.steps(run_id)}
    figure = Figure(720, 560)
    # The legends where the traces are not: beside the plate's rise, under the dry spins.
    top = figure.add_axes(
        70, 15, 630, 215, y_label="plate (°C)", legend="center right", legend_size=9
    )
    bottom = figure.add_axes(
        70, 285, 630, 215, y_label="spin speed (rpm)", x_label="time in step (s)",
        legend="lower right", legend_size=9,
    )  # fmt: skip
    plates: list[tuple[str, list[tuple[float, float]]]] = []
    spins: list[tuple[str, list[tuple[float, float]]]] = []
    by_step: dict[int, dict[str, list[tuple[float, float]]]] = {}
    for s in samples:
        by_step.setdefault(s["seq"], {}).setdefault(s["channel"], []).append((s["t"], s["value"]))
    for seq in sorted(by_step):
        name = steps.get(seq, {}).get("name", "")
        plate = by_step[seq].get("plate_temperature", [])
        spin = by_step[seq].get("spin_speed", [])
        if plate and "bake" in name:
            plates.append((f"{name} (step {seq})", plate))
        if spin:
            spins.append((f"{name} (step {seq})", spin))
    for axes, traces in ((top, plates), (bottom, spins)):
        every = [point for _, trace in traces for point in trace]
        axes.fit([t for t, _ in every], [v for _, v in every])
        for label, trace in traces:
            axes.line(*zip(*trace, strict=True), label=label)
    return '<h2 id="traces">Bake and spin traces</h2>' + figure.img("bake and spin traces")


def _journal_section(store: Any, run_id: str) -> str:
    rows = []
    for step in store.steps(run_id):
        css = "" if step["status"] == "finished" else ' class="bad"'
        rows.append(
            [
                str(step["seq"]),
                _e(step["name"]),
                _e(step["wafer_id"] or ""),
                f"<span{css}>{_e(step['status'])}</span>",
                str(step["attempts"]),
                _e(step["error"] or ""),
            ]
        )
    events = [[_e(e["at"]), _e(e["kind"]), _e(e["message"])] for e in store.events(run_id)]
    found = store.wafers(run_id)
    by = {i["replaces"]: w for w, i in found.items() if i["replaces"]}
    wafers = [
        [_e(w), _e(i["state"]), _e(i["replaces"] or ""), _e(by.get(w, "")), _e(i["reason"] or "")]
        for w, i in found.items()
    ]
    return (
        '<h2 id="journal">Step journal</h2>'
        + _table(rows, ["step", "name", "wafer", "status", "attempts", "error"])
        + "<h3>Wafers</h3>"
        + _table(wafers, ["wafer", "state", "replaces", "replaced by", "reason"])
        + "<h3>Events (faults, retries, interlocks, safe state)</h3>"
        + _table(events, ["at", "kind", "message"])
    )
