"""The API bench's bulk PATCH meets the same records at every size (bench/api_store.py).

A bulk write costs per distinct stored value, and the reporter load before it left a share of
the records with a token of their own that grew with the store (a third of 100,000, none of
10,000), so the bulk line rose with the size for a reason that was not the size. `restore`
puts every record back as seeded; `bulk_patch_distinct` measures the other extreme on purpose.
Real API, real Redis, real HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Dict, List

from bench import api_store
from tests.support.client import Api

COUNT = 30


def _stored(api: Api) -> List[Dict[str, Any]]:
    resp = api.get("/v2/components")
    assert resp.status_code == 200, resp.text
    return resp.json()


def _tokens(api: Api) -> List[str]:
    return [record["actual_state"].get("bss_token", "") for record in _stored(api)]


def _seed_and_report(api: Api) -> None:
    """Seeded records, then a few reports of a token of their own (what the reporter load leaves)."""
    assert api.put("/v2/components", json=[api_store.component(i) for i in range(COUNT)]).status_code == 200
    for i in range(0, COUNT, 3):
        resp = api.patch(f"/v2/components/{api_store.node_xname(i)}",
                         json={"id": api_store.node_xname(i), "actual_state": {"bss_token": f"own-{i}"}})
        assert resp.status_code == 200, resp.text


def test_restore_puts_every_record_back_as_seeded(api: Api) -> None:
    _seed_and_report(api)
    assert len(set(_tokens(api))) > 1

    async def run() -> None:
        client = api_store.Client(api.base)
        try:
            await api_store.restore(client, COUNT)
        finally:
            await client.close()

    asyncio.run(run())
    assert set(_tokens(api)) == {api_store.TOKEN}


def test_the_distinct_bulk_meets_records_each_with_a_token_of_its_own(api: Api) -> None:
    _seed_and_report(api)
    results: Dict[str, Any] = {}

    async def run() -> None:
        client = api_store.Client(api.base)
        try:
            await api_store.bulk_patch_distinct(client, COUNT, argparse.Namespace(runs=1), results, lambda _: None)
        finally:
            await client.close()

    asyncio.run(run())
    tokens = _tokens(api)
    assert len(set(tokens)) == COUNT  # no two stored records alike
    assert results["bulk_patch_distinct"]["items"] == COUNT
