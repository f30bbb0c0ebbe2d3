"""`make demo KEEP=1`: the demo prints the dashboard URL and, on a terminal, keeps the stack
up after the session until Ctrl-C; without a terminal it does not wait."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests


def _read_until(fd: int, pattern: str, timeout: float) -> str:
    text = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096).decode(errors="replace")
        except OSError:
            break
        text += chunk
        if re.search(pattern, text):
            return text
    raise AssertionError(f"did not see {pattern!r} within {timeout:.0f}s:\n{text[-2000:]}")


def test_keep_running_on_a_terminal_until_ctrl_c() -> None:
    controller, terminal = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bos_sim.demo", "--nodes", "8", "--speed", "20", "--keep-running"],
                            stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    os.close(terminal)
    try:
        text = _read_until(controller, r"press Ctrl-C to stop", 240)
        url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/dashboard/\S*)", text).group(1)
        assert "demo-boot" in url
        page = requests.get(url.split("#")[0], timeout=10)  # still up after the session
        assert page.status_code == 200 and "app.js" in page.text
        proc.send_signal(signal.SIGINT)
        # The stack stops its four processes one after the other, each given 10 s after SIGTERM and
        # 5 s more after SIGKILL (simulator/stack.py): 60 s was its own worst case, reached once on a
        # clean-clone CI run at load (stop 32); the exit itself is the condition waited for.
        assert proc.wait(120) == 0
        _read_until(controller, r"demo succeeded", 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(controller)


def test_keep_running_without_a_terminal_does_not_wait(capsys) -> None:
    from bos_sim import demo
    demo.keep_running(demo.Api("http://127.0.0.1:1"))  # pytest's stdin is not a terminal: returns at once
    assert "needs a terminal" in capsys.readouterr().out
