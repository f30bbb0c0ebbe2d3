"""Logging to standard error with timestamp, level and logger name (reporter.md §8, R1).

The handler and the level go on the root logger, the one every module's logger
(and pyinotify's, urllib3's) propagates to, so `bos_log_level` really applies.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional, TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "bos-reporter"


def configure_logging(level: int, stream: Optional[TextIO] = None) -> logging.Handler:
    """Install (once) the stderr handler on the root logger and set the level."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    # urllib3's DEBUG lines would print every connection; keep them for DEBUG only.
    logging.getLogger("urllib3").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    return handler
