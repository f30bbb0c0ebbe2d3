"""`bos components list|describe|update|delete` against the real API."""

from __future__ import annotations

from typing import List

from tests.support.client import Api

from .conftest import Runner, put_components


def _fleet(api: Api, count: int) -> List[str]:
    """`count` components: every 4th failed with an error, every 3rd enabled and powering on."""
    records = []
    for i in range(count):
        record: dict = {"id": f"x3000c0s{i}b0n0", "enabled": False, "session": "s1" if i < 5 else ""}
        if i % 4 == 0:
            record.update(error="Failed to power on", status={"phase": "", "status_override": "failed"})
        elif i % 3 == 0:
            record.update(status={"phase": "powering_on"}, last_action={"action": "powering_on"})
        records.append(record)
    put_components(api, records)
    return [r["id"] for r in records]


def test_small_list_shows_counts_then_rows(bos: Runner, api: Api) -> None:
    _fleet(api, 8)
    result = bos("components", "list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "Components: 8 (enabled 0, disabled 8)"
    assert lines[1] == "By status:  power_on_called 2, stable 4, failed 2"
    assert lines[2] == "By phase:   powering_on 2, none 6"
    assert lines[4].split() == ["ID", "ENABLED", "PHASE", "STATUS", "LAST", "ACTION", "SESSION", "ERROR"]
    assert len(lines) == 5 + 8
    assert "Failed to power on" in result.out


def test_thousands_of_components_are_summarised_and_rows_come_on_request(bos: Runner, api: Api) -> None:
    ids = _fleet(api, 1200)
    summary = bos("components", "list")
    assert summary.out.splitlines()[0] == "Components: 1200 (enabled 0, disabled 1200)"
    assert "failed 300" in summary.out
    assert "1200 rows not shown: add --rows" in summary.out
    assert ids[0] not in summary.out
    rows = bos("components", "list", "--rows")
    assert len(rows.out.splitlines()) == 5 + 1200
    counts_only = bos("components", "list", "--summary", "--status", "failed")
    assert counts_only.out.splitlines() == ["Components: 300 (enabled 0, disabled 300)",
                                           "By status:  failed 300", "By phase:   none 300"]


def test_json_list_equals_the_api_across_pages(bos: Runner, api: Api) -> None:
    _fleet(api, 25)
    result = bos("components", "list", "--page-size", "7", "--format", "json")
    assert result.json() == api.get("/v2/components").json()


def test_filters_are_sent_as_the_api_expects(bos: Runner, api: Api) -> None:
    ids = _fleet(api, 12)
    by_ids = bos("components", "list", "--ids", f"{ids[1]},{ids[2]}", ids[3], "--format", "json").json()
    assert [c["id"] for c in by_ids] == sorted([ids[1], ids[2], ids[3]])
    by_session = bos("components", "list", "--session", "s1", "--format", "json").json()
    assert by_session == api.get("/v2/components", params={"session": "s1"}).json()
    by_phase = bos("components", "list", "--phase", "powering_on", "--format", "json").json()
    assert {c["status"]["phase"] for c in by_phase} == {"powering_on"}
    statuses = bos("components", "list", "--status", "failed,power_on_called", "--format", "json").json()
    assert {c["status"]["status"] for c in statuses} == {"failed", "power_on_called"}
    api.patch(f"/v2/components/{ids[5]}", json={"enabled": True})
    enabled = bos("components", "list", "--enabled", "True", "--format", "json").json()
    assert [c["id"] for c in enabled] == [ids[5]]


def test_bad_phase_is_a_usage_error(bos: Runner) -> None:
    result = bos("components", "list", "--phase", "booting")
    assert result.code == 2 and "invalid choice" in result.err


def test_describe_table_and_json(bos: Runner, api: Api) -> None:
    ids = _fleet(api, 1)
    table = bos("components", "describe", ids[0])
    assert "status.status" in table.out and "failed" in table.out
    assert bos("components", "describe", ids[0], "--format", "json").json() == \
        api.get(f"/v2/components/{ids[0]}").json()


def test_update_one_component_enables_clears_error_and_sets_retry_policy(bos: Runner, api: Api) -> None:
    ids = _fleet(api, 1)
    result = bos("components", "update", ids[0], "--enabled", "true", "--clear-error", "--retry-policy", "5",
                 "--format", "json")
    assert result.code == 0, result.err
    stored = api.get(f"/v2/components/{ids[0]}").json()
    assert result.json() == stored
    assert (stored["enabled"], stored["error"], stored["retry_policy"]) == (True, "", 5)


def test_update_many_by_ids_and_by_session(bos: Runner, api: Api) -> None:
    ids = _fleet(api, 8)
    many = bos("components", "update", ids[0], ids[1], "--filter-ids", ids[2], "--error", "checked")
    assert many.code == 0, many.err
    assert many.out.startswith("Updated 3 components.")
    assert [c["error"] for c in api.get("/v2/components", params={"ids": ",".join(ids[:3])}).json()] == ["checked"] * 3
    by_session = bos("components", "update", "--filter-session", "s1", "--enabled", "false", "--format", "json")
    assert sorted(c["id"] for c in by_session.json()) == sorted(ids[:5])


def test_update_needs_a_change_and_targets(bos: Runner, api: Api) -> None:
    assert "nothing to change" in bos("components", "update", "x1").err
    assert "give the component IDs" in bos("components", "update", "--enabled", "false").err
    both = bos("components", "update", "x1", "--filter-session", "s1", "--enabled", "false")
    assert both.code == 2 and "not both" in both.err


def test_update_of_an_unknown_component_is_not_found(bos: Runner) -> None:
    result = bos("components", "update", "x9c0s0b0n0", "x9c0s0b0n1", "--enabled", "false")
    assert result.code == 1
    assert result.err.strip() == ("bos: error: The resource was not found: "
                                  "Component 'x9c0s0b0n0' does not exist (HTTP 404)")


def test_delete(bos: Runner, api: Api) -> None:
    ids = _fleet(api, 2)
    result = bos("components", "delete", ids[0])
    assert result.out.strip() == f"Component '{ids[0]}' deleted."
    assert [c["id"] for c in api.get("/v2/components").json()] == [ids[1]]
    assert bos("components", "delete", ids[0]).code == 1


def test_history_lists_every_change_oldest_first(bos: Runner, api: Api) -> None:
    put_components(api, [{"id": "x3000c0s9b0n0", "enabled": False}])
    for error in ("first", "second", ""):
        assert api.patch("/v2/components/x3000c0s9b0n0", json={"error": error}).status_code == 200
    result = bos("components", "history", "x3000c0s9b0n0")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["TIME", "STATUS", "PHASE"]
    assert [line.split()[-1] for line in lines[2:]] == ["first", "second", "-"]  # error column
    assert "error cleared" in lines[-1] and "created" in lines[1]
    last = bos("components", "history", "x3000c0s9b0n0", "--last", "1", "--format", "json")
    assert last.code == 0 and [e["reason"] for e in __import__("json").loads(last.out)] == ["error cleared"]
    missing = bos("components", "history", "x3000c0s9b9n9")
    assert missing.code != 0 and "does not exist" in missing.err
