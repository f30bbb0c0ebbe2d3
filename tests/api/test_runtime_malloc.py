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


def _released(script: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_the_periodic_trim_gives_back_the_heaps_free_pages() -> None:
    assert _released(SMALL, "trim") > 100 * MIB
    assert _released(SMALL, "none") < 30 * MIB  # what the trim is for: freed, but still resident
