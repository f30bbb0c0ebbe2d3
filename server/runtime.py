"""Process-wide settings of the long-running BOS processes (API workers, operators).

The garbage collector: BOS decodes large JSON documents (a listing page of
2,800 records, a bulk write, a 100,000-record selection), creating millions of
acyclic dicts and lists that die young. With CPython's default gen-0 threshold
of 700 allocations every one of them is traced by several collections before
it is freed, which costs a third of a 100,000-component listing. A larger
gen-0 threshold lets them die untraced; objects alive after start-up (modules,
routes, schemas) are moved out of the collector's way by `gc.freeze()`. Reference
counting still frees everything acyclic at once; only cyclic garbage waits longer.

The C allocator (glibc): what a worker frees (the 1-2 KiB kernel-parameter strings of
thousands of records, bulk-write bodies, response parts) stays in its heap, and free pages
in the middle of the heap are only given back to the system by malloc_trim. A trim every
few seconds returns them (issue 13: API RSS at 100,000 nodes). glibc's thresholds are left
as they are: fixing the mmap threshold (every large block its own mapping) cost 16-27 %
more CPU on bulk writes and full listings in page faults.
"""

from __future__ import annotations

import asyncio
import gc

from .libc import function

GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Call once start-up objects exist (after imports, before serving)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


TRIM_SECONDS = 5.0


async def trim_malloc_periodically(seconds: float = TRIM_SECONDS) -> None:
    """Give the heap's free pages back to the system every `seconds` (a task of each worker)."""
    malloc_trim = function("malloc_trim")  # glibc only
    if malloc_trim is None:
        return
    while True:
        await asyncio.sleep(seconds)
        malloc_trim(0)
