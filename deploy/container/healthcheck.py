"""Container HEALTHCHECK of the BOS image: one check for whichever BOS process is PID 1.

bos-operators → `bos-operators --check-liveness` (its liveness file is fresh);
anything else (bos-server) → `GET /v2/healthz` on BOS_PORT answers 200, which it
does only while Redis is reachable. Exit 0 healthy, 1 not. Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from typing import List, Optional


def pid1_argv(path: str = "/proc/1/cmdline") -> List[str]:
    try:
        with open(path, "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def check(argv: List[str], port: str, timeout: float = 2.5) -> int:
    if any(os.path.basename(part) == "bos-operators" for part in argv[:2]):
        return subprocess.run(["bos-operators", "--check-liveness"], check=False).returncode
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/healthz", timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def main(cmdline: Optional[str] = None) -> int:
    return check(pid1_argv(cmdline or "/proc/1/cmdline"), os.environ.get("BOS_PORT", "9000"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
