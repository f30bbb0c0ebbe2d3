"""Seeded randomness that does not depend on event order.

Every random choice is a hash of (seed, what, who) instead of a draw from a
shared stream, so a node's delays, faults and tokens are the same on every run
with the same seed, however requests interleave.
"""

from __future__ import annotations

import hashlib
import uuid


def _digest(seed: int, parts: tuple, size: int) -> bytes:
    text = "\x1f".join([str(seed), *map(str, parts)]).encode()
    return hashlib.blake2b(text, digest_size=size).digest()


def chance(seed: int, *parts: object) -> float:
    """A number in [0, 1) determined by (seed, parts)."""
    return int.from_bytes(_digest(seed, parts, 8), "big") / 2.0 ** 64


def seeded_uuid(seed: int, *parts: object) -> str:
    """A UUID4-shaped string determined by (seed, parts)."""
    return str(uuid.UUID(bytes=_digest(seed, parts, 16), version=4))


def jittered(seed: int, base: float, jitter: float, *parts: object) -> float:
    """`base` scaled by a factor in [1 - jitter, 1 + jitter] determined by (seed, parts)."""
    if jitter <= 0 or base <= 0:
        return base
    return base * (1.0 + jitter * (2.0 * chance(seed, "jitter", *parts) - 1.0))
