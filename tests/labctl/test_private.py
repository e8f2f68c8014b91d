"""labctl.private: modes of what labctl creates, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import private
from labctl.errors import InputError


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask() -> Iterator[object]:
    """Set the process umask for one test: ``umask(0o000)``; restored after."""
    previous = os.umask(0o022)
    os.umask(previous)
    try:
        yield os.umask
    finally:
        os.umask(previous)


@pytest.fixture(autouse=True)
def _no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(private.GROUP_READABLE_ENV, raising=False)
    monkeypatch.delenv("LABCTL_MODE_WARNED", raising=False)


@pytest.mark.parametrize("value", [0o000, 0o022, 0o077])
def test_every_directory_made_on_the_way_is_owner_only(tmp_path: Path, umask, value: int) -> None:
    umask(value)
    deep = tmp_path / "a" / "b" / "c"
    assert private.private_dir(deep) == deep
    for directory in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert mode(directory) == 0o700, directory


@pytest.mark.parametrize("value", [0o000, 0o022, 0o077])
def test_group_readable_gives_0750_and_0640_even_under_a_strict_umask(
    tmp_path: Path, umask, value: int
) -> None:
    umask(value)
    directory = private.private_dir(tmp_path / "a" / "b", group=True)
    target = private.write_private(directory / "f", b"x", group=True)
    assert mode(tmp_path / "a") == mode(directory) == 0o750
    assert mode(target) == 0o640


def test_the_setting_decides_when_not_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (private.dir_mode(), private.file_mode()) == (0o700, 0o600)
    monkeypatch.setenv(private.GROUP_READABLE_ENV, "1")
    assert (private.dir_mode(), private.file_mode()) == (0o750, 0o640)
    assert mode(private.write_private(tmp_path / "f", b"")) == 0o640
    private.set_group_readable(False)
    assert os.environ[private.GROUP_READABLE_ENV] == "0" and not private.group_readable()


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_the_setting_reads_yes(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(private.GROUP_READABLE_ENV, value)
    assert private.group_readable()


@pytest.mark.parametrize("value", ["", "0", "false", "no", "Off"])
def test_the_setting_reads_no(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(private.GROUP_READABLE_ENV, value)
    assert not private.group_readable()


def test_a_mistyped_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(private.GROUP_READABLE_ENV, "group")
    with pytest.raises(InputError, match=r"^LABCTL_GROUP_READABLE: 'group' is not 1 or 0"):
        private.file_mode()


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    private.private_dir(shared / "new")
    assert mode(shared) == 0o755 and mode(shared / "new") == 0o700


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FileExistsError):
        private.private_dir(tmp_path / "file")


@pytest.mark.parametrize("value", [0o000, 0o022])
def test_a_written_file_replaces_the_old_one_with_the_private_mode(
    tmp_path: Path, umask, value: int
) -> None:
    umask(value)
    target = tmp_path / "report.html"
    target.write_bytes(b"old")
    target.chmod(0o666)
    private.write_private(target, b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # nothing left aside


def test_a_planted_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / "report.html"
    link.symlink_to(victim)
    private.write_private(link, b"secret")
    assert victim.read_bytes() == b"keep"
    assert not link.is_symlink() and link.read_bytes() == b"secret" and mode(link) == 0o600


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    with pytest.raises(RuntimeError), private.private_output(target) as stream:
        stream.write(b"half")
        raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [0o000, 0o022])
def test_an_appended_file_is_made_private_and_an_old_one_keeps_its_mode(
    tmp_path: Path, umask, value: int
) -> None:
    umask(value)
    new = tmp_path / "log.jsonl"
    fd = private.open_append(new)
    os.write(fd, b"a\n")
    os.close(fd)
    assert mode(new) == 0o600
    fd = private.open_append(new)
    os.write(fd, b"b\n")
    os.close(fd)
    assert new.read_bytes() == b"a\nb\n"
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"")
    old.chmod(0o640)
    os.close(private.open_append(old))
    assert mode(old) == 0o640


def test_an_appended_file_is_not_opened_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    (tmp_path / "state.jsonl").symlink_to(victim)
    with pytest.raises(OSError):
        private.open_append(tmp_path / "state.jsonl")
    assert victim.read_bytes() == b""


def test_new_file_removes_a_leftover_and_makes_a_private_one(tmp_path: Path, umask) -> None:
    umask(0o000)
    leftover = tmp_path / "state.tmp"
    leftover.write_bytes(b"stale")
    leftover.chmod(0o666)
    fd = private.new_file(leftover)
    os.close(fd)
    assert leftover.read_bytes() == b"" and mode(leftover) == 0o600


@pytest.mark.parametrize(
    ("dir_mode", "group", "expected"),
    [
        (0o700, False, None),
        (0o750, True, None),
        (0o755, False, "other users can read this data directory (mode 0755)"),
        (0o777, False, "other users can write to this data directory (mode 0777)"),
        (0o750, False, "its group can read this data directory (mode 0750)"),
        (0o770, True, "its group can write to this data directory (mode 0770)"),
        (0o700, True, "group access was asked for, but the group cannot open"),
    ],
)
def test_the_warning_about_an_existing_data_directory(
    tmp_path: Path, dir_mode: int, group: bool, expected: str | None
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(dir_mode)
    found = private.exposure_warning(data, group=group)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found
        assert f"chmod {0o750 if group else 0o700:o} {data}" in found


def test_an_exposed_data_directory_is_warned_about_once_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    assert private.data_directory(data) is False
    assert private.data_directory(data) is False
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"labctl: warning: {data}: other users")
    assert mode(data) == 0o755
    # A process started from this one (a supervised run) inherits "said already".
    assert str(data.resolve()) in os.environ["LABCTL_MODE_WARNED"]


def test_a_new_data_directory_is_made_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], umask
) -> None:
    umask(0o000)
    assert private.data_directory(tmp_path / "new" / "data") is True
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "data") == 0o700
    assert capsys.readouterr().err == ""
