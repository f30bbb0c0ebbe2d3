"""Session `limit` syntax (api.md §4.3-§4.4, operators.md §6.3, D21).

A limit is a comma-separated list read left to right: a bare item adds, `&item`
intersects, `!item` subtracts. Evaluation needs HSM data and lives with the
session-setup operator; the syntax is shared so the API and the CLI agree on it.

Only an absent limit (null or `""`) means "no limit". A limit that is present
but names nothing (`","`, `"&"`, `" , "`) selects nothing: a stray character
must never widen a session to every node (fail closed, D21).
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, List, Optional, Set, Tuple

UNION, INTERSECT, SUBTRACT = "|", "&", "!"
ALL_NAMES = ("all", "*")
_LIMIT_NID = re.compile(r"^[&!]*nid")


def parse_limit(limit: Optional[str]) -> List[Tuple[str, str]]:
    """(operator, name) pairs; items made only of `&`, `!` and whitespace are dropped (D21)."""
    items: List[Tuple[str, str]] = []
    for raw in (limit or "").split(","):
        item = raw.strip()
        if not item.replace(INTERSECT, "").replace(SUBTRACT, "").strip():
            continue
        op = UNION
        if item[0] in (INTERSECT, SUBTRACT):
            op, item = item[0], item[1:].strip()
            if not item:
                continue
        items.append((op, item))
    return items


def no_limit(limit: Optional[str]) -> bool:
    """True when the session has no limit at all: null or the empty string (api.md §4.4)."""
    return limit is None or limit == ""


def names_nothing(limit: Optional[str]) -> bool:
    """A limit that is present but has no item: it selects no node (D21)."""
    return not no_limit(limit) and not parse_limit(limit)


def evaluate_limit(limit: Optional[str], candidates: Set[str],
                   resolve: Callable[[str], Optional[Iterable[str]]]) -> Set[str]:
    """Apply a limit to one boot set's candidate nodes.

    `resolve(name)` returns the members of an HSM group, partition or role, or
    None when the name is none of those (it is then a literal xname). A limit
    without items starts from and ends with the empty set (D21).
    """
    if no_limit(limit):
        return set(candidates)
    items = parse_limit(limit)
    selected: Set[str] = set()
    for op, name in items:
        if name in ALL_NAMES:
            members = set(candidates)
        else:
            found = resolve(name)
            members = set(found) if found is not None else {name}
        if op == UNION:
            selected |= members
        elif op == INTERSECT:
            selected &= members
        else:
            selected -= members
    return set(candidates) & selected


def limit_has_nids(limit: Optional[str]) -> bool:
    """Any comma-separated item matching `^[&!]*nid` (case-sensitive)."""
    return any(_LIMIT_NID.match(item) for item in (limit or "").split(","))


def node_list_has_nids(node_list: Iterable[str]) -> bool:
    return any(entry[:3] == "nid" for entry in node_list)
