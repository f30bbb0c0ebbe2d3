"""Large component listings are streamed chunk by chunk (api.md §3.3.1, §6.2; docs/benchmarks.md fix 2).

Streaming is an encoding detail: the body must be exactly the list an
unstreamed response would carry, in ID order, with every filter and page
applied, and a result of one chunk stays an ordinary response.
"""

from __future__ import annotations

from typing import List

from tests.support.client import Api

COUNT = 2500  # more than two store chunks of 1,000


def load(api: Api) -> List[str]:
    ids = [f"x{1000 + n // 256}c0s{n % 256 // 8}b{n % 8 // 4}n{n % 4}" for n in range(COUNT)]
    records = [{"id": i, "enabled": n % 2 == 0, "session": "odd" if n % 2 else "even", "error": ""}
               for n, i in enumerate(ids)]
    assert api.put("/v2/components", json=records).status_code == 200
    return sorted(ids)


def test_full_listing_streams_every_record_once_in_id_order(api: Api) -> None:
    ids = load(api)
    resp = api.get("/v2/components")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    body = resp.json()
    assert [r["id"] for r in body] == ids
    assert all(r["status"]["status"] for r in body)


def test_streamed_filtered_and_paged_listings_match_the_filters(api: Api) -> None:
    ids = load(api)
    odd = api.get("/v2/components", params={"session": "odd"}).json()
    assert [r["id"] for r in odd] == [i for i in ids if i in {r["id"] for r in odd}]
    assert len(odd) == COUNT // 2 and all(r["session"] == "odd" for r in odd)
    page = api.get("/v2/components", params={"page_size": 1500, "start_after_id": ids[10]}).json()
    assert [r["id"] for r in page] == ids[11:1511]


def test_a_one_chunk_result_is_an_ordinary_response(api: Api) -> None:
    load(api)
    resp = api.get("/v2/components", params={"page_size": 10})
    assert resp.status_code == 200
    assert "Transfer-Encoding" not in resp.headers and int(resp.headers["Content-Length"]) == len(resp.content)
    assert len(resp.json()) == 10
    empty = api.get("/v2/components", params={"session": "nobody"})
    assert empty.status_code == 200 and empty.json() == []
