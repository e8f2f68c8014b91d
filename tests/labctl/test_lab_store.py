"""Several benches, one lab store: sync, the read commands on PostgreSQL, credentials."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from labctl.schema import SHIPPED
from labctl.store import RunStore
from protocols.runner import RunRequest, start
from tests.cli import labctl
from tests.lab import FORMULATIONS, LabServer, lost_and_duplicated
from tests.protocols.conftest import EXAMPLES, FAST

PASSWORD = "S3cret-xyzzy-9"


@pytest.fixture(scope="module")
def benches(tmp_path_factory: pytest.TempPathFactory, lab_server: LabServer) -> dict[str, Path]:
    """Three benches, each with a fast contrast curve of another formulation, shipped to one lab."""
    root = tmp_path_factory.mktemp("benches")
    url = lab_server.new_database()
    found = {}
    for number, formulation in enumerate(FORMULATIONS, start=1):
        data = root / f"bench-{number}"
        outcome = start(
            RunRequest(
                protocol="contrast-curve",
                data_dir=data,
                formulation=EXAMPLES / formulation,
                sim=True,
                overrides=FAST,
                seed=number,
            )
        )
        assert outcome.status == "completed"
        shipped = labctl("sync", "--data", str(data), "--to", url, "--bench", f"bench-{number}")
        assert shipped.returncode == 0, shipped.stderr
        assert f"bench bench-{number} -> " in shipped.stdout and "samples" in shipped.stdout
        found[f"bench-{number}"] = data
    found["url"] = Path(url)  # (the URL, carried in the same mapping)
    return found


def _url(benches: dict[str, Path]) -> str:
    return str(benches["url"]).replace("postgresql:/", "postgresql://", 1)


def _run_ids(data: Path) -> list[str]:
    store = RunStore(data, create=False)
    try:
        return [run["run_id"] for run in store.runs()]
    finally:
        store.close()


def _merged(benches: dict[str, Path], into: Path) -> Path:
    """One SQLite store holding every bench's runs (as if one bench had run them all)."""
    RunStore(into).close()
    db = sqlite3.connect(into / "labctl.sqlite")
    for name in ("bench-1", "bench-2", "bench-3"):
        db.execute("ATTACH ? AS other", (str(benches[name] / "labctl.sqlite"),))
        for table in SHIPPED:
            db.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM other.{table}")
        db.commit()
        db.execute("DETACH other")
    db.close()
    return into


def test_every_bench_is_in_the_lab_row_for_row(benches: dict[str, Path]) -> None:
    url = _url(benches)
    for name in ("bench-1", "bench-2", "bench-3"):
        losses = lost_and_duplicated(benches[name], url, name)
        assert losses == {table: (0, 0) for table in SHIPPED}
        again = labctl("sync", "--data", str(benches[name]), "--to", url)
        assert again.returncode == 0 and "nothing new" in again.stdout


def test_compare_by_base_over_the_lab_is_compare_over_one_store(
    benches: dict[str, Path], tmp_path: Path
) -> None:
    runs = [run for name in ("bench-1", "bench-2", "bench-3") for run in _run_ids(benches[name])]
    merged = _merged(benches, tmp_path / "one")
    here = labctl("compare", *runs, "--by", "base", "--data", str(merged))
    there = labctl(
        "compare", *runs, "--by", "base", "--data", _url(benches), "--out", str(tmp_path / "c.png")
    )
    assert here.returncode == 0 and there.returncode == 0, there.stderr
    table_here = [line for line in here.stdout.splitlines() if not line.startswith("plot:")]
    table_there = [line for line in there.stdout.splitlines() if not line.startswith("plot:")]
    assert len(table_there) == 4  # a header and one run from each bench
    assert table_there == table_here


def test_runs_show_and_export_read_the_lab_as_they_read_a_bench(
    benches: dict[str, Path], tmp_path: Path
) -> None:
    url = _url(benches)
    listed = labctl("runs", "--data", url)
    assert listed.returncode == 0
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()) == [
        "bench-1",
        "bench-2",
        "bench-3",
    ]
    only = labctl("runs", "--data", url, "--bench", "bench-2", "--json")
    assert only.returncode == 0 and only.stdout.count('"bench_id": "bench-2"') == 1
    assert "bench-1" not in only.stdout
    run = _run_ids(benches["bench-2"])[0]
    local = labctl("show", run, "--data", str(benches["bench-2"]))
    lab = labctl("show", run[:-2], "--data", url)  # a prefix of one run's id
    assert lab.returncode == 0, lab.stderr
    assert lab.stdout.replace("bench      bench-2\n", "") == local.stdout
    elsewhere = labctl("show", run, "--data", url, "--bench", "bench-1")
    assert elsewhere.returncode == 2 and "no such run" in elsewhere.stderr
    labctl("export", run, "--data", str(benches["bench-2"]), "--out", str(tmp_path / "here"))
    exported = labctl("export", run, "--data", url, "--out", str(tmp_path / "there"))
    assert exported.returncode == 0, exported.stderr
    for table in ("measurements", "samples", "steps"):
        name = f"{run}_{table}.csv"
        assert (tmp_path / "there" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
    report = labctl("report", run, "--data", url, "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0 and "Dg" in report.stdout
    assert "bench" in labctl("runs", "--data", str(benches["bench-1"]), "--bench", "x").stderr


def test_a_password_file_others_can_read_is_refused(
    benches: dict[str, Path], tmp_path: Path
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{PASSWORD}\n")
    passfile.chmod(0o644)
    refused = labctl(
        "sync",
        "--data",
        str(benches["bench-1"]),
        "--to",
        _url(benches),
        environment={"PGPASSFILE": str(passfile)},
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert (
        "readable by group or others (mode 0644)" in refused.stderr
        and "chmod 600" in refused.stderr
    )
    assert PASSWORD not in refused.stderr + refused.stdout


def test_a_password_comes_from_the_environment_and_is_never_shown(
    tmp_path: Path, lab_server: LabServer
) -> None:
    url = lab_server.new_database()
    database = url.split("@/")[1].split("?")[0]
    lab_server.require_password("lab_writer", PASSWORD)
    lab_server.sql(f'GRANT ALL ON DATABASE "{database}" TO lab_writer')
    lab_server.sql("GRANT ALL ON SCHEMA public TO lab_writer", database)
    from tests.labctl.test_shipper import synthetic_run

    data = tmp_path / "bench"
    store = RunStore(data)
    synthetic_run(store, "run-1")
    store.close()
    with_password = f"postgresql://lab_writer:{PASSWORD}@/{database}?host={lab_server.socket_dir}"
    environment = {"LABCTL_DATABASE_URL": with_password}
    shipped = labctl("sync", "--data", str(data), "--bench", "bench-p", environment=environment)
    assert shipped.returncode == 0, shipped.stderr
    assert "lab_writer:***@" in shipped.stdout and PASSWORD not in shipped.stdout
    # Wrong password: refused by the server, said in one line, the password nowhere.
    wrong = with_password.replace(PASSWORD, PASSWORD + "x")
    failed = labctl("sync", "--data", str(data), environment={"LABCTL_DATABASE_URL": wrong})
    assert failed.returncode == 1 and "password authentication failed" in failed.stderr
    assert PASSWORD not in failed.stderr + failed.stdout and failed.stderr.count("\n") == 1
    # On the command line: refused before anything, and not echoed.
    given = labctl("sync", "--data", str(data), "--to", with_password)
    assert given.returncode == 2 and "password on the command line" in given.stderr
    assert PASSWORD not in given.stderr + given.stdout
    # A URL without one takes the environment's password for the same server and user.
    bare = with_password.replace(f":{PASSWORD}", "")
    listed = labctl("runs", "--data", bare, environment=environment)
    assert listed.returncode == 0 and "run-1" in listed.stdout
    # A password file (owner-only) works as libpq reads it.
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:{database}:lab_writer:{PASSWORD}\n")
    passfile.chmod(0o600)
    listed = labctl("runs", "--data", bare, environment={"PGPASSFILE": str(passfile)})
    assert listed.returncode == 0 and "run-1" in listed.stdout
    # Nothing of it in the bench's files (store, reports).
    for path in data.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_read_only_role_is_enough_to_read(
    benches: dict[str, Path], lab_server: LabServer, tmp_path: Path
) -> None:
    url = _url(benches)
    database = url.split("@/")[1].split("?")[0]
    role = f"reader_{database[2:]}"
    lab_server.sql(f"CREATE ROLE {role} LOGIN")
    # What docs/lab-store.md gives a reader, and nothing more.
    lab_server.sql(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
    lab_server.sql(f"GRANT USAGE ON SCHEMA public TO {role}", database)
    lab_server.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}", database)
    reader = url.replace("postgresql://postgres@", f"postgresql://{role}@")
    run = _run_ids(benches["bench-3"])[0]
    for arguments in (["runs"], ["show", run], ["compare", run, "--out", str(tmp_path / "c.png")]):
        read = labctl(*arguments, "--data", reader)
        assert read.returncode == 0, read.stderr
    from tests.labctl.test_shipper import synthetic_run

    store = RunStore(tmp_path / "bench-4")
    synthetic_run(store, "run-1")
    store.close()
    refused = labctl("sync", "--data", str(tmp_path / "bench-4"), "--to", reader)
    assert refused.returncode == 1 and "permission denied" in refused.stderr
    assert refused.stderr.count("\n") == 1
