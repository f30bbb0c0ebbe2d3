"""Watched files: pyinotify where it works, a cheap poll where it does not; the mode is logged."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Dict, Iterator, Set

import pytest

from bos_reporter.watch import FileWatcher, load_pyinotify, mount_fs_type

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
41 22 0:40 / /home rw,relatime shared:9 - nfs4 server:/home rw,vers=4.2
42 22 0:41 / /mnt/my\\040share rw - fuse.sshfs host: rw
43 30 0:42 / /run/user/0 rw - tmpfs tmpfs rw
"""


@pytest.fixture
def files(tmp_path: Path) -> Dict[str, str]:
    (tmp_path / "run").mkdir()
    return {str(tmp_path / "bos-reporter.conf"): "config", str(tmp_path / "token"): "token",
            str(tmp_path / "run" / "report-now"): "trigger"}


def watch(files: Dict[str, str], mode: str = "auto", **kw: object) -> Iterator[FileWatcher]:
    watcher = FileWatcher(files, mode, poll_interval=0.05, **kw)  # type: ignore[arg-type]
    try:
        yield watcher
    finally:
        watcher.close()


@pytest.fixture(params=["auto", "poll"])
def watcher(request: pytest.FixtureRequest, files: Dict[str, str]) -> Iterator[FileWatcher]:
    yield from watch(files, request.param)


def wait_for(watcher: FileWatcher, kind: str, timeout: float = 5.0) -> Set[str]:
    deadline = time.monotonic() + timeout
    seen: Set[str] = set()
    while kind not in seen and time.monotonic() < deadline:
        seen |= watcher.wait(deadline - time.monotonic())
    return seen


def test_pyinotify_imports_on_this_python() -> None:
    """3.9-3.11 use asyncore from the standard library, 3.12+ the pyasyncore backport."""
    assert hasattr(load_pyinotify(), "WatchManager")


def test_auto_mode_uses_inotify_for_every_file(files: Dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for watcher in watch(files):
        assert set(watcher.modes.values()) == {"inotify"}
    assert "with inotify" in caplog.text


def test_poll_mode_is_used_when_asked(files: Dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for watcher in watch(files, "poll"):
        assert set(watcher.modes.values()) == {"poll"}
    assert "by polling every 0.05s (BOS_REPORTER_WATCH=poll)" in caplog.text


def test_created_file_is_reported(watcher: FileWatcher, files: Dict[str, str]) -> None:
    trigger = next(p for p, k in files.items() if k == "trigger")
    Path(trigger).touch()
    assert wait_for(watcher, "trigger") == {"trigger"}


def test_rewritten_file_is_reported(watcher: FileWatcher, files: Dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "token").write_text("one")
    watcher.wait(0.2)  # settle
    (tmp_path / "token").write_text("two, longer")
    assert "token" in wait_for(watcher, "token")


def test_file_replaced_by_rename_is_reported(watcher: FileWatcher, tmp_path: Path) -> None:
    new = tmp_path / "conf.tmp"
    new.write_text("NODE_IDENTITY=x1\n")
    new.replace(tmp_path / "bos-reporter.conf")
    assert "config" in wait_for(watcher, "config")


def test_deleted_file_is_reported(files: Dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")
    for mode in ("auto", "poll"):
        for watcher in watch(files, mode):
            (tmp_path / "token").write_text("t")
            watcher.wait(0.1)
            (tmp_path / "token").unlink()
            assert "token" in wait_for(watcher, "token"), mode


def test_unrelated_files_are_ignored(watcher: FileWatcher, tmp_path: Path) -> None:
    (tmp_path / "other").write_text("x")
    (tmp_path / "run" / "other").write_text("x")
    assert watcher.wait(0.3) == set()


def test_wait_times_out_with_no_change(watcher: FileWatcher) -> None:
    start = time.monotonic()
    assert watcher.wait(0.2) == set()
    assert 0.15 <= time.monotonic() - start < 2


def test_no_inotify_instance_left_falls_back_to_polling(files: Dict[str, str], tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    def exhausted() -> object:
        raise OSError("Cannot initialize new instance of inotify, Errno=Too many open files (EMFILE)")

    caplog.set_level(logging.INFO)
    for watcher in watch(files, load_inotify=exhausted):
        assert set(watcher.modes.values()) == {"poll"}
        (tmp_path / "run" / "report-now").touch()
        assert "trigger" in wait_for(watcher, "trigger")
    assert "inotify unavailable: Cannot initialize new instance of inotify" in caplog.text


def test_missing_pyinotify_falls_back_to_polling(files: Dict[str, str]) -> None:
    def missing() -> object:
        raise ImportError("No module named 'asyncore'")

    for watcher in watch(files, load_inotify=missing):
        assert set(watcher.modes.values()) == {"poll"}


def test_filesystem_without_events_is_polled(files: Dict[str, str], tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    nfs = f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n41 22 0:40 / {tmp_path} rw - nfs4 srv:/x rw\n"
    for watcher in watch(files, mountinfo=lambda: nfs):
        assert set(watcher.modes.values()) == {"poll"}
    assert "nfs4 file systems deliver no inotify events" in caplog.text


def test_missing_directory_is_polled_and_the_others_use_inotify(tmp_path: Path) -> None:
    files = {str(tmp_path / "bos-reporter.conf"): "config", str(tmp_path / "later" / "report-now"): "trigger"}
    for watcher in watch(files):
        assert watcher.modes == {str(tmp_path / "bos-reporter.conf"): "inotify",
                                 str(tmp_path / "later" / "report-now"): "poll"}
        (tmp_path / "later").mkdir()
        (tmp_path / "later" / "report-now").touch()
        assert "trigger" in wait_for(watcher, "trigger")


@pytest.mark.parametrize("path, fs_type", [
    ("/etc/bos-reporter/bos-reporter.conf", "ext4"),
    ("/run/bos-reporter/report-now", "tmpfs"),
    ("/run/user/0/x", "tmpfs"),
    ("/home/admin/token", "nfs4"),
    ("/homework", "ext4"),
    ("/mnt/my share/token", "fuse.sshfs"),
])
def test_mount_fs_type_takes_the_longest_mount_point(path: str, fs_type: str) -> None:
    assert mount_fs_type(path, MOUNTINFO) == fs_type


def test_mount_fs_type_of_this_machine_is_known(tmp_path: Path) -> None:
    with open("/proc/self/mountinfo") as handle:
        assert mount_fs_type(os.path.realpath(tmp_path), handle.read())


def test_removed_directory_falls_back_to_polling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    run.mkdir()
    files = {str(run / "report-now"): "trigger"}
    for watcher in watch(files):
        assert watcher.modes[str(run / "report-now")] == "inotify"
        run.rmdir()
        assert "trigger" in wait_for(watcher, "trigger")
        assert watcher.modes[str(run / "report-now")] == "poll"
        run.mkdir()
        (run / "report-now").touch()
        assert "trigger" in wait_for(watcher, "trigger")
