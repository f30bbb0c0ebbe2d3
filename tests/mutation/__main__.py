"""Run every mutant (or those named) and report which tests went red: `python -m tests.mutation`."""

from __future__ import annotations

import argparse
import sys

from .runner import run_mutant
from .mutants import MUTANTS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"mutants to run (default: all of {', '.join(MUTANTS)})")
    names = parser.parse_args().names or list(MUTANTS)
    unknown = [name for name in names if name not in MUTANTS]
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(unknown)}")
    survived = []
    for name in names:
        result = run_mutant(name)
        print(f"{name}: {MUTANTS[name].mechanism}")
        print(f"  red: {', '.join(result.failed) or 'none'}" if result.killed else "  SURVIVED: all tests passed")
        if not result.killed:
            survived.append(name)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
