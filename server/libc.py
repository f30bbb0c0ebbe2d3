"""The C library, for the few Linux calls the standard library lacks (prctl for the
workers' parent-death signal, glibc's malloc_trim). Kept apart from runtime.py so the
slim worker supervisor (workers.py) can use it without importing asyncio."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any, Optional


@functools.lru_cache(maxsize=None)
def libc() -> Optional[ctypes.CDLL]:
    """The process's C library on Linux (errno readable with ctypes.get_errno()), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def function(name: str) -> Optional[Any]:
    """A C library function, or None where there is none (another OS, or a libc without it: musl
    has no malloc_trim)."""
    lib = libc()
    return getattr(lib, name, None) if lib is not None else None
