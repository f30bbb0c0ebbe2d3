"""Random identifiers drawn from OS randomness in blocks (server/random_ids.py)."""

from __future__ import annotations

import os
import uuid

from bos_server import random_ids


def test_uuid4_is_a_version_4_uuid_in_its_usual_form() -> None:
    names = {random_ids.uuid4() for _ in range(2000)}
    assert len(names) == 2000
    for name in list(names)[:200]:
        parsed = uuid.UUID(name)
        assert str(parsed) == name and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(random_ids.token_hex(12)) == 24


def test_a_forked_worker_never_hands_out_its_parents_bytes() -> None:
    """The API's workers are forked (workers.py): without forgetting the parent's block at the fork,
    parent and child would name their next sessions (and receipts) alike."""
    random_ids.random_bytes(16)  # the parent holds a block with unused bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        try:
            os.write(write, random_ids.random_bytes(64))
        finally:
            os._exit(0)
    os.close(write)
    child = b""
    while len(child) < 64:
        part = os.read(read, 64)
        if not part:
            break
        child += part
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 64 and child != random_ids.random_bytes(64)
