"""Process-wide settings of the long-running BOS processes (API workers, operators).

The garbage collector: BOS decodes large JSON documents (a listing page of
2,800 records, a bulk write, a 100,000-record selection), creating millions of
acyclic dicts and lists that die young. With CPython's default gen-0 threshold
of 700 allocations every one of them is traced by several collections before
it is freed, which costs a third of a 100,000-component listing. A larger
gen-0 threshold lets them die untraced; objects alive after start-up (modules,
routes, schemas) are moved out of the collector's way by `gc.freeze()`. Reference
counting still frees everything acyclic at once; only cyclic garbage waits longer.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Call once start-up objects exist (after imports, before serving)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
