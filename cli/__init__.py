"""`bos` command-line tool: the administrator's client of the BOS v2 API."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("bos-cli")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
