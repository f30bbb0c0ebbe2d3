"""Timestamps and durations in the reference wire form (api.md §1.7, D9).

Every timestamp we emit is UTC as `YYYY-MM-DDTHH:MM:SS`; we read that form (as
UTC) and any RFC 3339 form.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Optional, Tuple

WIRE_FORMAT = "%Y-%m-%dT%H:%M:%S"
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-]\d{2}:?\d{2})?$")


def utcnow() -> datetime:
    """Now, in UTC, truncated to whole seconds (D9)."""
    return datetime.fromtimestamp(int(time.time()), tz=timezone.utc)


def render(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(WIRE_FORMAT)


_NOW: Tuple[int, str] = (-1, "")  # (whole second, its wire text): now_str's memo


def now_str() -> str:
    """Now in the wire form, rendered once per second (the time the API takes to stamp a
    write: strftime was a twentieth of a reporter PATCH's CPU, issue 13)."""
    global _NOW
    second = int(time.time())
    memo = _NOW
    if memo[0] != second:
        memo = _NOW = (second, render(datetime.fromtimestamp(second, tz=timezone.utc)))
    return memo[1]


def parse(text: Optional[str]) -> Optional[datetime]:
    """Parse a wire or RFC 3339 timestamp into an aware UTC datetime; None if unparseable."""
    if not text or not isinstance(text, str):
        return None
    return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Optional[datetime]:
    """parse() of a string, remembered: stamps are whole seconds that a bulk write gives every
    record it writes, and the status operator reads several per component per decision (at
    100,000 nodes, most of a pass's parses are of the same few strings). datetime is immutable."""
    match = _RFC3339.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          tzinfo=timezone.utc)
    except ValueError:
        return None
    if fraction:
        moment += timedelta(microseconds=round(float(fraction) * 1_000_000))
    return moment - _offset(zone)


def _offset(zone: Optional[str]) -> timedelta:
    if not zone or zone in ("Z", "z"):
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def epoch(text: Optional[str]) -> Optional[float]:
    if not text or not isinstance(text, str):
        return None
    return _epoch(text)


@lru_cache(maxsize=4096)
def _epoch(text: str) -> Optional[float]:
    moment = _parse(text)
    return moment.timestamp() if moment else None


def render_duration(seconds: float) -> str:
    """Render like Python's str(timedelta) in whole seconds: `0:12:34`, `1 day, 2:03:04`."""
    return str(timedelta(seconds=int(seconds // 1)))
