"""reporter.md §4: the token command, and the token file (re-read when it changes)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from bos_reporter.auth import CommandToken, FileToken, TokenError, token_source


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport os, sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_token_is_the_trimmed_stdout_of_the_command(tmp_path: Path) -> None:
    command = script(tmp_path, "get-token", "print('  eyJhbGciOi.token  ')")
    assert CommandToken(str(command), "/spire").get() == "eyJhbGciOi.token"


def test_token_command_may_have_arguments(tmp_path: Path) -> None:
    command = script(tmp_path, "get-token", "print(sys.argv[1] + '-' + sys.argv[2])")
    assert CommandToken(f"{command} --audience 'bos api'", "/spire").get() == "--audience-bos api"


def test_spire_agent_path_is_set_for_the_command_if_unset(tmp_path: Path) -> None:
    command = script(tmp_path, "get-token", "print(os.environ['SPIRE_AGENT_PATH'])")
    assert CommandToken(str(command), "/usr/bin/bos-reporter-spire-agent", env={}).get() == \
        "/usr/bin/bos-reporter-spire-agent"
    assert CommandToken(str(command), "/default", env={"SPIRE_AGENT_PATH": "/mine"}).get() == "/mine"


def test_failing_command_is_a_token_error_with_status_and_stderr(tmp_path: Path) -> None:
    command = script(tmp_path, "get-token", "sys.stderr.write('spire agent\\nnot ready\\n'); sys.exit(3)")
    with pytest.raises(TokenError, match="exited with status 3: spire agent not ready"):
        CommandToken(str(command), "/spire").get()


def test_missing_command_is_a_token_error(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="could not run"):
        CommandToken(str(tmp_path / "absent"), "/spire").get()


def test_command_printing_nothing_is_a_token_error(tmp_path: Path) -> None:
    command = script(tmp_path, "get-token", "print('   ')")
    with pytest.raises(TokenError, match="printed no token"):
        CommandToken(str(command), "/spire").get()


def test_hung_command_times_out(tmp_path: Path) -> None:
    command = script(tmp_path, "get-token", "import time; time.sleep(30)")
    with pytest.raises(TokenError, match="timed out"):
        CommandToken(str(command), "/spire", timeout=0.3).get()


def test_command_runs_before_every_attempt(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    command = script(tmp_path, "get-token", f"p = {str(counter)!r}\n"
                     "n = int(open(p).read()) + 1 if os.path.exists(p) else 1\n"
                     "open(p, 'w').write(str(n)); print('token-%d' % n)")
    source = CommandToken(str(command), "/spire")
    assert [source.get(), source.get()] == ["token-1", "token-2"]


def test_token_file_content_is_trimmed(token_file: Path) -> None:
    assert FileToken(str(token_file)).get() == "bearer-1"


def test_token_file_is_reread_when_it_changes(token_file: Path) -> None:
    source = FileToken(str(token_file))
    assert source.get() == "bearer-1"
    token_file.write_text("bearer-22\n")
    assert source.get() == "bearer-22"


def test_token_file_is_reread_after_invalidate_even_if_it_looks_unchanged(token_file: Path) -> None:
    source = FileToken(str(token_file))
    before = token_file.stat()
    assert source.get() == "bearer-1"
    token_file.write_text("bearer-2\n")  # same size
    os.utime(token_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.get() == "bearer-1"  # indistinguishable by stat: the cached value
    source.invalidate()  # what the watcher does on an inotify event, and what a 401 does
    assert source.get() == "bearer-2"


def test_token_file_replaced_by_rename_is_reread(token_file: Path) -> None:
    source = FileToken(str(token_file))
    assert source.get() == "bearer-1"
    new = token_file.with_name("token.new")
    new.write_text("bearer-9\n")
    new.replace(token_file)
    assert source.get() == "bearer-9"


def test_missing_or_empty_token_file_is_a_token_error(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read token file"):
        FileToken(str(tmp_path / "absent")).get()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(TokenError, match="is empty"):
        FileToken(str(empty)).get()


def test_token_file_is_used_instead_of_the_command_when_configured(token_file: Path) -> None:
    assert isinstance(token_source(str(token_file), "/bin/false", "/spire"), FileToken)
    assert isinstance(token_source(None, "/bin/false", "/spire"), CommandToken)
