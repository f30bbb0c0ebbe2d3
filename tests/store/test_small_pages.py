"""A small page of a component query (an existence check such as session-completion's "any
enabled member of this session?") reads a few records, not a whole index chunk; it still
finds a match far into the index, and never answers more than it was asked for."""

from __future__ import annotations

import asyncio
from typing import Iterator, List

import pytest
import redis as redis_lib

from bos_server.store import Store
from bos_server.store.component_query import SCAN_CHUNK, ComponentQuery
from bos_server.store.components import FIRST_READ
from bos_sim.stack import RedisServer

COUNT = SCAN_CHUNK + 500


@pytest.fixture
def url(redis_server: RedisServer, redis_client: redis_lib.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield redis_server.url


def run(url: str, enabled: List[str], query: ComponentQuery) -> "tuple[List[str], List[int]]":
    """IDs the query yields over COUNT components of session s1 (those in `enabled` enabled),
    and the size of every record read it made."""
    ids = [f"x{n:05d}" for n in range(COUNT)]
    on = set(enabled)

    async def scenario() -> "tuple[List[str], List[int]]":
        store = Store.connect(url)
        try:
            await store.components.update(ids, lambda cid, _old: {"id": cid, "enabled": cid in on, "session": "s1",
                                                                  "error": ""})
            reads: List[int] = []
            real = store.components.get_raw_many

            async def counted(chunk):  # type: ignore[no-untyped-def]
                reads.append(len(chunk))
                return await real(chunk)
            store.components.get_raw_many = counted  # type: ignore[method-assign]
            found = [r["id"] async for page in store.components.iter_query(query) for r in page]
            return found, reads
        finally:
            await store.close()
    return asyncio.run(scenario())


def test_an_existence_check_reads_a_few_records_when_the_first_candidates_match(url: str) -> None:
    found, reads = run(url, [f"x{n:05d}" for n in range(COUNT)], ComponentQuery(session="s1", enabled=True,
                                                                                 page_size=1))
    assert found == ["x00000"]
    assert sum(reads) == FIRST_READ


def test_a_small_page_finds_a_match_far_into_the_index_and_no_more_than_asked(url: str) -> None:
    late = [f"x{n:05d}" for n in (SCAN_CHUNK + 3, SCAN_CHUNK + 7, SCAN_CHUNK + 9)]  # the disabled ones
    others = [f"x{n:05d}" for n in range(COUNT) if f"x{n:05d}" not in late]
    found, reads = run(url, others, ComponentQuery(session="s1", enabled=False, page_size=2))
    assert found == late[:2]
    assert len(reads) > 2 and max(reads) <= SCAN_CHUNK  # grew from FIRST_READ, never past a chunk
    found, _reads = run(url, others, ComponentQuery(session="s1", enabled=False))
    assert found == late
