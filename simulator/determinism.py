"""Seeded randomness that does not depend on event order.

Every random choice is a hash of (seed, what, who) instead of a draw from a
shared stream, so a node's delays, faults and tokens are the same on every run
with the same seed, however requests interleave.
"""

from __future__ import annotations

import hashlib


def _digest(seed: int, parts: tuple, size: int) -> bytes:
    text = "\x1f".join([str(seed), *map(str, parts)]).encode()
    return hashlib.blake2b(text, digest_size=size).digest()


def chance(seed: int, *parts: object) -> float:
    """A number in [0, 1) determined by (seed, parts)."""
    return int.from_bytes(_digest(seed, parts, 8), "big") / 2.0 ** 64


def seeded_uuid(seed: int, *parts: object) -> str:
    """A UUID4-shaped string determined by (seed, parts): `str(uuid.UUID(bytes=digest, version=4))`
    written out directly (the version and variant bits set, the hex grouped 8-4-4-4-12). Every
    booted node's join token is one; the UUID object per token took twice as long as the hash."""
    digest = bytearray(_digest(seed, parts, 16))
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def jittered(seed: int, base: float, jitter: float, *parts: object) -> float:
    """`base` scaled by a factor in [1 - jitter, 1 + jitter] determined by (seed, parts)."""
    if jitter <= 0 or base <= 0:
        return base
    return base * (1.0 + jitter * (2.0 * chance(seed, "jitter", *parts) - 1.0))
