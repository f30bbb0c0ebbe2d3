"""Options (api.md §2.11, §3.2, D3, D11)."""

from __future__ import annotations

import json

from bos_shared.options import DEFAULTS
from bos_sim.stack import wait_until
from tests.support.client import Api, assert_problem


def test_get_returns_exactly_the_20_defaults(api: Api) -> None:
    body = api.get("/v2/options").json()
    assert body == DEFAULTS
    assert len(body) == 20


def test_patch_merges_a_subset_and_returns_all_options(api: Api) -> None:
    body = api.patch("/v2/options", json={"polling_frequency": 5, "logging_level": "debug"}).json()
    assert body["polling_frequency"] == 5
    assert body["logging_level"] == "debug"
    assert body["max_component_batch_size"] == 2800
    assert api.get("/v2/options").json() == body


def test_d11_unknown_keys_are_ignored_not_stored_or_echoed(api: Api, redis_client) -> None:
    body = api.patch("/v2/options", json={"polling_frequency": 7, "no_such_option": 1}).json()
    assert "no_such_option" not in body
    assert set(body) == set(DEFAULTS)
    stored = json.loads(redis_client.get("bos:options"))
    assert "no_such_option" not in stored


def test_invalid_value_is_400_and_changes_nothing(api: Api) -> None:
    before = api.get("/v2/options").json()
    for bad in ({"polling_frequency": -1}, {"bss_read_timeout": 5}, {"component_actual_state_ttl": "30m"},
                {"cleanup_completed_session_ttl": "1.5h"}, {"logging_level": "LOUD"},
                {"clear_stage": "yes"}, {"max_component_batch_size": 131072}, {"reject_nids": 1},
                {"polling_frequency": 10, "default_retry_policy": "3"}):
        resp = api.patch("/v2/options", json=bad)
        assert_problem(resp, 400, "Bad Request")
    assert api.get("/v2/options").json() == before


def test_empty_patch_body_object_is_rejected(api: Api) -> None:
    assert_problem(api.patch("/v2/options", json={}), 400, "Bad Request")


def test_stored_value_that_no_longer_satisfies_its_constraint_reads_as_default(api: Api, redis_client) -> None:
    redis_client.set("bos:options", json.dumps({"component_actual_state_ttl": "30m", "polling_frequency": 9}))
    # the per-process cache is at most 1 s stale (D3): wait for the stored value to be read
    wait_until(lambda: api.get("/v2/options").json()["polling_frequency"] == 9, 5, "the stored options read")
    body = api.get("/v2/options").json()
    assert body["component_actual_state_ttl"] == "4h"


def test_tenant_header_is_ignored(api: Api) -> None:
    assert api.get("/v2/options", tenant="no-such-tenant").json() == DEFAULTS
