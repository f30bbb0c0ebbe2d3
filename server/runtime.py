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
few seconds returns them (issue 13: API RSS at 100,000 nodes). Fixing the mmap threshold
low (every large block its own mapping) cost 16-27 % more CPU on bulk writes and full
listings in page faults. Left to itself, glibc raises its mmap threshold to the largest
block freed so far, yet still maps a block of that very size on its own (each seed PUT's
1.7 MB body buffer: 1,000 components), and its trim threshold to twice that, so a request
that frees more than a few MiB at the heap's top (its records, script arguments and answer)
gives those pages back at once, and the next request faults them in again. So the API workers fix both thresholds high (tune_malloc):
blocks up to 32 MiB come from the heap, its top is kept, and the periodic trim is what
gives free pages back, at most a few seconds later.
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


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameters
MMAP_THRESHOLD = 32 * 1024 * 1024  # the most glibc's own adjustment reaches (64-bit)
TRIM_THRESHOLD = 64 * 1024 * 1024


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds high (module docstring); False where that does not apply.
    Only for a process that also runs trim_malloc_periodically: nothing else gives the heap's top back."""
    mallopt = function("mallopt")
    if mallopt is None or function("malloc_trim") is None:  # not glibc (musl has mallopt, ignoring these)
        return False
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))


TRIM_SECONDS = 5.0


async def trim_malloc_periodically(seconds: float = TRIM_SECONDS) -> None:
    """Give the heap's free pages back to the system every `seconds` (a task of each worker)."""
    malloc_trim = function("malloc_trim")  # glibc only
    if malloc_trim is None:
        return
    while True:
        await asyncio.sleep(seconds)
        malloc_trim(0)
