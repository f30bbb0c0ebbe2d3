"""Large component listings are streamed chunk by chunk (api.md §3.3.1, §6.2; docs/benchmarks-history.md, fix 2).

Streaming is an encoding detail: the body must be exactly the list an
unstreamed response would carry, in ID order, with every filter and page
applied, and a result of one chunk stays an ordinary response.
"""

from __future__ import annotations

from typing import Any, Dict, List

import orjson

from bos_sim.stack import RedisServer
from tests.support.client import Api
from tests.support.tokens import record_token

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


TOKEN = "6f0c2a9e-1b7d-4c3e-9a58-0d4e2f6b7a19"
LARGE = {"kernel": "s3://boot-images/i/kernel", "initrd": "s3://boot-images/i/initrd",
         "kernel_parameters": "console=ttyS0,115200 " + " ".join(f"opt{n}=v{n}" for n in range(40))}


def _shaped(n: int, component_id: str) -> Dict[str, Any]:
    """Booted with a resolved token (actual set carries the token timestamp), a large desired set
    only, a small inline set (stays in the record: blobs.MIN_BYTES), or none."""
    if n % 4 == 0:
        return {"id": component_id, "desired_state": {"boot_artifacts": LARGE, "bss_token": TOKEN},
                "actual_state": {"bss_token": TOKEN}}
    if n % 4 == 1:
        return {"id": component_id, "desired_state": {"boot_artifacts": LARGE}}
    if n % 4 == 2:
        return {"id": component_id, "desired_state": {"boot_artifacts": {"kernel": "s3://k"}},
                "actual_state": {"boot_artifacts": {"kernel": "s3://k"}}}
    return {"id": component_id}


def test_listed_records_read_exactly_as_their_single_record_view(api: Api, redis_server: RedisServer) -> None:
    """A listing embeds each shared artifact set's encoding made once (blobs.SharedArtifacts) instead of
    encoding it per record: every listed record must still be exactly (keys, order, values) what
    `GET /v2/components/{id}` shows, the actual state's token timestamp left out (D12)."""
    record_token(redis_server.url, TOKEN, LARGE)
    ids = sorted(f"x{1000 + n // 256}c0s{n % 256 // 8}b{n % 8 // 4}n{n % 4}" for n in range(COUNT))
    assert api.put("/v2/components", json=[_shaped(n, i) for n, i in enumerate(ids)]).status_code == 200
    listed = {r["id"]: r for r in api.get("/v2/components").json()}
    assert list(listed) == ids
    for component_id in ids[:8] + ids[-4:]:
        single = api.get(f"/v2/components/{component_id}")
        assert orjson.dumps(listed[component_id]) == orjson.dumps(single.json()), component_id
    actual = [r.get("actual_state") or {} for r in listed.values()]
    booted = [a for a in actual if a.get("bss_token") == TOKEN]
    assert len(booted) == COUNT // 4 and all(a["boot_artifacts"] == LARGE for a in booted)
    assert not any("timestamp" in (a.get("boot_artifacts") or {}) for a in actual)
