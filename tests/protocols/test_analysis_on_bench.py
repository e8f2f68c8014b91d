"""The analysis recovers the virtual bench's own ground truth; the report renders; compare."""

from __future__ import annotations

import base64
import html.parser
import tomllib
from pathlib import Path

import pytest

from labctl.analysis import contrast_from_store, spin_curve_from_store
from labctl.compare import compare_runs
from labctl.report import write_report
from labctl.store import RunStore
from protocols.runner import RunRequest, start
from sim_instruments.bench import VirtualBench
from tests.protocols.conftest import BASELINE, EXAMPLES


def contrast_run(data: Path, formulation: Path = BASELINE) -> str:
    outcome = start(
        RunRequest(
            protocol="contrast-curve",
            data_dir=data,
            formulation=formulation,
            sim=True,
            overrides=("fields=16", "dose_min=10 mJ/cm**2", "dose_max=120 mJ/cm**2"),
        )
    )
    assert outcome.status == "completed", outcome.reason
    return outcome.run_id


def test_contrast_analysis_recovers_the_bench_truth(tmp_path: Path) -> None:
    """The bench's truth is its own physics by the same construction, not labctl's fit."""
    run_id = contrast_run(tmp_path)
    result = contrast_from_store(RunStore(tmp_path), run_id)
    bench = VirtualBench(data_dir=tmp_path)
    truth = bench.true_contrast(wafer_id=f"{run_id}/W01")
    assert result.dg.value.m_as("mJ/cm**2") == pytest.approx(truth["dg"].m_as("mJ/cm**2"), rel=0.05)
    assert result.gamma.value.magnitude == pytest.approx(truth["gamma"], rel=0.15)
    assert result.dg.covers(truth["dg"])


def test_spin_analysis_recovers_the_configured_exponent(tmp_path: Path) -> None:
    outcome = start(
        RunRequest(
            protocol="spin-curve",
            data_dir=tmp_path,
            formulation=BASELINE,
            sim=True,
            overrides=("speeds=1000 rpm,2000 rpm,3000 rpm,4500 rpm,6000 rpm",),
        )
    )
    result, maps = spin_curve_from_store(RunStore(tmp_path), outcome.run_id)
    assert result.exponent.value.magnitude == pytest.approx(0.5, abs=0.02)
    assert len(maps) == 5 and all(m.uniformity.m_as("percent") < 3 for m in maps.values())


class _Sections(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "h2" and values.get("id"):
            self.ids.append(str(values["id"]))
        if tag == "img":
            self.images.append(str(values.get("src", "")))


def test_the_report_renders_every_section_with_embedded_plots(tmp_path: Path) -> None:
    run_id = contrast_run(tmp_path)
    path, headlines = write_report(RunStore(tmp_path), run_id, tmp_path / "r.html")
    parser = _Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    assert parser.ids == [
        "run",
        "formulation",
        "station",
        "recipe",
        "contrast",
        "map",
        "traces",
        "journal",
    ]
    assert len(parser.images) == 3
    prefix = "data:image/svg+xml;base64,"
    assert all(src.startswith(prefix) for src in parser.images)
    figures = [base64.b64decode(src[len(prefix) :]).decode("utf-8") for src in parser.images]
    # The contrast curve: 32 fields, the estimated curve and the tangent, Dg marked.
    assert figures[0].count("<circle") >= 32 and figures[0].count("<polyline") >= 2
    assert ">Dg<" in figures[0] and "delivered dose" in figures[0]
    assert figures[1].count("<circle") >= 16 and "thickness (nm)" in figures[1]  # the map
    assert "spin speed (rpm)" in figures[2] and "<polyline" in figures[2]  # the traces
    assert headlines and headlines[0].startswith("Dg ")
    text = path.read_text(encoding="utf-8")
    assert "claim 13" in text and "HP61" in text and "safe_state" in text


def test_compare_joins_runs_through_their_formulations(tmp_path: Path) -> None:
    more_base = tmp_path / "more_base.toml"
    data = tomllib.loads(BASELINE.read_text(encoding="utf-8"))
    source = BASELINE.read_text(encoding="utf-8").replace('amount = "0.03 g"', 'amount = "0.06 g"')
    assert source != BASELINE.read_text(encoding="utf-8") and data
    more_base.write_text(source, encoding="utf-8")
    first = contrast_run(tmp_path)
    second = contrast_run(tmp_path, more_base)
    rows, plot = compare_runs(tmp_path, [first, second], "base")
    assert [r["run_id"] for r in rows] == [first, second]
    assert rows[1]["x"] > rows[0]["x"] and rows[1]["gel_dose"] > 1.1 * rows[0]["gel_dose"]
    assert plot.exists() and plot.stat().st_size > 10000
    assert EXAMPLES.exists()
