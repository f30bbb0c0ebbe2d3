"""Client-supplied values cannot forge or break lines of the API log (server/logs.py).

A `bss_token` is logged when it is unknown; with a newline in it, it used to start
a line of its own that looked like any other record.
"""

from __future__ import annotations

import logging
import re

import requests

from bos_server.logs import EscapingFormatter, printable
from bos_sim.stack import ApiServer, wait_until

RECORD_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ \S+: ")
FORGED = "2030-01-01 00:00:00,000 ERROR bos_server.api: FORGED admin deleted every session"


def test_a_token_with_a_newline_cannot_forge_a_log_line(tmp_path, redis_server) -> None:
    api = ApiServer(tmp_path, redis_server.url)
    try:
        token = "t0k\n" + FORGED + "\r\x1b[2J\u2028\x00end"
        resp = requests.put(f"{api.url}/v2/components/xlog1", json={"actual_state": {"bss_token": token}}, timeout=10)
        assert resp.status_code == 200, resp.text
        wait_until(lambda: "Unknown BSS referral token" in api.log_path.read_text(errors="replace"), 10, "log line")
    finally:
        assert api.stop() == 0
    text = api.log_path.read_text(errors="strict")
    lines = text.splitlines()
    assert not any(line.startswith(FORGED[:20]) for line in lines), text
    warning = [line for line in lines if "Unknown BSS referral token" in line]
    assert len(warning) == 1 and "t0k\\n2030-01-01" in warning[0] and "\\x1b[2J\\u2028\\x00end" in warning[0], warning
    for line in lines:  # every line is a record start, or an indented traceback line
        assert RECORD_START.match(line) or line.startswith("    "), line


def test_tracebacks_are_indented_so_exception_text_cannot_start_a_line() -> None:
    formatter = EscapingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad\nERROR forged")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("a\nb",), exc_info=True)
        import sys
        record.exc_info = sys.exc_info()
    out = formatter.format(record).split("\n")
    assert out[0] == "ERROR failed: a\\nb"
    assert all(line.startswith("    ") for line in out[1:]), out
    assert printable("\udcff\x85ok") == "\\udcff\\x85ok"
