"""Mutants: each switches off one mechanism behind a promise, and names the tests that must
then fail. `python -m tests.mutation` (also `make mutation`, and a test in `make test`) runs
each named test set with its mutant applied in every Python process of the run (pytest and
the servers it starts), through `site/sitecustomize.py`, and fails if the tests stay green.

A mutant is applied by patching code at start-up; its anchor must exist, so a refactor that
moves a mechanism makes the mutation check fail loudly instead of testing nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, Tuple


def _replace_in(module_name: str, attribute: str, anchor: str, replacement: str) -> None:
    module = importlib.import_module(module_name)
    text = getattr(module, attribute)
    if anchor not in text:
        raise RuntimeError(f"mutant anchor {anchor!r} not found in {module_name}.{attribute}")
    setattr(module, attribute, text.replace(anchor, replacement))


def _always_true(module_name: str, function: str) -> None:
    """Make a predicate always true, wherever it was imported to (its code object is replaced)."""
    func = getattr(importlib.import_module(module_name), function)
    func.__code__ = (lambda *args, **kwargs: True).__code__


def _no_leases() -> None:
    """Operators without the coordination store: every claim granted (as before docs/ha.md)."""
    from bos_server.operators import claims, main
    main.RedisClaims = lambda redis, lease: claims.LocalClaims()  # type: ignore[assignment,misc]


def _no_fence() -> None:
    """Write requests no longer check the claim first."""
    from bos_server.operators import claims

    async def unchecked(self: object, claim: object) -> None:
        return None
    claims.RedisClaims.check = unchecked  # type: ignore[assignment,method-assign]


def _no_takeover() -> None:
    """Session setup leaves a component another session still drives to that session ("first
    session wins") instead of taking it over (operators.md §6.8)."""
    from bos_server.operators import session_setup
    write = session_setup.SessionSetupOperator._write_claimed

    async def first_session_wins(self, ctx, batch, session_claim):  # type: ignore[no-untyped-def]
        mine = {p["id"]: p.get("session") or p.get("staged_state", {}).get("session") for p in batch}
        held = {c["id"] for c in await ctx.bos.components_by_ids(list(mine), enabled=True)
                if c.get("session") and c.get("session") != mine[c["id"]]}
        kept = [p for p in batch if p["id"] not in held]
        return await write(self, ctx, kept, session_claim) if kept else []
    session_setup.SessionSetupOperator._write_claimed = first_session_wins  # type: ignore[method-assign]


def _alike_without_stored_value() -> None:
    """Records written alike (store/alike.py) keyed by the caller's key alone, not their stored
    value: a record is computed from another's stored value (a lost update)."""
    from bos_server.store import alike, components
    key_of = alike.key_of

    def caller_key_only(component_id, raw, alike_key, actor, *seen):  # type: ignore[no-untyped-def]
        found = key_of(component_id, raw, alike_key, actor, *seen)
        return None if found is None else ((found[0][0], b"", found[0][2]), found[1])
    alike.key_of = components.key_of = caller_key_only  # type: ignore[attr-defined]


def _limits_fail_open() -> None:
    """The defect D21 fixed: a limit without items selects every candidate, and `names_nothing`
    never flags one (replaced in the module before any importer binds the names)."""
    limits = importlib.import_module("bos_shared.limits")
    evaluate = limits.evaluate_limit

    def fail_open(limit, candidates, resolve):  # type: ignore[no-untyped-def]
        if not limits.no_limit(limit) and not limits.parse_limit(limit):
            return set(candidates)
        return evaluate(limit, candidates, resolve)
    limits.evaluate_limit = fail_open
    limits.names_nothing = lambda limit: False


def _node_any_component() -> None:
    """A node token may report for any component: its SPIFFE ID's xname is not compared (docs/auth.md)."""
    from bos_server.auth import middleware
    middleware.canonical = lambda xname: ""  # type: ignore[assignment]  # every xname compares equal


def _no_token_cache() -> None:
    """Every request verifies its token's signature again (docs/auth.md "Cost")."""
    from bos_server.auth import tokens
    tokens.Verifier._remember = lambda self, *args: None  # type: ignore[method-assign]


TEMPLATE_GUARD = ("if not template then return {'changed'} end\n"
                  "if template ~= ARGV[1] and redis.sha1hex(template) ~= ARGV[1] then return {'changed', template} end\n")


@dataclass(frozen=True)
class Mutant:
    mechanism: str
    apply: Callable[[], None]
    tests: Tuple[str, ...]
    heavy: bool = False  # whole stacks with several replicas: `make mutation`/`make soak`, not `make test`


MUTANTS: Dict[str, Mutant] = {
    "no-cas": Mutant(
        "the compare-and-set check of the Redis write script (D2): every write lands",
        lambda: _replace_in("bos_server.store.cas", "_SCRIPT", "if actual ~= expected then", "if false then"),
        ("tests/store/test_cas.py", "tests/store/test_cas_workers.py",
         "tests/store/test_alike.py::test_a_record_taken_alike_is_still_compared_and_set_on_its_own_read",
         "tests/store/test_cas_chunks.py::test_records_that_exist_in_an_update_expecting_them_absent_are_computed_from_what_they_hold")),
    "alike-without-stored-value": Mutant(
        "records written alike are computed once per stored value (store/alike.py): keyed without it",
        _alike_without_stored_value, ("tests/store/test_alike.py",)),
    "no-409": Mutant(
        "the actual-state 409 rule (api.md §2.6): every report is accepted",
        lambda: _always_true("bos_server.component_writes", "actual_state_update_allowed"),
        ("tests/api/test_components.py::test_actual_state_patch_409_rule",)),
    "no-takeover": Mutant(
        "the takeover rule (operators.md §6.8): a newer session's setup no longer takes shared components over",
        _no_takeover, ("tests/operators/test_lifecycle.py::test_newer_session_takes_over",)),
    "no-leases": Mutant(
        "component leases of the operator replicas (docs/ha.md §1): every claim granted",
        _no_leases, ("tests/operators/test_replicas.py::test_three_replicas_act_once_per_decision",), heavy=True),
    "no-fence": Mutant(
        "the fence check before every write request of a claim holder (docs/ha.md §3)",
        _no_fence,
        ("tests/operators/test_replicas.py::test_replica_paused_past_its_lease_sends_nothing_after_waking[bss]",),
        heavy=True),
    "no-adoption": Mutant(
        "decision records (docs/ha.md §2): a stopped holder's decision is issued again, not adopted",
        lambda: _replace_in("bos_server.operators.claims", "_MARK", "        code = 2\n", "        code = 1\n"),
        ("tests/operators/test_replicas.py::test_replica_paused_past_its_lease_sends_nothing_after_waking[pcs]",),
        heavy=True),
    "auth-node-any-component": Mutant(
        "a node token reports only for its own xname (docs/auth.md): any component accepted",
        _node_any_component,
        ("tests/auth/test_roles.py::test_a_node_token_reports_its_own_state_and_nothing_else",)),
    "auth-node-any-body": Mutant(
        "a node token may PATCH only actual_state (docs/auth.md): any body accepted",
        lambda: _always_true("bos_server.auth.middleware", "_is_report"),
        ("tests/auth/test_roles.py::test_the_node_steering_attack_is_forbidden",)),
    "auth-no-token-cache": Mutant(
        "verified tokens are remembered until they expire (docs/auth.md)",
        _no_token_cache,
        ("tests/auth/test_verifier.py::test_a_verified_token_is_served_from_the_cache_until_it_expires",)),
    "stale-template": Mutant(
        "the template guard of the session-create script (store/session_create.py): a session is created "
        "from this process's copy of a template that changed or vanished since",
        lambda: _replace_in("bos_server.store.session_create", "_SCRIPT", TEMPLATE_GUARD, ""),
        ("tests/store/test_session_create.py",
         "tests/api/test_sessions.py::test_no_session_is_created_from_a_template_deleted_after_an_earlier_create",
         "tests/api/test_sessions.py::test_a_create_checks_the_template_as_changed_after_an_earlier_create")),
    "limit-fail-open": Mutant(
        "limits fail closed (D21): a limit of only separators selects every node",
        _limits_fail_open,
        ("tests/shared/test_limit_grammar.py", "tests/api/test_limits.py")),
}
