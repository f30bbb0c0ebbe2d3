"""The limit grammar against an independent reference evaluation (operators.md §6.3, api.md §4.4, D21).

`evaluate_limit` computes sets item by item. The reference below instead decides
each candidate node on its own, walking the items with one boolean, straight from
the spec's wording; hypothesis generates thousands of limits made of the pieces
that matter (names, `all`/`*`, `&`, `!`, commas, whitespace) and both must agree.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from bos_shared.limits import evaluate_limit, names_nothing, no_limit

CANDIDATES: FrozenSet[str] = frozenset({"x1", "x2", "x3", "x4", "x5"})
NAMES: Dict[str, FrozenSet[str]] = {
    "compute": frozenset({"x1", "x2", "x3"}),
    "blue": frozenset({"x2", "x9"}),  # x9 is not a candidate
    "Application_UAN": frozenset({"x4"}),
    "empty": frozenset(),
}
WORDS = sorted(CANDIDATES) + sorted(NAMES) + ["x9", "all", "*", "nosuch", "nid1"]
PIECES = WORDS + ["&", "!", ",", " ", "\t", ",,", "&!", "!&"]
EXAMPLES = 2000


def resolve(name: str) -> Optional[FrozenSet[str]]:
    return NAMES.get(name)


def reference_items(limit: str) -> List[Tuple[str, str]]:
    """Spec text: comma-separated; trim; drop items made only of `&`, `!` and whitespace."""
    items = []
    for raw in limit.split(","):
        item = raw.strip()
        if all(ch in "&!" or ch.isspace() for ch in item):
            continue
        op = item[0] if item[0] in "&!" else "+"
        name = item[1:].strip() if op != "+" else item
        items.append((op, name))
    return items


def reference_member(node: str, name: str) -> bool:
    if name in ("all", "*"):
        return node in CANDIDATES
    members = NAMES.get(name)
    return node in members if members is not None else node == name


def reference(limit: Optional[str]) -> FrozenSet[str]:
    """Each candidate decided alone: in L after walking the items left to right?"""
    if limit is None or limit == "":
        return CANDIDATES
    items = reference_items(limit)
    chosen = set()
    for node in CANDIDATES:
        inside = False
        for op, name in items:
            hit = reference_member(node, name)
            inside = (inside or hit) if op == "+" else (inside and hit) if op == "&" else (inside and not hit)
        if inside:
            chosen.add(node)
    return frozenset(chosen)


limits = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
separators_only = st.lists(st.sampled_from([",", "&", "!", " ", "\t", "& ", " !"]), min_size=1, max_size=10).map(
    "".join)


@settings(max_examples=EXAMPLES, deadline=None)
@given(limits)
def test_evaluation_matches_the_reference(limit: str) -> None:
    assert evaluate_limit(limit, set(CANDIDATES), resolve) == reference(limit)


@settings(max_examples=EXAMPLES // 4, deadline=None)
@given(separators_only)
def test_a_limit_without_names_selects_nothing(limit: str) -> None:  # D21: fails closed
    assert names_nothing(limit) and not no_limit(limit)
    assert evaluate_limit(limit, set(CANDIDATES), resolve) == set()


@settings(max_examples=EXAMPLES // 4, deadline=None)
@given(limits)
def test_only_a_limit_without_items_is_flagged(limit: str) -> None:
    assert names_nothing(limit) == (limit != "" and not reference_items(limit))


def test_the_reported_cases_select_nothing() -> None:
    for limit in (",", "&", "!", " , ", " ", "&!", ",&,!,"):
        assert evaluate_limit(limit, set(CANDIDATES), resolve) == set(), limit
    assert evaluate_limit("", set(CANDIDATES), resolve) == set(CANDIDATES)
    assert evaluate_limit(None, set(CANDIDATES), resolve) == set(CANDIDATES)
