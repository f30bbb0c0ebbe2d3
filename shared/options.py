"""The 20 service options (api.md §2.11): defaults and the effective view of stored values."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from .schema import OPTION_FIELDS
from .schema_types import SchemaError as _SchemaError

DEFAULTS: Dict[str, Any] = {name: field.default for name, field in OPTION_FIELDS.items()}


def effective(stored: Mapping[str, Any]) -> Dict[str, Any]:
    """All 20 options: stored values that still satisfy their constraints, else defaults."""
    out = dict(DEFAULTS)
    for name, field in OPTION_FIELDS.items():
        if name not in stored:
            continue
        try:
            out[name] = field.validate(stored[name], name)
        except _SchemaError:
            continue
    return out
