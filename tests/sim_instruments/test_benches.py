"""The benches sim_instruments registers in labctl.benches, found by name as labctl finds them."""

from __future__ import annotations

from pathlib import Path

from labctl.formulation import load_formulation
from labctl.plugins import open_bench
from sim_instruments.physics import ResistParameters
from tests.cli import labctl
from tests.protocols.conftest import BASELINE, EXAMPLES


def test_the_virtual_bench_takes_its_resist_from_the_formulation(tmp_path: Path) -> None:
    plain = open_bench("virtual")
    in_claims = open_bench("virtual", formulation=load_formulation(BASELINE))
    other = open_bench("virtual", formulation=load_formulation(EXAMPLES / "ratio_2_98.toml"))
    try:
        assert plain.resist == ResistParameters()  # type: ignore[attr-defined]
        assert in_claims.resist != plain.resist  # type: ignore[attr-defined]
        assert other.resist != in_claims.resist  # type: ignore[attr-defined]
    finally:
        for bench in (plain, in_claims, other):
            bench.close()
    kept = open_bench("virtual", data_dir=tmp_path, seed=4)
    kept.close()
    assert (tmp_path / "bench" / "state.jsonl").exists()


def test_the_served_bench_is_reached_through_real_links(tmp_path: Path) -> None:
    bench = open_bench("served", serial="tcp", directory=tmp_path / "served")
    try:
        station = bench.station()
        assert station.config.handler is not None and station.config.clock_speed == 1.0
        results = station.connect()
        station.close()
        assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
        links = {r.role: r.link for r in results}
        assert links["exposure_shutter"].startswith("serial socket://127.0.0.1:")
        assert links["ellipsometer"].startswith("TCPIP0::127.0.0.1::")
    finally:
        removed = bench.close()  # type: ignore[func-returns-value]
    assert (tmp_path / "served" / "station.toml") in removed
    assert not (tmp_path / "served" / "station.toml").exists()


def test_labctl_check_finds_each_bench_by_name() -> None:
    served = labctl("check", "--sim", "served")
    assert served.returncode == 0, served.stderr
    assert "served virtual bench" in served.stdout and "token accepted" in served.stdout
    pyvisa_sim = labctl("check", "--pyvisa-sim")
    assert pyvisa_sim.returncode == 0 and "TCPIP0::127.0.0.1::4444::SOCKET" in pyvisa_sim.stdout
    unknown = labctl("check", "--sim", "moon")
    assert unknown.returncode == 2 and "unknown bench; benches: pyvisa-sim, served, virtual" in (
        unknown.stderr
    )


def test_the_state_journal_is_read_back_from_its_end(tmp_path: Path) -> None:
    """A restore reads the journal's last lines a block at a time, not the whole file."""
    import random

    from sim_instruments.bench import BenchFiles

    files = BenchFiles(tmp_path)
    path = tmp_path / "journal"
    rng = random.Random(7)
    for _ in range(300):
        lines = [b"x" * rng.randint(0, 40) for _ in range(rng.randint(0, 12))]
        text = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        path.write_bytes(text)
        expected = [line for line in reversed(text.splitlines()) if line]
        for block in (1, 7, 64, 1 << 16):
            assert list(files.last_lines(path, block)) == expected, (text, block)


def test_a_bench_restores_the_last_whole_state_line(tmp_path: Path) -> None:
    bench = open_bench("virtual", data_dir=tmp_path, seed=2)
    bench.new_wafer("W01")  # type: ignore[attr-defined]
    bench.load("W01", "spin_coater")  # type: ignore[attr-defined]
    bench.close()
    journal = tmp_path / "bench" / "state.jsonl"
    with journal.open("ab") as stream:
        stream.write(b'{"version": 1, "time": 12')  # a line cut short by a crash
    again = open_bench("virtual", data_dir=tmp_path, seed=2)
    try:
        assert again.holders["spin_coater"] == "W01"  # type: ignore[attr-defined]
    finally:
        again.close()
