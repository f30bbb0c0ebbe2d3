"""The index-counted extended status equals the record-based definition (api.md §2.9)."""

from __future__ import annotations

import random

from bos_shared.status import extended_status
from tests.support.client import Api

TEMPLATE = {"boot_sets": {"b": {"path": "s3://boot-images/manifest.json", "type": "s3", "node_list": ["x1"]}}}


def _random_component(rng: random.Random, n: int) -> dict:
    record = {"id": f"x{n:04d}", "session": rng.choice(["s1", "s1", "s1", "other", ""]),
              "enabled": rng.choice([True, False]),
              "status": {"phase": rng.choice(["", "powering_on", "powering_off", "configuring"]),
                         "status_override": rng.choice(["", "", "failed", "on_hold", "custom"])},
              "last_action": {"action": rng.choice(["powering_on", "session_setup", "powering_off_gracefully"]),
                              "failed": rng.choice([True, False])},
              "error": rng.choice(["", "", "cfs configuration failed", "boom"])}
    if rng.random() < 0.1:
        record["staged_state"] = {"session": "s1"}
    return record


def test_counted_extended_status_matches_the_record_definition(api: Api) -> None:
    rng = random.Random(7)
    records = [_random_component(rng, n) for n in range(600)]
    assert api.put("/v2/components", json=records).status_code == 200
    # PUT put enabled records on hold; restore the drawn overrides
    api.patch("/v2/components", json=[{"id": r["id"], "status": r["status"]} for r in records])
    assert api.put("/v2/sessiontemplates/t", json=TEMPLATE).status_code == 200
    session = api.post("/v2/sessions", json={"name": "s1", "template_name": "t", "operation": "shutdown"}).json()
    counted = api.get("/v2/sessions/s1/status").json()
    stored = api.get("/v2/components").json()
    members = [r for r in stored if r.get("session") == "s1"]
    staged = sum(1 for r in stored if (r.get("staged_state") or {}).get("session") == "s1")
    expected = extended_status(session, members, staged)
    expected["timing"]["duration"] = counted["timing"]["duration"]
    assert counted == expected
    assert counted["error_summary"]["boom"]["list"].endswith("...")
