"""The v1 agent's pure parts: stages from ordinals (v1_plan) and categories from components (v1_progress)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from bos_server.operators.v1_agent import retry_hint, v1_kernel_parameters
from bos_server.operators.v1_plan import Stage, plan
from bos_server.operators.v1_progress import TAKEN_OVER, progress

SID = "8deb0746-b18c-427c-84a8-72ec6a28642c"


def bs(**ordinals: int) -> Dict[str, Any]:
    return {"path": "s3://x", "type": "s3", "node_list": ["n"], **ordinals}


def test_plan_groups_boot_sets_by_ordinal_lowest_first_l2() -> None:
    sets = {"c": bs(boot_ordinal=2), "a": bs(boot_ordinal=1), "b": bs(boot_ordinal=1), "d": bs()}
    assert [s.boot_sets for s in plan("boot", sets)] == [("d",), ("a", "b"), ("c",)]
    assert all(s.engine_op == "boot" and s.phases == ("boot", "configure") for s in plan("boot", sets))


def test_plan_reboot_with_one_shutdown_group_reboots_each_boot_group() -> None:
    sets = {"a": bs(boot_ordinal=1), "b": bs(boot_ordinal=2)}
    assert plan("reboot", sets) == [Stage("reboot", ("shutdown", "boot", "configure"), ("a",)),
                                    Stage("reboot", ("shutdown", "boot", "configure"), ("b",))]


def test_plan_reboot_with_shutdown_ordinals_shuts_down_then_boots() -> None:
    sets = {"a": bs(shutdown_ordinal=2, boot_ordinal=1), "b": bs(shutdown_ordinal=1, boot_ordinal=2)}
    assert plan("reboot", sets) == [Stage("shutdown", ("shutdown",), ("b",)), Stage("shutdown", ("shutdown",), ("a",)),
                                    Stage("boot", ("boot", "configure"), ("a",)),
                                    Stage("boot", ("boot", "configure"), ("b",))]


def test_plan_configure_is_one_stage_and_shutdown_follows_its_ordinal() -> None:
    sets = {"a": bs(shutdown_ordinal=3), "b": bs(shutdown_ordinal=1)}
    assert plan("configure", sets) == [Stage("configure", ("configure",), ("a", "b"))]
    assert [s.boot_sets for s in plan("shutdown", sets)] == [("b",), ("a",)]


REBOOT = Stage("reboot", ("shutdown", "boot", "configure"), ("compute",))


def comp(phase: str = "", enabled: bool = True, override: str = "", error: str = "", session: str = SID) -> Dict[str, Any]:
    return {"id": "n", "session": session, "enabled": enabled, "error": error,
            "status": {"phase": phase, "status_override": override}, "last_action": {"action": "session_setup"}}


@pytest.mark.parametrize("record,expected", [
    (comp(""), {"shutdown": "in_progress", "boot": "not_started", "configure": "not_started"}),
    (comp("powering_off"), {"shutdown": "in_progress", "boot": "not_started", "configure": "not_started"}),
    (comp("powering_on"), {"shutdown": "succeeded", "boot": "in_progress", "configure": "not_started"}),
    (comp("configuring"), {"shutdown": "succeeded", "boot": "succeeded", "configure": "in_progress"}),
    (comp("", enabled=False), {"shutdown": "succeeded", "boot": "succeeded", "configure": "succeeded"}),
    (comp("powering_on", False, "failed", "e"), {"shutdown": "succeeded", "boot": "failed", "configure": "excluded"}),
    (comp("powering_off", False, "failed", "e"), {"shutdown": "failed", "boot": "excluded", "configure": "excluded"}),
    (comp("configuring", False, "failed", "e"), {"shutdown": "succeeded", "boot": "succeeded", "configure": "failed"}),
    (comp("", False, "on_hold", "e"), {"shutdown": "failed", "boot": "excluded", "configure": "excluded"}),
])
def test_reboot_categories_one_per_phase_l7(record, expected) -> None:
    found = progress(REBOOT, record, SID, configured=True)
    assert found.categories == expected
    assert found.final == (record["enabled"] is False)
    assert bool(found.errors) == (record["status"]["status_override"] != "")


def test_without_cfs_configure_ends_excluded_v9() -> None:
    boot = Stage("boot", ("boot", "configure"), ("compute",))
    assert progress(boot, comp("powering_on"), SID, False).categories == {"boot": "in_progress",
                                                                          "configure": "not_started"}
    assert progress(boot, comp("", False), SID, False).categories == {"boot": "succeeded", "configure": "excluded"}


def test_taken_over_keeps_finished_phases_and_names_the_new_session_l1() -> None:
    found = progress(REBOOT, comp("powering_on", session="other"), SID, True,
                     previous={"shutdown": "succeeded", "boot": "in_progress"})
    assert found.categories == {"shutdown": "succeeded", "boot": "excluded", "configure": "excluded"}
    assert found.errors == {"boot": TAKEN_OVER.format("other")} and found.final


def test_configure_stage_counts_the_node_as_booted() -> None:
    configure = Stage("configure", ("configure",), ("compute",))
    assert progress(configure, comp(""), SID, True).categories == {"configure": "in_progress"}
    assert progress(configure, comp("", False), SID, True).categories == {"configure": "succeeded"}


def test_kernel_parameters_and_retry_hint_v1_4_3_4_4() -> None:
    assert v1_kernel_parameters("a b bos_update_frequency=4h", SID) == f"a b bos_session_id={SID}"
    assert retry_hint("reboot", "t1", ["x2", "x1"]) == [
        "These nodes failed to reboot. x1,x2", "You can attempt to reboot these nodes by issuing the command:",
        "cray bos v1 session create --template-name t1 --operation reboot --limit x1,x2"]


def test_agent_gives_up_after_failing_for_a_long_time_l13(redis_server, monkeypatch) -> None:
    """A session whose agent keeps failing ends with a stop_time and the error; short trouble is resumed."""
    import asyncio
    import logging
    from types import SimpleNamespace

    from redis.asyncio import Redis

    from bos_server.operators import v1_agent
    from bos_server.store.v1 import V1Store

    async def scenario() -> None:
        redis = Redis.from_url(redis_server.url)
        try:
            store = V1Store(redis)
            await store.create_session({"id": SID, "operation": "boot", "templateName": "t", "job": "boa-x",
                                        "limit": "", "template": {}}, "2024-01-01T00:00:00.000000Z")
            agent = v1_agent.SessionAgent(SimpleNamespace(log=logging.getLogger("test")), store, SID)
            assert await agent.give_up_after_failure("HSM is down") is False  # the first failure: keep trying
            assert SID in await store.active_ids()
            monkeypatch.setattr(v1_agent, "FAILING_FOR", 0.0)
            assert await agent.give_up_after_failure("HSM is down") is True
            fields = await store.status_fields(SID)
            assert fields["stop_time"] and fields["error"] == '"HSM is down"'
            assert SID not in await store.active_ids()
            await store.delete_session(SID)
        finally:
            await redis.aclose()

    asyncio.run(scenario())
