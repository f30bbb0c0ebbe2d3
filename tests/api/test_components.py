"""Components (api.md §2.1-§2.6, §3.3, §3.4; D1, D2, D7, D8, D12, D13, D17, D32)."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

import orjson
import pytest

from tests.support.client import Api, assert_problem
from tests.support.tokens import record_token

ARTIFACTS = {"kernel": "s3://boot-images/img/kernel", "kernel_parameters": "console=ttyS0 quiet",
             "initrd": "s3://boot-images/img/initrd"}
NOT_FOUND = "The resource was not found"


def put(api: Api, cid: str, **fields: Any) -> Dict[str, Any]:
    resp = api.put(f"/v2/components/{cid}", json=fields or {"enabled": False})
    assert resp.status_code == 200, resp.text
    return resp.json()


def bulk_put(api: Api, records: List[Dict[str, Any]]) -> None:
    resp = api.put("/v2/components", json=records)
    assert resp.status_code == 200, resp.text


def ids_of(resp) -> List[str]:
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()]


# -- single component --

def test_put_then_get_returns_the_record_with_computed_status(api: Api) -> None:
    put(api, "x1", enabled=False, error="", session="")
    body = api.get("/v2/components/x1").json()
    assert body["id"] == "x1"
    assert body["status"] == {"phase": "", "status_override": "", "status": "stable"}


def test_put_uses_the_path_id_not_the_body_id(api: Api) -> None:
    body = api.put("/v2/components/x1", json={"id": "other", "enabled": False}).json()
    assert body["id"] == "x1"
    assert api.get("/v2/components/other").status_code == 404


def test_put_with_empty_body_object_is_400(api: Api) -> None:
    assert_problem(api.put("/v2/components/x1", json={}), 400, "Bad Request")


def test_missing_component_is_404_with_exact_detail(api: Api) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        resp = api.request(method, "/v2/components/x9", json={"enabled": False} if method == "PATCH" else None)
        assert_problem(resp, 404, NOT_FOUND, "Component 'x9' does not exist")


def test_delete_removes_the_record_and_its_index_entries(api: Api) -> None:
    put(api, "x1", enabled=True, session="s1")
    resp = api.delete("/v2/components/x1")
    assert resp.status_code == 204 and resp.content == b""
    assert api.get("/v2/components", params={"enabled": "true"}).json() == []
    assert api.get("/v2/components", params={"session": "s1"}).json() == []


def test_component_id_over_127_characters_is_400(api: Api) -> None:
    assert_problem(api.get("/v2/components/" + "x" * 128), 400, "Bad Request")


# -- automatic fields (§2.4) --

def test_enabling_puts_the_component_on_hold(api: Api) -> None:
    body = put(api, "x1", enabled=True)
    assert body["status"]["status_override"] == "on_hold"
    assert body["status"]["status"] == "on_hold"


def test_timestamps_are_stamped_except_a_bss_token_only_desired_state(api: Api) -> None:
    body = put(api, "x1", enabled=False, desired_state={"configuration": "c"}, staged_state={},
               last_action={"action": "session_setup"}, actual_state={"bss_token": ""})
    for key in ("desired_state", "staged_state", "last_action"):
        assert len(body[key]["last_updated"]) == 19, key
    assert "last_updated" not in body["actual_state"]  # key set is exactly {bss_token}
    stamp = body["desired_state"]["last_updated"]
    patched = api.patch("/v2/components/x1", json={"desired_state": {"bss_token": "abc"}}).json()
    assert patched["desired_state"]["last_updated"] == stamp
    assert patched["desired_state"]["bss_token"] == "abc"


def test_manual_desired_state_detaches_the_component_from_its_session(api: Api) -> None:
    put(api, "x1", enabled=False, session="s1")
    body = api.patch("/v2/components/x1", json={"desired_state": {"configuration": "c"}}).json()
    assert body["session"] == ""
    body = api.patch("/v2/components/x1", json={"desired_state": {"configuration": "d"}, "session": "s2"}).json()
    assert body["session"] == "s2"


def test_desired_artifacts_or_configuration_reset_the_counters(api: Api) -> None:
    put(api, "x1", enabled=False, event_stats={"power_on_attempts": 3, "power_off_graceful_attempts": 2,
                                               "power_off_forceful_attempts": 1})
    body = api.patch("/v2/components/x1", json={"desired_state": {"bss_token": "t"}}).json()
    assert body["event_stats"]["power_on_attempts"] == 3
    body = api.patch("/v2/components/x1", json={"desired_state": {"configuration": "c"}}).json()
    assert body["event_stats"] == {"power_on_attempts": 0, "power_off_graceful_attempts": 0,
                                   "power_off_forceful_attempts": 0}


def test_reported_token_resolves_to_the_recorded_boot_artifacts_without_timestamp_d12(api: Api, redis_server) -> None:
    record_token(redis_server.url, "tok-1", ARTIFACTS)
    put(api, "x1", enabled=False)
    body = api.patch("/v2/components/x1", json={"id": "x1", "actual_state": {"bss_token": "tok-1"}}).json()
    assert body["actual_state"]["boot_artifacts"] == ARTIFACTS
    assert body["actual_state"]["bss_token"] == "tok-1"
    assert "timestamp" not in api.get("/v2/components/x1").json()["actual_state"]["boot_artifacts"]
    listed = api.get("/v2/components").json()[0]
    assert "timestamp" not in listed["actual_state"]["boot_artifacts"]


def test_single_writes_prefer_minimal_answer_204_and_still_write(api: Api, redis_server) -> None:
    """`Prefer: return=minimal` on a single PATCH or PUT (api.md §3.4 extension, a node's report):
    204 without a body, the record written as without it; refusals keep their problem answers."""
    minimal = {"Prefer": "return=minimal"}
    record_token(redis_server.url, "tok-1", ARTIFACTS)
    resp = api.put("/v2/components/x1", json={"enabled": False}, headers=minimal)
    assert (resp.status_code, resp.content, resp.headers["Preference-Applied"]) == (204, b"", "return=minimal")
    resp = api.patch("/v2/components/x1", json={"id": "x1", "actual_state": {"bss_token": "tok-1"}}, headers=minimal)
    assert (resp.status_code, resp.content, resp.headers["Preference-Applied"]) == (204, b"", "return=minimal")
    assert api.get("/v2/components/x1").json()["actual_state"]["boot_artifacts"] == ARTIFACTS
    resp = api.patch("/v2/components/x1", json={"error": "e"}, headers={"Prefer": "handling=lenient, return=minimal"})
    assert resp.status_code == 204 and api.get("/v2/components/x1").json()["error"] == "e"
    assert_problem(api.patch("/v2/components/x9", json={"actual_state": {"bss_token": "tok-1"}}, headers=minimal),
                   404, NOT_FOUND, "Component 'x9' does not exist")
    api.put("/v2/components", json=[{"id": "x2", "enabled": True, "status": {"phase": "powering_off"}}])
    assert api.patch("/v2/components/x2", json={"actual_state": {"bss_token": "t"}}, headers=minimal).status_code == 409
    resp = api.patch("/v2/components/x1", json={"error": "f"})  # no preference: the record
    assert resp.status_code == 200 and resp.json()["error"] == "f" and "Preference-Applied" not in resp.headers


def test_unknown_token_leaves_artifacts_and_last_updated_unchanged(api: Api) -> None:
    put(api, "x1", enabled=False, actual_state={"boot_artifacts": ARTIFACTS, "bss_token": "old"})
    before = api.get("/v2/components/x1").json()["actual_state"]
    body = api.patch("/v2/components/x1", json={"actual_state": {"bss_token": "unknown"}}).json()
    assert body["actual_state"]["boot_artifacts"] == ARTIFACTS
    assert body["actual_state"]["last_updated"] == before["last_updated"]
    assert body["actual_state"]["bss_token"] == "unknown"


# -- merge semantics (§2.5) --

def test_patch_merges_states_shallowly_and_boot_artifacts_one_level_deeper(api: Api) -> None:
    put(api, "x1", enabled=False, desired_state={"boot_artifacts": ARTIFACTS, "configuration": "c"},
        last_action={"action": "powering_on", "failed": False}, error="old", retry_policy=2)
    body = api.patch("/v2/components/x1", json={
        "desired_state": {"boot_artifacts": {"kernel": "k2"}},
        "last_action": {"failed": True}, "error": "", "retry_policy": 5}).json()
    assert body["desired_state"]["boot_artifacts"] == dict(ARTIFACTS, kernel="k2")
    assert body["desired_state"]["configuration"] == "c"
    assert body["last_action"]["action"] == "powering_on" and body["last_action"]["failed"] is True
    assert body["error"] == "" and body["retry_policy"] == 5


def test_d13_read_only_fields_are_accepted_and_ignored(api: Api) -> None:
    original = put(api, "x1", enabled=False, desired_state={"configuration": "c"})
    body = dict(original)
    body["status"] = {"phase": "", "status_override": "", "status": "configuring"}
    resp = api.put("/v2/components/x1", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"]["status"] == "stable"


def test_a_record_read_can_be_put_back_unchanged(api: Api) -> None:
    put(api, "x1", enabled=False, desired_state={"boot_artifacts": ARTIFACTS, "configuration": "c"})
    body = api.get("/v2/components/x1").json()
    assert api.put("/v2/components/x1", json=body).status_code == 200


# -- the 409 rule (§2.6) --

@pytest.mark.parametrize("record,allowed", [
    ({"enabled": False}, True),
    ({"enabled": True, "status": {"status_override": "", "phase": ""}}, True),  # stable
    ({"enabled": True, "status": {"phase": "powering_on"}, "last_action": {"action": "powering_on"}}, True),
    ({"enabled": True, "status": {"phase": "powering_off"}, "last_action": {"action": "session_setup"}}, False),
    ({"enabled": True, "status": {"phase": "configuring"}, "last_action": {"action": "apply_staged"}}, False),
])
def test_actual_state_patch_409_rule(api: Api, record: Dict[str, Any], allowed: bool) -> None:
    api.put("/v2/components", json=[dict(record, id="x1")])
    if record.get("enabled"):  # the write put it on hold; restore the wanted status
        api.patch("/v2/components", json=[{"id": "x1", "status": dict(record.get("status") or {}, status_override="")}])
    resp = api.patch("/v2/components/x1", json={"actual_state": {"bss_token": "t"}})
    if allowed:
        assert resp.status_code == 200, resp.text
    else:
        assert_problem(resp, 409, "Actual state can not be updated.",
                       "BOS is currently changing the state of the node, and the actual state can not be accurately recorded")
        assert "bss_token" not in (api.get("/v2/components/x1").json().get("actual_state") or {})


def test_bulk_patch_never_applies_the_409_rule(api: Api) -> None:
    api.put("/v2/components", json=[{"id": "x1", "enabled": True, "status": {"phase": "powering_off"}}])
    resp = api.patch("/v2/components", json=[{"id": "x1", "actual_state": {"bss_token": "t"}}])
    assert resp.status_code == 200


# -- bulk PUT and create_only (D32) --

def test_bulk_put_requires_ids(api: Api) -> None:
    resp = api.put("/v2/components", json=[{"id": "x1"}, {"enabled": True}])
    assert_problem(resp, 400, "Bad Request", "At least one component is missing the required 'id' field")
    assert api.get("/v2/components").json() == []


def test_bulk_put_last_duplicate_wins(api: Api) -> None:
    body = api.put("/v2/components", json=[{"id": "x1", "error": "a"}, {"id": "x1", "error": "b"}]).json()
    assert [r["error"] for r in body] == ["b"]
    assert api.get("/v2/components/x1").json()["error"] == "b"


def test_bulk_put_duplicates_among_items_alike_last_wins_in_first_place(api: Api) -> None:
    """The items of a run of items equal but for their IDs (fast_bodies.Runs) keep the rule: the last wins,
    answered where the ID came first."""
    items = [{"id": "x1", "error": "a"}, {"id": "x2", "error": "a"}, {"id": "x1", "error": "b"}, {"id": "x3", "error": "b"},
             {"id": "x2", "error": "b"}]
    body = api.put("/v2/components", data=orjson.dumps(items), headers={"Content-Type": "application/json"}).json()
    assert [(r["id"], r["error"]) for r in body] == [("x1", "b"), ("x2", "b"), ("x3", "b")]
    assert api.get("/v2/components/x2").json()["error"] == "b"


def test_d32_create_only_skips_existing_components(api: Api) -> None:
    put(api, "x1", enabled=True, error="keep")
    body = api.put("/v2/components", params={"create_only": "true"},
                   json=[{"id": "x1", "enabled": False, "error": ""}, {"id": "x2", "enabled": False}]).json()
    assert [r["id"] for r in body] == ["x2"]
    assert api.get("/v2/components/x1").json()["error"] == "keep"


def test_bulk_put_empty_array_is_fine(api: Api) -> None:
    assert api.put("/v2/components", json=[]).json() == []


# -- bulk PATCH --

def test_bulk_patch_list_form_unknown_id_is_404_and_writes_nothing(api: Api) -> None:
    bulk_put(api, [{"id": "x1", "error": ""}, {"id": "x2", "error": ""}])
    resp = api.patch("/v2/components", json=[{"id": "x1", "error": "e"}, {"id": "x9", "error": "e"}])
    assert_problem(resp, 404, NOT_FOUND, "Component 'x9' does not exist")
    assert api.get("/v2/components/x1").json()["error"] == ""


def test_bulk_patch_skip_bad_ids_drops_unknown_ids(api: Api) -> None:
    bulk_put(api, [{"id": "x1", "error": ""}])
    resp = api.patch("/v2/components", params={"skip_bad_ids": "True"},
                     json=[{"id": "x9", "error": "e"}, {"id": "x1", "error": "e"}])
    assert ids_of(resp) == ["x1"]


def test_bulk_patch_returns_records_in_list_order(api: Api) -> None:
    bulk_put(api, [{"id": i} for i in ("a", "b", "c")])
    assert ids_of(api.patch("/v2/components", json=[{"id": "c", "error": "1"}, {"id": "a", "error": "2"}])) == ["c", "a"]


def test_bulk_writes_prefer_minimal_answer_with_the_ids_written(api: Api) -> None:
    """`Prefer: return=minimal` (api.md §3.3.3 extension): the IDs written, in the full answer's order."""
    minimal = {"Prefer": "return=minimal"}
    resp = api.put("/v2/components", params={"create_only": "true"}, headers=minimal,
                   json=[{"id": "b"}, {"id": "a"}])
    assert resp.json() == ["b", "a"] and resp.headers["Preference-Applied"] == "return=minimal"
    assert api.put("/v2/components", params={"create_only": "true"}, headers=minimal,
                   json=[{"id": "a"}, {"id": "c"}]).json() == ["c"]
    resp = api.patch("/v2/components", params={"skip_bad_ids": "true"}, headers=minimal,
                     json=[{"id": "c", "error": "1"}, {"id": "x9", "error": "2"}, {"id": "a", "error": "3"}])
    assert resp.json() == ["c", "a"] and api.get("/v2/components/a").json()["error"] == "3"
    resp = api.patch("/v2/components", headers={"Prefer": "handling=lenient, return=minimal"},
                     json={"patch": {"error": "x"}, "filters": {"ids": "b,a"}})
    assert resp.json() == ["b", "a"]
    assert ids_of(api.patch("/v2/components", json=[{"id": "a", "error": "4"}])) == ["a"]  # no preference: records


def test_a_minimal_bulk_write_larger_than_a_slice_answers_every_id_written_in_order(api: Api) -> None:
    """A minimal write goes WRITE_SLICE records per store update (issue 13, API memory): the
    answer still lists every ID written, in request order, across the slices."""
    ids = [f"x3100c0s{n // 8}b0n{n % 8}" for n in range(2500)]
    bulk_put(api, [{"id": i} for i in ids[::2]])  # every other one exists
    resp = api.patch("/v2/components", params={"skip_bad_ids": "true"}, headers={"Prefer": "return=minimal"},
                     json=[{"id": i, "error": f"e{n}"} for n, i in enumerate(reversed(ids))])
    assert resp.status_code == 200 and resp.json() == list(reversed(ids))[1::2]
    assert api.get(f"/v2/components/{ids[0]}").json()["error"] == f"e{len(ids) - 1}"


def test_bulk_patch_filter_by_ids(api: Api) -> None:
    bulk_put(api, [{"id": i} for i in ("a", "b", "c")])
    resp = api.patch("/v2/components", json={"patch": {"id": "ignored", "error": "x"},
                                             "filters": {"ids": "c,a", "session": None}})
    assert ids_of(resp) == ["c", "a"]
    assert api.get("/v2/components/b").json().get("error") is None


def test_bulk_patch_filter_by_session_in_id_order(api: Api) -> None:
    bulk_put(api, [{"id": "b", "session": "s1"}, {"id": "a", "session": "s1"}, {"id": "c", "session": "s2"}])
    resp = api.patch("/v2/components", json={"patch": {"enabled": False}, "filters": {"session": "s1", "ids": ""}})
    assert ids_of(resp) == ["a", "b"]
    resp = api.patch("/v2/components", json={"patch": {"enabled": False}, "filters": {"session": "none"}})
    assert resp.json() == []


def test_bulk_patch_filter_errors(api: Api) -> None:
    assert_problem(api.patch("/v2/components", json={"patch": {"enabled": False}, "filters": {"ids": "a", "session": "s"}}),
                   400, "Bad Request", "Multiple filters provided")
    assert_problem(api.patch("/v2/components", json={"patch": {"enabled": False}, "filters": {}}),
                   400, "Bad Request", "No filter provided.")
    assert_problem(api.patch("/v2/components", json={"patch": {"enabled": False}}), 400, "Bad Request")
    assert_problem(api.patch("/v2/components", json={"patch": {"enabled": False}, "filters": {"ids": "a"}, "x": 1}),
                   400, "Bad Request")


# -- listing and filters (§3.3.1, D1, D7, D8) --

@pytest.fixture
def fleet(api: Api) -> Api:
    records = []
    for n in range(30):
        record: Dict[str, Any] = {"id": f"x{n:02d}", "enabled": n % 2 == 0, "session": "s1" if n < 10 else "",
                                  "status": {"phase": "powering_on" if n % 3 == 0 else "", "status_override": ""}}
        if n % 5 == 0:
            record["staged_state"] = {"session": "st"}
        if n == 7:
            record.pop("enabled")  # absent counts as not enabled
        records.append(record)
    bulk_put(api, records)
    # enabling put the enabled ones on hold; clear that so computed status follows the phase
    api.patch("/v2/components", json=[{"id": r["id"], "status": {"status_override": ""}} for r in records])
    return api


def test_filters_session_staged_session_enabled_phase_status(fleet: Api) -> None:
    assert ids_of(fleet.get("/v2/components", params={"session": "s1"})) == [f"x{n:02d}" for n in range(10)]
    assert ids_of(fleet.get("/v2/components", params={"staged_session": "st"})) == [f"x{n:02d}" for n in range(0, 30, 5)]
    assert ids_of(fleet.get("/v2/components", params={"enabled": "true"})) == [f"x{n:02d}" for n in range(0, 30, 2)]
    assert ids_of(fleet.get("/v2/components", params={"phase": "powering_on"})) == [f"x{n:02d}" for n in range(0, 30, 3)]
    assert ids_of(fleet.get("/v2/components", params={"status": "power_on_pending"})) == [f"x{n:02d}" for n in range(0, 30, 3)]
    both = fleet.get("/v2/components", params={"status": "stable,power_on_pending", "enabled": "true", "session": "s1"})
    assert ids_of(both) == ["x00", "x02", "x04", "x06", "x08"]


def test_d7_enabled_false_alone_restricts_to_not_enabled(fleet: Api) -> None:
    ids = ids_of(fleet.get("/v2/components", params={"enabled": "FALSE"}))
    assert ids == [f"x{n:02d}" for n in range(1, 30, 2)]  # x07 has no `enabled`: not true


def test_empty_phase_means_no_phase_filter(fleet: Api) -> None:
    assert len(ids_of(fleet.get("/v2/components", params={"phase": ""}))) == 30


def test_ids_filter_omits_unknown_ids_and_sorts(fleet: Api) -> None:
    assert ids_of(fleet.get("/v2/components", params={"ids": "x05,zz,x01,,x03"})) == ["x01", "x03", "x05"]


def test_d8_ten_thousand_ids_in_one_query(api: Api) -> None:
    ids = [f"x3000c0s{n // 100}b0n{n % 100}" for n in range(10000)]
    for start in range(0, len(ids), 2800):
        bulk_put(api, [{"id": i, "enabled": False} for i in ids[start:start + 2800]])
    resp = api.get("/v2/components", params={"ids": ",".join(ids)})
    assert sorted(ids) == ids_of(resp)


def test_ids_items_longer_than_127_or_all_empty_are_400(api: Api) -> None:
    assert_problem(api.get("/v2/components", params={"ids": "a," + "b" * 128}), 400, "Bad Request")
    assert_problem(api.get("/v2/components", params={"ids": ",,"}), 400, "Bad Request")


def test_paging_walks_every_match_once_in_order(fleet: Api) -> None:
    seen: List[str] = []
    after = None
    while True:
        params = {"page_size": "4", "enabled": "true"}
        if after:
            params["start_after_id"] = after
        page = ids_of(fleet.get("/v2/components", params=params))
        seen += page
        if len(page) < 4:
            break
        after = page[-1]
    assert seen == [f"x{n:02d}" for n in range(0, 30, 2)]


def test_page_size_zero_is_unlimited(fleet: Api) -> None:
    assert len(ids_of(fleet.get("/v2/components", params={"page_size": "0"}))) == 30


def test_bad_query_values_are_400(api: Api) -> None:
    for params in ({"enabled": "yes"}, {"page_size": "-1"}, {"page_size": "x"}, {"phase": "booting"},
                   {"session": ""}, {"session": "-bad-"}, {"start_after_id": ""}, {"status": "s" * 513}):
        assert_problem(api.get("/v2/components", params=params), 400, "Bad Request")


# -- concurrency (D2) --

def test_d2_concurrent_patches_of_different_fields_all_land(api: Api) -> None:
    put(api, "x1", enabled=False, error="")
    statuses: List[int] = []

    def patch(body: Dict[str, Any]) -> None:
        statuses.append(Api(api.base).patch("/v2/components/x1", json=body).status_code)

    bodies = [{"desired_state": {"configuration": f"c{n}"}, "session": "s"} for n in range(20)]
    bodies += [{"staged_state": {"configuration": f"st{n}"}} for n in range(20)]
    bodies += [{"retry_policy": 7}]
    threads = [threading.Thread(target=patch, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * len(bodies)
    body = api.get("/v2/components/x1").json()
    assert body["desired_state"]["configuration"].startswith("c")
    assert body["staged_state"]["configuration"].startswith("st")
    assert body["retry_policy"] == 7 and body["session"] == "s"


WRITERS = {
    "kernel": lambda n: {"staged_state": {"boot_artifacts": {"kernel": f"k{n}"}}},
    "kernel_parameters": lambda n: {"staged_state": {"boot_artifacts": {"kernel_parameters": f"p{n}"}}},
    "initrd": lambda n: {"staged_state": {"boot_artifacts": {"initrd": f"i{n}"}}},
    "staged_configuration": lambda n: {"staged_state": {"configuration": f"c{n}"}},
    "power_on_attempts": lambda n: {"event_stats": {"power_on_attempts": n}},
    "power_off_graceful_attempts": lambda n: {"event_stats": {"power_off_graceful_attempts": n}},
    "power_off_forceful_attempts": lambda n: {"event_stats": {"power_off_forceful_attempts": n}},
    "error": lambda n: {"error": f"e{n}"},
    "retry_policy": lambda n: {"retry_policy": n},
    "desired_token": lambda n: {"desired_state": {"bss_token": f"t{n}"}},
}


def _final_values(body: Dict[str, Any]) -> Dict[str, Any]:
    staged, stats = body["staged_state"], body["event_stats"]
    return {"kernel": staged["boot_artifacts"]["kernel"],
            "kernel_parameters": staged["boot_artifacts"]["kernel_parameters"],
            "initrd": staged["boot_artifacts"]["initrd"], "staged_configuration": staged["configuration"],
            **{k: stats[k] for k in ("power_on_attempts", "power_off_graceful_attempts", "power_off_forceful_attempts")},
            "error": body["error"], "retry_policy": body["retry_policy"],
            "desired_token": body["desired_state"]["bss_token"]}


def test_d2_concurrent_writers_never_lose_an_update(api: Api) -> None:
    """Ten writers each own one field and write it repeatedly; every last write must survive."""
    put(api, "x1", enabled=False, staged_state={"boot_artifacts": {}}, desired_state={}, event_stats={})
    rounds = 25
    failures: List[int] = []

    def writer(make) -> None:
        client = Api(api.base)
        for n in range(1, rounds + 1):
            resp = client.patch("/v2/components/x1", json=make(n))
            if resp.status_code != 200:
                failures.append(resp.status_code)

    threads = [threading.Thread(target=writer, args=(make,)) for make in WRITERS.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    final = _final_values(api.get("/v2/components/x1").json())
    assert final == {name: make(rounds) and _expected(name, rounds) for name, make in WRITERS.items()}


def _expected(name: str, n: int) -> Any:
    prefix = {"kernel": "k", "kernel_parameters": "p", "initrd": "i", "staged_configuration": "c",
              "error": "e", "desired_token": "t"}.get(name)
    return f"{prefix}{n}" if prefix else n


# -- extension: actual_state_older_than (served from a score index) --

def test_actual_state_older_than_selects_only_stale_reported_components(api: Api, redis_client) -> None:
    import json as _json
    bulk_put(api, [{"id": "fresh", "actual_state": {"boot_artifacts": ARTIFACTS}},
                   {"id": "stale", "actual_state": {"boot_artifacts": ARTIFACTS}},
                   {"id": "empty", "actual_state": {"boot_artifacts": {"kernel": ""}}},
                   {"id": "none"}])
    # age one record's report by rewriting its stored timestamp (and score) through a PUT of old data
    record = api.get("/v2/components/stale").json()
    raw = _json.loads(redis_client.get("bos:comp:stale"))
    raw["actual_state"]["last_updated"] = "2020-01-01T00:00:00"
    redis_client.set("bos:comp:stale", _json.dumps(raw))
    redis_client.zadd("bos:idx:comp:actual-stamp", {"stale": 1577836800})
    assert record["actual_state"]["boot_artifacts"]["kernel"] == ARTIFACTS["kernel"]
    assert ids_of(api.get("/v2/components", params={"actual_state_older_than": "4h"})) == ["stale"]
    assert ids_of(api.get("/v2/components", params={"actual_state_older_than": "0s"})) == ["fresh", "stale"]
    assert_problem(api.get("/v2/components", params={"actual_state_older_than": "soon"}), 400, "Bad Request")
    cleared = {"boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""}, "bss_token": ""}
    api.patch("/v2/components/stale", json={"actual_state": cleared})
    assert ids_of(api.get("/v2/components", params={"actual_state_older_than": "0s"})) == ["fresh"]
    api.delete("/v2/components/fresh")
    assert redis_client.zscore("bos:idx:comp:actual-stamp", "fresh") is None
