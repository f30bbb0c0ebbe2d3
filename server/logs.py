"""Logging set-up shared by the server and the operators (option `logging_level`)."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(env_var: str) -> None:
    """Start-up level from the environment (invalid -> INFO); the option takes over later."""
    level = os.environ.get(env_var, "INFO").upper()
    logging.basicConfig(level=level if level in logging.getLevelNamesMapping() else "INFO", format=FORMAT)


def apply_level(level: str) -> None:
    wanted = getattr(logging, str(level).upper(), logging.INFO)
    root = logging.getLogger()
    if root.level != wanted:
        root.setLevel(wanted)
