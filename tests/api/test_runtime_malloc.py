"""glibc malloc tuning of the API workers (server/runtime.py, issue 13's API memory): large
blocks freed go back to the system at once, and the periodic trim gives back the free pages
left inside the heap. Each case runs in a fresh interpreter (mallopt is process-wide)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bos_server import runtime

pytestmark = pytest.mark.skipif(runtime._LIBC is None, reason="glibc only")

MIB = 2 ** 20
PRELUDE = """
import asyncio, sys
from pathlib import Path
from bos_server import runtime

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

if sys.argv[1] == "tuned":
    assert runtime.tune_malloc()
"""

# One 1 MiB block freed raises glibc's own mmap threshold to 1 MiB; 150 more then come from the
# heap, and the last one kept pins its top: untuned, their 150 MiB stay resident after the free.
LARGE = PRELUDE + """
del bytearray(MIB_)[:]
blocks = [bytearray(MIB_) for _ in range(151)]
before = rss()
keep = blocks[-1]
del blocks
print(before - rss())
""".replace("MIB_", str(MIB))

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

if sys.argv[2] == "trim":
    asyncio.run(trim())
print(before - rss())
"""


def _released(script: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_large_blocks_go_back_when_freed() -> None:
    assert _released(LARGE, "tuned") > 120 * MIB
    assert _released(LARGE, "untuned") < 30 * MIB  # what the tuning is for (glibc's default)


def test_the_periodic_trim_gives_back_the_heaps_free_pages() -> None:
    assert _released(SMALL, "tuned", "trim") > 100 * MIB
    assert _released(SMALL, "tuned", "none") < 30 * MIB
