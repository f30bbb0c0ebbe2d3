"""`bos-import` from a reference BOS's Redis (issue 16 item 4; layout api.md §6.4).

The target is the suite's real Redis and bos-server: what was imported is read
back through our API and compared with what the reference would have served
(its stored record with the computed status of §2.3, and no token timestamp, D12).
"""

from __future__ import annotations

from typing import Any, Dict

import pytest
import redis as redis_lib

from bos_sim.stack import ApiServer, RedisServer, wait_until
from tests.support.client import Api

from .conftest import digest, run_import, run_json, server_url
from .reference_fixture import (COMPONENT_COUNT, SESSIONS, TEMPLATES, TOKEN_IDS, TOKENS, Reference, xname)

SOURCE_DBS = list(range(6))


def expected_view(record: Dict[str, Any], status: str) -> Dict[str, Any]:
    """What the reference serves for a stored component (api.md §2.1, §2.3; D12)."""
    out = {k: v for k, v in record.items()}
    stored_status = dict(record.get("status") or {})
    out["status"] = {"phase": stored_status.get("phase", ""),
                     "status_override": stored_status.get("status_override", ""), "status": status}
    actual = out.get("actual_state")
    if actual and "timestamp" in (actual.get("boot_artifacts") or {}):
        out["actual_state"] = {**actual, "boot_artifacts": {k: v for k, v in actual["boot_artifacts"].items()
                                                             if k != "timestamp"}}
    return out


@pytest.fixture(scope="module")
def imported(reference: Reference, source: RedisServer, redis_server: RedisServer,
             redis_client: redis_lib.Redis) -> Dict[str, Any]:
    """Dry run, then --apply, into an emptied target; returns both reports and the fingerprints."""
    redis_client.flushdb()
    before = digest(source.url, SOURCE_DBS)
    code, dry = run_json(server_url(source.url), redis_server.url)
    assert code == 0, dry
    assert redis_client.dbsize() == 0, "a dry run wrote to the target"
    code, applied = run_json(server_url(source.url), redis_server.url, "--apply")
    assert code == 0, applied
    return {"dry": dry, "applied": applied, "source_before": before}


def test_dry_run_counts_every_record_and_reports_every_reject(imported: Dict[str, Any], reference: Reference) -> None:
    report = imported["dry"]
    assert report["applied"] is False
    counts = report["counts"]
    assert counts["components"]["new"] == COMPONENT_COUNT
    assert counts["templates"]["new"] == len(TEMPLATES)
    assert counts["sessions"]["new"] == len(SESSIONS)
    assert counts["statuses"]["new"] == len(reference.statuses)
    assert counts["tokens"]["new"] == len(TOKENS)
    assert counts["options"]["new"] == len(reference.options)
    assert all(c["written"] == 0 and c["conflicting"] == 0 for c in counts.values())
    found = {(r["kind"], r["key"]): r["reason"] for r in report["rejected"]}
    assert set(found) == set(reference.rejects), "every corrupt or unknown entry, and only those, is rejected"
    for key, part in reference.rejects.items():
        assert part in found[key], (key, found[key])
    for kind, c in counts.items():
        assert c["rejected"] == sum(1 for k in found if k[0] == kind)
        assert c["importable"] == c["new"]


def test_apply_writes_everything_importable_and_never_touches_the_source(
        imported: Dict[str, Any], source: RedisServer) -> None:
    counts = imported["applied"]["counts"]
    for kind, c in counts.items():
        assert c["written"] == c["importable"] == c["new"], kind
    assert digest(source.url, SOURCE_DBS) == imported["source_before"]


def test_components_read_back_as_the_reference_served_them(imported: Dict[str, Any], api_server: ApiServer,
                                                           reference: Reference) -> None:
    api = Api(api_server.url)
    listed = {c["id"]: c for c in api.get("/v2/components").json()}
    assert len(listed) == COMPONENT_COUNT
    for cid, (record, status) in reference.components.items():
        assert listed[cid] == expected_view(record, status), cid
    one = api.get(f"/v2/components/{xname(1)}").json()
    assert one == expected_view(*reference.components[xname(1)])


def test_imported_components_are_indexed(imported: Dict[str, Any], api_server: ApiServer,
                                         reference: Reference) -> None:
    api = Api(api_server.url)
    for query, wanted in [
        ({"session": "reboot-running"}, lambda r, s: r.get("session") == "reboot-running"),
        ({"staged_session": "staged-next"}, lambda r, s: (r.get("staged_state") or {}).get("session") == "staged-next"),
        ({"enabled": "true"}, lambda r, s: r.get("enabled") is True),
        ({"phase": "powering_off"}, lambda r, s: (r.get("status") or {}).get("phase") == "powering_off"),
        ({"status": "power_on_called,failed"}, lambda r, s: s in ("power_on_called", "failed")),
    ]:
        got = [c["id"] for c in api.get("/v2/components", params=query).json()]
        expected = sorted(cid for cid, (r, s) in reference.components.items() if wanted(r, s))
        assert got == expected and expected, query


def test_templates_sessions_statuses_and_options_read_back(imported: Dict[str, Any], api_server: ApiServer,
                                                           reference: Reference) -> None:
    api = Api(api_server.url)
    for template in TEMPLATES:
        got = api.get(f"/v2/sessiontemplates/{template['name']}", tenant=template["tenant"])
        assert got.status_code == 200 and got.json() == template, template
    assert len(api.get("/v2/sessiontemplates").json()) == len(TEMPLATES)
    assert [t["name"] for t in api.get("/v2/sessiontemplates", tenant="vcluster-red").json()] == ["tenant-only"]
    for session in SESSIONS:
        got = api.get(f"/v2/sessions/{session['name']}", tenant=session["tenant"])
        assert got.status_code == 200 and got.json() == session, session
    running = api.get("/v2/sessions", params={"status": "running"}).json()
    assert sorted((s["tenant"] or "", s["name"]) for s in running) == [
        ("", "reboot-running"), ("vcluster-blue", "shutdown-tenant")]
    for (name, tenant), status in reference.statuses.items():
        got = api.get(f"/v2/sessions/{name}/status", tenant=tenant)
        assert got.status_code == 200 and got.json() == status, name
    # The API caches options for up to a second (D3): another module's request may have
    # filled that cache just before the import wrote them, so wait out that staleness.
    wanted = dict(reference.options)
    wait_until(lambda: {k: api.get("/v2/options").json().get(k) for k in wanted} == wanted,
               5, "the imported options to be served")
    options = api.get("/v2/options").json()
    for name, value in reference.options.items():
        assert options[name] == value, name
    assert options["component_actual_state_ttl"] == "4h"  # the illegal stored value was not imported


def test_reference_tokens_resolve_in_our_api(imported: Dict[str, Any], api_server: ApiServer) -> None:
    """A node booted by the reference reports its token to us after the cut-over (api.md §2.4 step 1)."""
    api = Api(api_server.url)
    target = xname(0)  # a discovered, disabled component
    resp = api.patch(f"/v2/components/{target}", json={"actual_state": {"bss_token": TOKEN_IDS[3]}})
    assert resp.status_code == 200, resp.text
    record = TOKENS[TOKEN_IDS[3]]
    assert resp.json()["actual_state"]["boot_artifacts"] == {k: record[k] for k in ("kernel", "kernel_parameters", "initrd")}


def test_second_run_is_idempotent(imported: Dict[str, Any], reference: Reference, source: RedisServer,
                                  redis_server: RedisServer, redis_client: redis_lib.Redis) -> None:
    # Put back the one record the token test changed, through the importer's own overwrite.
    run_import(server_url(source.url), redis_server.url, "--apply", "--overwrite")
    target_before = digest(redis_server.url, [0])
    code, again = run_json(server_url(source.url), redis_server.url, "--apply")
    assert code == 0, again
    for kind, c in again["counts"].items():
        assert c["written"] == 0 and c["new"] == 0 and c["conflicting"] == 0, (kind, c)
        assert c["unchanged"] == c["importable"], kind
    assert digest(redis_server.url, [0]) == target_before
