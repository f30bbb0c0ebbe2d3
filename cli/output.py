"""Rendering: tables and key/value views for people, JSON and YAML for scripts.

`--format json` must print the API's JSON unchanged (scripts written for
`cray bos v2 ... --format json` keep working), so machine formats never see
the table code: each command hands over the API data and, separately, how to
draw it for a human.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, TextIO

import yaml

EMPTY = "-"
LIST_PREVIEW = 6


@dataclass(frozen=True)
class Column:
    """One table column: header text, how to get the cell, and a width cap."""

    header: str
    get: Callable[[Mapping[str, Any]], Any]
    max_width: int = 60


def field(*path: str) -> Callable[[Mapping[str, Any]], Any]:
    """A getter for a nested field (`field("status", "phase")`); missing → None."""
    def get(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value
    return get


def cell(value: Any, max_width: int = 60) -> str:
    """A single-line table cell."""
    if value is None or value == "":
        text = EMPTY
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = preview_list(value)
    elif isinstance(value, Mapping):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = " ".join(str(value).split())
    return truncate(text, max_width)


def truncate(text: str, width: int) -> str:
    if width <= 0 or len(text) <= width:
        return text
    return text[: max(width - 3, 1)] + "..."


def preview_list(items: Sequence[Any], limit: int = LIST_PREVIEW) -> str:
    """`a,b,c` or, for long lists, the first few and the count (node lists run to thousands)."""
    shown = ",".join(str(i) for i in items[:limit])
    if len(items) <= limit:
        return shown
    return f"{shown},... ({len(items)} total)"


def table(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> str:
    """Aligned columns with a header; the last column is not padded."""
    grid = [[c.header for c in columns]]
    grid += [[cell(c.get(row), c.max_width) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    lines = []
    for line in grid:
        padded = [text.ljust(widths[i]) for i, text in enumerate(line[:-1])] + [line[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def flatten(value: Any, prefix: str = "") -> List[tuple]:
    """(dotted key, scalar) pairs of a nested object, in the object's own order."""
    if isinstance(value, Mapping) and value:
        pairs: List[tuple] = []
        for key, sub in value.items():
            pairs += flatten(sub, f"{prefix}.{key}" if prefix else str(key))
        return pairs
    return [(prefix, value)]


def key_values(record: Mapping[str, Any], max_width: int = 0) -> str:
    """A two-column `key  value` view of one record (what `describe` shows); 0 = no truncation."""
    pairs = flatten(record)
    width = max((len(k) for k, _ in pairs), default=0)
    lines = []
    for key, value in pairs:
        text = "{}" if isinstance(value, Mapping) else cell(value, max_width)
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")


def render(data: Any, fmt: str, human: Optional[Callable[[], str]] = None) -> str:
    """The text to print for `data`: the API data for json/yaml, `human()` for table."""
    if fmt == "json":
        return to_json(data)
    if fmt == "yaml":
        return to_yaml(data)
    if human is not None:
        return human()
    if isinstance(data, Mapping):
        return key_values(data)
    return to_json(data)


def emit(out: TextIO, data: Any, fmt: str, human: Optional[Callable[[], str]] = None) -> None:
    """Print `data` in `fmt`; an API answer without a body prints nothing in json/yaml."""
    if data is None and fmt != "table":
        return
    text = render(data, fmt, human)
    if text:
        out.write(text + "\n")
