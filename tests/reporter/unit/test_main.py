"""The executable (reporter.md §3, §7, §8, R1-R5): real processes, a local HTTP server for BOS."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Dict, List, Optional

import pytest

from bos_reporter.identity import NO_IDENTITY_MESSAGE
from bos_reporter.main import NO_TOKEN_MESSAGE

from .conftest import StubBos

XNAME = "x3000c0s19b1n0"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def reporter_env(tmp_path: Path, **extra: str) -> Dict[str, str]:
    """The environment of a test run: no config file, no stray settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOS_REPORTER_", "NODE_IDENTITY"))}
    env["BOS_REPORTER_CONFIG"] = str(tmp_path / "absent.conf")
    env.update(extra)
    return env


def cmdline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cmdline"
    path.write_text(text + "\n")
    return path


def run(tmp_path: Path, args: List[str], env: Optional[Dict[str, str]] = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bos_reporter", *args], env=env or reporter_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def read_until(stream: IO[str], text: str, timeout: float = 10) -> List[str]:
    """The lines of `stream` up to the first that holds `text` (a process's own word that it got
    somewhere, not a sleep); fails after `timeout` s or at the end of the stream."""
    lines: List[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line)
            if text in line:
                found.set()
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert found.wait(timeout), f"no line with {text!r} within {timeout}s: {''.join(lines)}"
    return lines


def once(tmp_path: Path, stub_url: str, text: str, token_file: Path, *more: str,
         env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return run(tmp_path, ["--once", "--cmdline-file", str(cmdline(tmp_path, text)), "--api-url", stub_url,
                          "--token-file", str(token_file), *more], env)


def test_once_reports_and_exits_0(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    done = once(tmp_path, stub.url, f"quiet xname={XNAME} bss_referral_token=tok-1", token_file)
    assert done.returncode == 0, done.stderr
    [request] = stub.requests
    assert (request.method, request.path) == ("PATCH", f"/v2/components/{XNAME}")
    assert request.json() == {"id": XNAME, "actual_state": {"bss_token": "tok-1"}}
    assert request.headers["Authorization"] == "Bearer bearer-1"


def test_once_exits_1_when_every_attempt_fails(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    stub.reply((503, b"maintenance"))
    done = once(tmp_path, stub.url, f"xname={XNAME} bss_referral_token=t", token_file, "--attempts", "1")
    assert done.returncode == 1
    assert done.stderr.count("WARNING bos_reporter.agent: BOS answered 503: maintenance") == 1
    assert "ERROR bos_reporter.agent: Giving up after 1 attempts (--once)." in done.stderr


def test_r4_no_identity_is_an_error_and_exit_78(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    done = once(tmp_path, stub.url, "quiet bss_referral_token=t", token_file)
    assert done.returncode == 78
    assert f"ERROR bos_reporter: {NO_IDENTITY_MESSAGE}" in done.stderr
    assert "Traceback" not in done.stderr and stub.requests == []


def test_node_identity_env_beats_xname(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    env = reporter_env(tmp_path, NODE_IDENTITY="x9000c0s0b0n0")
    done = once(tmp_path, stub.url, f"xname={XNAME} bss_referral_token=t", token_file, env=env)
    assert done.returncode == 0, done.stderr
    assert stub.requests[0].path == "/v2/components/x9000c0s0b0n0"


def test_r5_no_referral_token_warns_once_and_exits_0(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    done = run(tmp_path, ["--cmdline-file", str(cmdline(tmp_path, f"xname={XNAME} quiet")),
                          "--api-url", stub.url, "--token-file", str(token_file)], timeout=10)
    assert done.returncode == 0
    assert done.stderr.count("WARNING") == 1 and f"WARNING bos_reporter: {NO_TOKEN_MESSAGE}" in done.stderr
    assert stub.requests == []


def test_r1_info_lines_appear_with_timestamp_and_level(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    done = once(tmp_path, stub.url, f"xname={XNAME} bss_referral_token=t bos_log_level=info", token_file)
    lines = done.stderr.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), done.stderr
    assert any(" INFO bos_reporter.agent: Attempt 1 of contacting BOS..." in line for line in lines)
    assert any(f"INFO bos_reporter.agent: Updated the actual_state record for BOS component '{XNAME}'." in line
               for line in lines)


def test_r1_default_level_is_warning(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    done = once(tmp_path, stub.url, f"xname={XNAME} bss_referral_token=t", token_file)
    assert done.returncode == 0 and done.stderr == ""


def test_malformed_log_level_warns_and_uses_warning(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    done = once(tmp_path, stub.url, f"xname={XNAME} bss_referral_token=t bos_log_level=loud", token_file)
    assert done.returncode == 0
    assert "WARNING bos_reporter: bos_log_level='loud' is not one of" in done.stderr and " INFO " not in done.stderr


@pytest.mark.parametrize("frequency", ["1.5h", "4", "0h"])
def test_r3_malformed_frequency_warns_and_falls_back_to_4h(stub: StubBos, tmp_path: Path, token_file: Path,
                                                           frequency: str) -> None:
    text = f"xname={XNAME} bss_referral_token=t bos_update_frequency={frequency}"
    done = once(tmp_path, stub.url, text, token_file)
    assert done.returncode == 0, done.stderr
    assert f"bos_update_frequency='{frequency}' is not a positive whole number" in done.stderr
    assert "using 4h" in done.stderr and "Traceback" not in done.stderr


def test_unreadable_cmdline_is_a_configuration_error(tmp_path: Path) -> None:
    done = run(tmp_path, ["--once", "--cmdline-file", str(tmp_path / "absent")])
    assert done.returncode == 78 and "cannot read the kernel command line" in done.stderr


def test_bad_flag_is_a_configuration_error_not_a_crash_loop(tmp_path: Path) -> None:
    assert run(tmp_path, ["--frobnicate"]).returncode == 78


def test_bad_endpoint_is_a_configuration_error(tmp_path: Path, token_file: Path) -> None:
    done = once(tmp_path, "api-gw-without-scheme", f"xname={XNAME} bss_referral_token=t", token_file)
    assert done.returncode == 78 and "is not an http(s) URL" in done.stderr


def test_config_file_supplies_the_settings(stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    conf = tmp_path / "bos-reporter.conf"
    conf.write_text(f"# site settings\nBOS_REPORTER_ENDPOINT={stub.url}\nBOS_REPORTER_TOKEN_FILE={token_file}\n"
                    f"NODE_IDENTITY=x1000c0s0b0n0\nBOS_REPORTER_CMDLINE={cmdline(tmp_path, 'bss_referral_token=t')}\n")
    done = run(tmp_path, ["--once", "--config", str(conf)])
    assert done.returncode == 0, done.stderr
    assert stub.requests[0].path == "/v2/components/x1000c0s0b0n0"


def test_daemon_reports_at_start_and_on_trigger_then_stops_cleanly_on_sigterm(
        stub: StubBos, tmp_path: Path, token_file: Path) -> None:
    trigger = tmp_path / "run" / "report-now"
    trigger.parent.mkdir()
    env = reporter_env(tmp_path, BOS_REPORTER_TRIGGER_FILE=str(trigger))
    text = f"xname={XNAME} bss_referral_token=t bos_update_frequency=4h bos_log_level=INFO"
    proc = subprocess.Popen([sys.executable, "-m", "bos_reporter", "--cmdline-file", str(cmdline(tmp_path, text)),
                             "--api-url", stub.url, "--token-file", str(token_file)],
                            env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines: List[str] = []
    try:
        assert proc.stderr is not None
        lines = read_until(proc.stderr, "Next report in ")  # in its periodic wait now
        assert len(stub.requests) == 1
        trigger.touch()
        stub.wait_for(2, timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=10)
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert "Now periodically reporting every ~10800 seconds." in err
    assert "with inotify" in err
