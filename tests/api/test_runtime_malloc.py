"""The API workers' periodic malloc_trim (server/runtime.py, issue 13's API memory) gives back
the free pages left inside glibc's heap. Each case runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bos_server.libc import function

pytestmark = pytest.mark.skipif(function("malloc_trim") is None, reason="glibc only")

MIB = 2 ** 20
PRELUDE = """
import asyncio, sys
from pathlib import Path
from bos_server import runtime

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
"""

# 200,000 blocks of 1 KiB (kernel parameters, JSON parts), freed but for one at the heap's top.
SMALL = PRELUDE + """
blocks = [bytes(1024) + bytes([n % 256]) for n in range(200_000)]
keep = blocks[-1]
del blocks
before = rss()

async def trim():
    task = asyncio.ensure_future(runtime.trim_malloc_periodically(0.01))
    await asyncio.sleep(0.2)
    task.cancel()

if sys.argv[1] == "trim":
    asyncio.run(trim())
print(before - rss())
"""


def _printed(script: str, *args: str) -> int:
    """The number `script` prints (run in a fresh interpreter with `args`)."""
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_the_periodic_trim_gives_back_the_heaps_free_pages() -> None:
    assert _printed(SMALL, "trim") > 100 * MIB
    assert _printed(SMALL, "none") < 30 * MIB  # what the trim is for: freed, but still resident


# A seed PUT's pattern: ~16 MiB of blocks live at once (a 1.7 MB body, records, script arguments,
# the answer), all freed at the end of the request; the minor page faults of the second request
# are counted (the first one grows the heap either way).
REQUESTS = PRELUDE + """
import resource

if sys.argv[1] == "tuned":
    assert runtime.tune_malloc()
size, count = int(sys.argv[2]), int(sys.argv[3])

def request():
    blocks = [bytearray(size) for _ in range(count)]
    for block in blocks:
        block[::4096] = bytes(len(block[::4096]))  # touch every page
    del blocks

request()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
request()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


@pytest.mark.parametrize("size, count", [(2 * MIB, 8), (64 * 1024, 256)], ids=["mmap-threshold", "trim-threshold"])
def test_tuned_workers_keep_freed_blocks_for_the_next_request(size: int, count: int) -> None:
    """tune_malloc: the pages a request freed serve the next one, not faulted in again (the
    periodic trim gives them back, test above). By default glibc maps every block as large as
    the largest freed so far on its own (the same 2 MiB each time), and gives a heap top of
    more than its trim threshold back at once."""
    pages = size * count // 4096
    assert _printed(REQUESTS, "tuned", str(size), str(count)) < pages // 10
    assert _printed(REQUESTS, "default", str(size), str(count)) > pages // 2  # what the tuning is for
