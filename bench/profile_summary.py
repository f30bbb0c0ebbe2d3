"""Summarise py-spy collapsed stacks (`--format raw`): where each process spent its CPU.

    .venv/bin/python -m bench.profile_summary PROFILE.txt [--top 25] [--match server/]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional

ROOT = str(Path(__file__).resolve().parent.parent) + "/"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def frames(stack: str) -> List[str]:
    out = []
    for raw in stack.split(";"):
        match = FRAME.match(raw)
        if match is None:
            continue  # process / thread markers
        path = match["file"]
        for marker in ("site-packages/", "lib/python3"):
            if marker in path:
                path = path.split(marker, 1)[1]
        out.append(f"{match['func']} ({path.split(ROOT, 1)[-1]})")
    return out


def summarise(path: Path, top: int, match: Optional[str]) -> str:
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        chain = frames(stack)
        if not chain:
            continue
        own[chain[-1]] += n
        for name in set(chain):
            inclusive[name] += n
    lines = [f"{path.name}: {total} samples"]
    lines.append("  self:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive:")
    picked = [(name, n) for name, n in inclusive.most_common() if match is None or match in name][:top]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in picked]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", help="only inclusive entries whose name contains this (e.g. bos_server)")
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarise(path, args.top, args.match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
