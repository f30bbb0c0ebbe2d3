"""Process-wide settings of the long-running BOS processes (API workers, operators).

The garbage collector: BOS decodes large JSON documents (a listing page of
2,800 records, a bulk write, a 100,000-record selection), creating millions of
acyclic dicts and lists that die young. With CPython's default gen-0 threshold
of 700 allocations every one of them is traced by several collections before
it is freed, which costs a third of a 100,000-component listing. A larger
gen-0 threshold lets them die untraced; objects alive after start-up (modules,
routes, schemas) are moved out of the collector's way by `gc.freeze()`. Reference
counting still frees everything acyclic at once; only cyclic garbage waits longer.

The C allocator (glibc): a worker's large, short-lived blocks (2 MiB bulk-write bodies,
encoded response parts, the 1-2 KiB kernel-parameter strings of thousands of records)
otherwise stay in its heap after use: glibc raises its mmap threshold to the largest
block freed so far, so later large blocks come from the heap, and free pages in the
middle of the heap are only given back by malloc_trim. Setting the thresholds turns that
adjustment off: with a fixed mmap threshold large blocks are their own mappings, returned when freed, a small trim threshold gives
the heap's top back, and a trim every few seconds the free pages inside it (issue 13:
API RSS at 100,000 nodes). Two malloc arenas are plenty for one event-loop thread.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import platform
import sys
from typing import Any, Optional

GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Call once start-up objects exist (after imports, before serving)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt() parameters
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 512 * 1024
ARENA_MAX = 2
TRIM_SECONDS = 5.0


def _glibc() -> Optional[Any]:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds (module docstring); False where it does not apply."""
    if _LIBC is None:
        return False
    return all(_LIBC.mallopt(param, value) == 1 for param, value in
               ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)))


async def trim_malloc_periodically(seconds: float = TRIM_SECONDS) -> None:
    """Give the heap's free pages back to the system every `seconds` (a task of each worker)."""
    if _LIBC is None:
        return
    while True:
        await asyncio.sleep(seconds)
        _LIBC.malloc_trim(0)
