"""Every contract citation in code and tests resolves to `docs/spec/` (issue: a clone must
be able to look up each `api.md §3.4`, `D7`, `R3` and `S4c` it reads).

Citations are looked for in comments and string literals (docstrings included) of every
Python file of the project; identifiers that merely look like a citation are not read.
"""

from __future__ import annotations

import io
import re
import tokenize
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec"
SOURCES = ("shared", "server", "reporter", "simulator", "cli", "bench", "tests", "packaging")

SECTION = re.compile(r"\b([a-z0-9-]+)\.md §(\d+(?:\.\d+)*)")
FIELD = re.compile(r"\{[^{}]*\}")  # f-string fields hold code, not prose
ITEM = re.compile(r"(?<![\w.-])([DRS])(\d+)([a-z]?)(?![\w-])")


def python_files() -> Iterator[Path]:
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if ".venv" not in path.parts:
                yield path


def prose(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, text) of every comment and string literal: where citations are written."""
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            yield token.start[0], FIELD.sub("", token.string)


@lru_cache(maxsize=None)
def sections(doc: str) -> Set[str]:
    """Numbers of the headings of one spec file, e.g. {"1", "1.1", "3.3.1"}."""
    path = SPEC / f"{doc}.md"
    if not path.is_file():
        path = SPEC.parent / f"{doc}.md"  # the design notes beside the contract (docs/ha.md, ...)
    if not path.is_file():
        return set()
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#+\s+(?:§\s*)?(\d+(?:\.\d+)*)\.?\s", line)
        if match:
            found.add(match.group(1))
    return found


@lru_cache(maxsize=None)
def items() -> Dict[str, Set[str]]:
    """The numbered items: D in reference-defects.md, R in reporter.md, S in operators.md."""
    defects = (SPEC / "reference-defects.md").read_text(encoding="utf-8")
    reporter = (SPEC / "reporter.md").read_text(encoding="utf-8")
    operators = (SPEC / "operators.md").read_text(encoding="utf-8")
    rules = set(re.findall(r"^\| (S\d+[a-z]?) \|", operators, re.M))
    return {
        "D": set(re.findall(r"^\*\*(D\d+)\.", defects, re.M)),
        "R": set(re.findall(r"^\| (R\d+) \|", reporter, re.M)),
        "S": rules | {rule.rstrip("abcdef") for rule in rules},  # "S4" cites the S4a-S4f group
    }


def unresolved() -> List[str]:
    known = items()
    problems = []
    for path in python_files():
        if path == Path(__file__).resolve():
            continue  # its own examples of citations that must not resolve
        rel = path.relative_to(ROOT)
        for line, text in prose(path):
            for doc, number in SECTION.findall(text):
                if number not in sections(doc):
                    problems.append(f"{rel}:{line}: {doc}.md §{number}")
            for letter, number, suffix in ITEM.findall(text):
                name = f"{letter}{number}{suffix}"
                if name not in known[letter] and f"{letter}{number}" not in known[letter]:
                    problems.append(f"{rel}:{line}: {name}")
    return problems


def test_spec_items_are_numbered_where_the_checker_looks() -> None:
    known = items()
    assert len(known["D"]) >= 32 and len(known["R"]) >= 9 and {"S0", "S4c", "S6"} <= known["S"]
    assert {"1.1", "2.6", "3.3.1"} <= sections("api")


def test_every_citation_resolves_to_docs_spec() -> None:
    problems = unresolved()
    assert not problems, "citations that do not resolve in docs/spec/:\n" + "\n".join(problems)


@pytest.mark.parametrize("text, expected", [
    ("# api.md §9.9 is not a section", ["api.md §9.9"]),
    ("# D999 does not exist", ["D999"]),
    ("# D2 and S4c and R3 do", []),
])
def test_the_checker_finds_what_does_not_resolve(tmp_path: Path, text: str, expected: List[str]) -> None:
    """The check itself can fail: a made-up citation is reported."""
    found = []
    for doc, number in SECTION.findall(text):
        if number not in sections(doc):
            found.append(f"{doc}.md §{number}")
    for letter, number, suffix in ITEM.findall(text):
        if f"{letter}{number}{suffix}" not in items()[letter] and f"{letter}{number}" not in items()[letter]:
            found.append(f"{letter}{number}{suffix}")
    assert found == expected
