"""Age strings and durations (api.md §1.6, operators.md §4.2, reporter.md §2.1)."""

from __future__ import annotations

import re
from typing import Optional

from .schema import AGE_PATTERN, TTL_PATTERN

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE = re.compile(AGE_PATTERN)
_TTL = re.compile(TTL_PATTERN)
_DURATION = re.compile(r"^([0-9]+)([smhdwSMHDW])$")


class AgeError(ValueError):
    """An age string that does not follow the AGE syntax."""


def parse_age(text: str) -> int:
    """Seconds of an AgeString (`0`, `30m`, `6h`, `7d`, `2w`); raises AgeError otherwise."""
    if not isinstance(text, str) or not 1 <= len(text) <= 8 or not _AGE.match(text):
        raise AgeError(f"'{text}' is not a valid age: use 0 or a whole number followed by m, h, d or w (e.g. 30m, 6h, 7d, 2w)")
    if text == "0":
        return 0
    return int(text[:-1]) * UNIT_SECONDS[text[-1].lower()]


def is_ttl(text: object) -> bool:
    """Whether `text` is a valid `component_actual_state_ttl` (at least one hour)."""
    return isinstance(text, str) and 2 <= len(text) <= 8 and bool(_TTL.match(text))


def parse_duration(text: object) -> Optional[int]:
    """Seconds of `<digits><s|m|h|d|w>` (e.g. `4h`, `90m`); None if malformed."""
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text.strip())
    if not match or len(match.group(1)) > 4000:  # int() refuses more than 4300 digits
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).lower()]


def age_is_zero(text: str) -> bool:
    """`0`, `0m`, `0d`, ...: the numeric part is zero (disables session cleanup)."""
    digits = text.rstrip("mMhHdDwW")
    return digits.isdigit() and int(digits) == 0
