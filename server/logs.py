"""Logging set-up shared by the server and the operators (option `logging_level`).

Log lines carry values that come from clients (BSS tokens, limits, IDs, header
values). One formatter, installed on every root handler, makes sure none of them
can forge a log line or break the handler: control characters (C0, DEL, C1, the
Unicode line and paragraph separators) and lone surrogates in the message are
written as escapes, and every line of a traceback is indented, so each record
starts exactly one line that begins with a timestamp.
"""

from __future__ import annotations

import logging
import os
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: "re.Match[str]") -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """`text` with every control character and lone surrogate escaped (`\\n`, `\\x1b`, `\\udcff`)."""
    return _UNSAFE.sub(_escape, text)


def _indent(text: str) -> str:
    return "\n".join("    " + printable(line) for line in text.split("\n"))


class EscapingFormatter(logging.Formatter):
    """The one place where logged values are made safe to write (no forged or broken lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return _indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indent(super().formatStack(stack_info))


def configure(env_var: str) -> None:
    """Start-up level from the environment (invalid -> INFO); the option takes over later."""
    level = os.environ.get(env_var, "INFO").upper()
    logging.basicConfig(level=level if level in logging.getLevelNamesMapping() else "INFO", format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(EscapingFormatter(FORMAT))


def apply_level(level: str) -> None:
    wanted = getattr(logging, str(level).upper(), logging.INFO)
    root = logging.getLogger()
    if root.level != wanted:
        root.setLevel(wanted)
