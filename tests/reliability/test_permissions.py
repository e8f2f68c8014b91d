"""Security: what labctl writes is owner-only; the served wafer handler wants its token.

* Under umask 000 and 022, a run, its report and export, a queued run and a
  served bench leave no file or directory that others may read or write
  (every path walked and ``lstat``-ed); with ``--group-readable`` (or
  ``LABCTL_GROUP_READABLE=1``) the group may read, and still not write, and
  others get nothing.
* The served bench's handler serves only a connection whose first line is
  ``AUTH <token>`` with the token of its station file: without it, or with
  a wrong one, one ``ERR`` line, the connection closed, and nothing moved.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.clock import ScaledClock
from labctl.errors import StationFileError
from labctl.station import load_station
from labctl.store import RunStore
from protocols.handlers import SocketHandler
from sim_instruments.bench import VirtualBench
from sim_instruments.serve import AUTH_REQUIRED, WRONG_TOKEN, BenchServer, handler_of
from tests.protocols.conftest import BASELINE, FAST

TOKEN = "s3cret-Token_0123456789"


# -- what labctl writes -----------------------------------------------------------------------


def labctl(
    *arguments: str, umask: int, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``labctl ARGUMENTS`` in a new interpreter under ``umask``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABCTL_")}
    return subprocess.run(
        [sys.executable, "-m", "labctl.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, **(environment or {})},
        umask=umask,
    )


def walk(*roots: Path) -> list[Path]:
    """Every path under ``roots`` (the roots included), symlinks not followed."""
    found: list[Path] = []
    for root in roots:
        assert root.exists() or root.is_symlink(), root
        found.append(root)
        if root.is_dir() and not root.is_symlink():
            found += sorted(root.rglob("*"))
    return found


def check_modes(paths: list[Path], *, group: bool) -> None:
    """Nobody but the owner (and, when asked, the group reading) may use any of ``paths``."""
    for path in paths:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            # A symlink's own mode means nothing; what it points at must be private.
            target = Path(os.path.realpath(path))
            if target.exists():
                assert not stat.S_IMODE(os.stat(target).st_mode) & 0o007, (path, target)
            continue
        mode = stat.S_IMODE(info.st_mode)
        directory = stat.S_ISDIR(info.st_mode)
        assert not mode & 0o007, f"{path}: others may use it (mode {mode:04o})"
        assert not mode & 0o020, f"{path}: the group may write it (mode {mode:04o})"
        if group:
            wanted = 0o750 if directory else 0o640
            assert mode == wanted, f"{path}: mode {mode:04o}, wanted {wanted:04o}"
        else:
            assert not mode & 0o070, f"{path}: the group may use it (mode {mode:04o})"


def _start_served(
    directory: Path, data: Path, umask: int, environment: dict[str, str], flag: list[str]
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABCTL_")}
    where = ["--dir", str(directory), "--data", str(data), "--speed", "100"]
    process = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", *flag, "sim", "serve", *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, **environment},
        umask=umask,
    )
    deadline = time.monotonic() + 60
    while not (directory / "station.toml").exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "sim serve wrote no station file"
        time.sleep(0.05)
    return process


def _authenticated(station_file: Path, *commands: str) -> list[bytes]:
    address, token = handler_of(station_file)
    with socket.create_connection(address, timeout=10) as connection:
        stream = connection.makefile("rwb")
        stream.write(f"AUTH {token}\n".encode("ascii"))
        stream.flush()
        replies = [stream.readline()]
        for command in commands:
            stream.write(command.encode("ascii") + b"\n")
            stream.flush()
            replies.append(stream.readline())
    return replies


@pytest.mark.parametrize(
    ("umask", "how"),
    [
        (0o000, "default"),
        (0o022, "default"),
        (0o000, "--group-readable"),
        (0o077, "LABCTL_GROUP_READABLE=1"),
    ],
    ids=["umask000", "umask022", "umask000-group-option", "umask077-group-setting"],
)
def test_nothing_labctl_writes_is_open_to_others(tmp_path: Path, umask: int, how: str) -> None:
    """A run, report, export, queue run and served bench; every path they made, stat-ed."""
    group = how != "default"
    flag = ["--group-readable"] if how == "--group-readable" else []
    environment = {"LABCTL_GROUP_READABLE": "1"} if how.startswith("LABCTL_") else {}
    data = tmp_path / "labctl-data"
    out = tmp_path / "out"
    out.mkdir()
    overrides = [item for value in FAST for item in ("--set", value)]
    what = ["--formulation", str(BASELINE), *overrides]

    ran = labctl(
        *flag, "run", "contrast-curve", "--sim", *what, "--data", str(data),
        umask=umask, environment=environment,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "labctl: warning" not in ran.stderr  # a directory it made is not warned about
    (run_id,) = [p.stem for p in (data / "reports").iterdir()]
    reported = labctl(
        *flag, "report", run_id, "--data", str(data), "--out", str(out / "report.html"),
        umask=umask, environment=environment,
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    exported = labctl(
        *flag, "export", run_id, "--data", str(data), "--out", str(out / "export"),
        umask=umask, environment=environment,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr

    queue_data = tmp_path / "queue-data"
    added = labctl(
        *flag, "queue", "add", "contrast-curve", "--sim", *what, "--data", str(queue_data),
        umask=umask, environment=environment,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    queued = labctl(
        *flag, "queue", "run", "--data", str(queue_data), umask=umask, environment=environment
    )
    assert queued.returncode == 0, queued.stderr

    served, bench_data = tmp_path / "served", tmp_path / "bench-data"
    process = _start_served(served, bench_data, umask, environment, flag)
    try:
        replies = _authenticated(served / "station.toml", "NEW W01", "LOAD W01 hotplate")
        assert replies == [b"OK\n", b"OK\n", b"OK\n"]
        served_paths = walk(served)  # while serving: the pty links point at live devices
        assert {p.name for p in served_paths} >= {"station.toml", "spin_coater", "hotplate"}
        check_modes(served_paths, group=group)
    finally:
        process.terminate()
        process.wait(timeout=30)

    paths = walk(data, out / "report.html", out / "export", queue_data, served, bench_data)
    names = {p.name for p in paths}
    assert {"labctl.sqlite", "bench.lock", "state.jsonl", "light.jsonl", "wafers"} <= names
    assert f"{run_id}.html" in names and f"{run_id}_measurements.csv" in names
    assert (bench_data / "bench" / "wafers" / "W01.json").exists()
    check_modes(paths, group=group)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_store_and_its_write_ahead_log_are_owner_only(tmp_path: Path, umask: int) -> None:
    """SQLite makes -wal and -shm with the main file's mode: checked while they exist."""
    previous = os.umask(umask)
    try:
        store = RunStore(tmp_path / "data")
        try:
            files = {p.name: p for p in (tmp_path / "data").iterdir()}
            assert {"labctl.sqlite", "labctl.sqlite-wal", "labctl.sqlite-shm"} <= set(files)
            check_modes(walk(tmp_path / "data"), group=False)
        finally:
            store.close()
    finally:
        os.umask(previous)


def test_a_copied_out_store_is_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o000)
    try:
        RunStore(tmp_path / "data").close()
        copied = labctl(
            "store", "check", "--data", str(tmp_path / "data"),
            "--copy-out", str(tmp_path / "copy"), umask=0o000,
        )  # fmt: skip
    finally:
        os.umask(previous)
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "copy" / "labctl.sqlite").exists()
    check_modes(walk(tmp_path / "copy"), group=False)


def test_an_exposed_data_directory_is_warned_about_once_and_left_as_it_is(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    overrides = [item for value in FAST for item in ("--set", value)]
    ran = labctl(
        "run", "contrast-curve", "--sim", "--formulation", str(BASELINE), *overrides,
        "--data", str(data), umask=0o022,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if "labctl: warning" in line]
    assert warnings == [
        f"labctl: warning: {data}: other users can read this data directory (mode 0755);"
        f" labctl leaves an existing directory as it is: chmod 700 {data}"
    ]
    assert stat.S_IMODE(data.stat().st_mode) == 0o755
    # What it made inside is private all the same.
    check_modes(walk(*[p for p in data.iterdir()]), group=False)


def test_a_mistyped_group_setting_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = labctl(
        "runs", "--data", str(tmp_path / "data"), umask=0o022,
        environment={"LABCTL_GROUP_READABLE": "group"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "labctl: error: LABCTL_GROUP_READABLE: 'group' is not 1 or 0 (true/false, yes/no, on/off)"
    ]
    assert not (tmp_path / "data").exists()


# -- the served handler's token ---------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[BenchServer]:
    server = BenchServer(VirtualBench(seed=1, clock=ScaledClock(50.0)), tmp_path / "served", TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def exchange(server: BenchServer, data: bytes) -> bytes:
    """Send ``data`` at once; everything the handler sends back until it closes (or 2 s)."""
    with socket.create_connection(("127.0.0.1", server.handler.port), timeout=2) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(4096):
                received += chunk
        except TimeoutError:
            received += b"<open>"
    return received


def untouched(server: BenchServer) -> bool:
    bench = server.bench
    return (
        not bench.wafers
        and all(holder is None for holder in bench.holders.values())
        and not any(device.faults for device in bench.devices.values())
        and server.handler.owner is None
    )


@pytest.mark.parametrize(
    "sent",
    [
        b"NEW W01\n",
        b"DISPENSE RESIST\n",
        b"FAULT hotplate heater_runaway\n",
        b"LOCK thief\n",
        b"\n",
        b"NEW W01\nAUTH " + TOKEN.encode() + b"\n",  # the token too late
        b"X" * 10_000,  # no line at all
    ],
    ids=["NEW", "DISPENSE", "FAULT", "LOCK", "empty", "late", "long"],
)
def test_without_the_token_one_error_line_then_closed_and_nothing_moved(
    served: BenchServer, sent: bytes
) -> None:
    assert exchange(served, sent) == AUTH_REQUIRED.encode("ascii") + b"\n"
    assert AUTH_REQUIRED == "ERR authentication required: AUTH <token> first"
    assert untouched(served)


@pytest.mark.parametrize(
    "auth",
    [
        b"AUTH wrong",
        b"AUTH " + TOKEN[:-1].encode(),  # a prefix
        b"AUTH " + TOKEN.encode() + b"x",
        b"AUTH " + TOKEN.encode() + b" " + TOKEN.encode(),
        b"AUTH",
        b"AUTH " + TOKEN.upper().encode(),
        b"AUTH \xff" + TOKEN.encode()[1:],
    ],
    ids=["wrong", "prefix", "longer", "twice", "none", "case", "non-ascii"],
)
def test_a_wrong_token_is_one_error_line_then_closed_and_nothing_moved(
    served: BenchServer, auth: bytes
) -> None:
    sent = auth + b"\nNEW W01\nLOAD W01 hotplate\nDISPENSE RESIST\nFAULT hotplate heater_runaway\n"
    assert exchange(served, sent) == b"ERR wrong token\n"
    assert WRONG_TOKEN == "ERR wrong token"
    assert untouched(served)


def test_the_right_token_opens_the_session(served: BenchServer) -> None:
    sent = b"AUTH " + TOKEN.encode() + b"\nNEW W01\nLOAD W01 hotplate\nWHERE W01\n"
    with socket.create_connection(("127.0.0.1", served.handler.port), timeout=5) as connection:
        connection.sendall(sent)
        stream = connection.makefile("rb")
        assert [stream.readline() for _ in range(4)] == [
            b"OK\n",
            b"OK\n",
            b"OK\n",
            b"OK hotplate\n",
        ]
    assert served.bench.wafers["W01"].location == "hotplate"


def test_every_connection_authenticates_on_its_own(served: BenchServer) -> None:
    with socket.create_connection(("127.0.0.1", served.handler.port), timeout=5) as connection:
        connection.sendall(b"AUTH " + TOKEN.encode() + b"\n")
        assert connection.makefile("rb").readline() == b"OK\n"
    assert exchange(served, b"NEW W01\n") == AUTH_REQUIRED.encode("ascii") + b"\n"
    assert untouched(served)


def test_each_server_has_its_own_random_token(tmp_path: Path) -> None:
    tokens = set()
    for name in ("a", "b"):
        server = BenchServer(VirtualBench(), tmp_path / name)
        try:
            tokens.add(server.token)
        finally:
            for link in server.links.values():
                if hasattr(link, "listener"):
                    link.listener.close()
                else:
                    link._close_pty()  # type: ignore[attr-defined]
            server.handler.listener.close()
    assert len(tokens) == 2 and all(len(token) >= 40 for token in tokens)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_station_file_carries_the_token_and_only_its_owner_can_read_it(
    served: BenchServer, tmp_path: Path, umask: int
) -> None:
    previous = os.umask(umask)
    try:
        station_file = served.write_station(tmp_path / "elsewhere" / "station.toml")
    finally:
        os.umask(previous)
    assert f'token = "{TOKEN}"' in station_file.read_text(encoding="utf-8")
    check_modes(walk(tmp_path / "elsewhere"), group=False)
    config = load_station(station_file)
    assert config.handler == f"127.0.0.1:{served.handler.port}"
    assert config.handler_token == TOKEN
    assert handler_of(station_file) == (("127.0.0.1", served.handler.port), TOKEN)


def test_the_socket_handler_sends_the_station_files_token(served: BenchServer) -> None:
    handler = SocketHandler.from_station(load_station(served.write_station()))
    try:
        handler.lock("labctl test")
        handler.new_wafer("W01")
        handler.load("W01", "hotplate")
        assert handler.where("W01") == "hotplate"
    finally:
        handler.close()
    assert served.bench.wafers["W01"].location == "hotplate"


def _station_with_token(served: BenchServer, tmp_path: Path, token: str | None) -> Path:
    text = served.station_text().replace(f'token = "{TOKEN}"\n', "")
    if token is not None:
        text = text.replace("[handler]\n", f'[handler]\ntoken = "{token}"\n')
    path = tmp_path / "other-station.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["missing", "wrong"])
def test_the_socket_handler_with_a_wrong_or_no_token_is_a_station_file_error(
    served: BenchServer, tmp_path: Path, token: str | None
) -> None:
    path = _station_with_token(served, tmp_path, token)
    handler = SocketHandler.from_station(load_station(path))
    try:
        with pytest.raises(StationFileError) as refused:
            handler.lock("labctl test")  # refused at once, not waited on as a busy bench
        assert refused.value.field == "handler.token" and refused.value.source == str(path)
        with pytest.raises(StationFileError):
            handler.new_wafer("W01")
        with pytest.raises(StationFileError):
            handler.manual("dispense resist")
    finally:
        handler.close()
    assert untouched(served)


def test_an_unattended_run_with_a_wrong_token_is_refused_in_one_line(
    served: BenchServer, tmp_path: Path
) -> None:
    path = _station_with_token(served, tmp_path, "not-the-token")
    overrides = [item for value in FAST for item in ("--set", value)]
    result = labctl(
        "run", "contrast-curve", "--station", str(path), "--unattended",
        "--formulation", str(BASELINE), *overrides, "--data", str(tmp_path / "data"),
        umask=0o022,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"labctl: error: {path}: handler.token: the wafer handler refused the token"
        " (wrong token): use the station file the running `labctl sim serve` wrote"
    ]
    assert untouched(served)


@pytest.mark.parametrize(
    "line",
    [
        'token = ""',
        'token = "two words"',
        'token = "tökén"',
        "token = 42",
        f'token = "{"x" * 257}"',
    ],
    ids=["empty", "space", "non-ascii", "number", "257"],
)
def test_a_malformed_token_in_a_station_file_is_refused(
    served: BenchServer, tmp_path: Path, line: str
) -> None:
    text = served.station_text().replace(f'token = "{TOKEN}"', line)
    path = tmp_path / "bad-station.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StationFileError) as refused:
        load_station(path)
    assert refused.value.field == "handler.token"


def test_a_handler_table_with_an_unknown_key_is_refused(
    served: BenchServer, tmp_path: Path
) -> None:
    text = served.station_text().replace("[handler]\n", '[handler]\npassword = "x"\n')
    path = tmp_path / "bad-station.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StationFileError) as refused:
        load_station(path)
    assert refused.value.field == "handler"
