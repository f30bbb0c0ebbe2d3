"""Random identifiers from the OS's random source, drawn 4 KiB at a time.

`POST /v2/sessions` names each session with a random UUID and each compare-and-set run gets a
random receipt key (store/connection.py): `uuid.uuid4()` and `secrets.token_hex()` make one
`getrandom` system call each, and with the UUID object and its formatting they were ~6 % of
a session create's API CPU (issue 13: ≥ 1,500 creates/s, sequential). The bytes are the same
OS randomness, read in blocks. A forked worker starts with an empty block (os.register_at_fork):
two workers never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

BLOCK = 4096
_LOCK = threading.Lock()
_pool = b""
_at = 0


def _forget() -> None:
    """In a forked child: the parent's unused bytes are not this process's to use."""
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget)


def random_bytes(count: int) -> bytes:
    """`count` (≤ BLOCK) bytes of os.urandom, never handed out twice in this process."""
    global _pool, _at
    with _LOCK:
        if _at + count > len(_pool):
            _pool, _at = os.urandom(BLOCK), 0
        out = _pool[_at:_at + count]
        _at += count
    return out


def token_hex(count: int) -> str:
    """Like secrets.token_hex(count)."""
    return random_bytes(count).hex()


def uuid4() -> str:
    """A random (version 4, RFC 4122 variant) UUID in its 36-character form, as str(uuid.uuid4())."""
    raw = bytearray(random_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
