"""Tenancy: the `Cray-Tenant-Name` header against the simulator's TAPMS (api.md §1.8, §2.9,
§3.3-§3.9; D5, D10, D17, D19, D20, D25).

Runs its own API server whose BOS_TAPMS_URL points at `bos-sim` (tests/api/conftest.py).
TAPMS answers are cached for up to 10 s (D5), so tests that break TAPMS use tenants that
no other test has looked up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from bos_sim.stack import ApiServer, free_port
from tests.api.conftest import IMAGE, TENANTS, SimStack, manifest_url
from tests.support.client import Api, assert_problem

BLUE, RED, EMPTY_TENANT = "vcluster-blue", "vcluster-red", "vcluster-empty"
B0, B1 = TENANTS[BLUE]          # x1000c0s0b0n0, x1000c0s0b0n1
RED0 = TENANTS[RED][0]            # x1000c0s0b1n0
FREE = "x1000c0s0b1n1"          # nobody's
BAD = "Bad Request"
NOT_FOUND = "The resource was not found"
INVALID = "Invalid tenant"
UNAVAILABLE = "Service Unavailable"
BOOT_SET = {"path": manifest_url(IMAGE), "type": "s3", "node_list": [B0]}
ARTIFACTS = {"kernel": "k", "kernel_parameters": "p", "initrd": "i"}


def put_template(api: Api, name: str, tenant: Optional[str], description: str = "d") -> Dict[str, Any]:
    resp = api.put(f"/v2/sessiontemplates/{name}", json={"description": description, "boot_sets": {"b1": BOOT_SET}},
                   tenant=tenant)
    assert resp.status_code == 200, resp.text
    return resp.json()


def create_session(api: Api, name: str, tenant: Optional[str], template: str = "tpl",
                   operation: str = "shutdown") -> Dict[str, Any]:
    resp = api.post("/v2/sessions", json={"name": name, "operation": operation, "template_name": template},
                    tenant=tenant)
    assert resp.status_code == 201, resp.text
    return resp.json()


def keys_of(resp) -> List[Tuple[Optional[str], str]]:
    assert resp.status_code == 200, resp.text
    return [(r["tenant"], r["name"]) for r in resp.json()]


def ids_of(resp) -> List[str]:
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()]


@pytest.fixture
def api(sim_api: Api) -> Api:
    """In this module `api` is the simulator-backed server (real TAPMS)."""
    return sim_api


@pytest.fixture
def components(api: Api) -> Api:
    """Components owned by blue (B0, B1), red (RED0) and nobody (FREE)."""
    resp = api.put("/v2/components", json=[{"id": c, "enabled": False, "error": "", "session": ""}
                                           for c in (B0, B1, RED0, FREE)])
    assert resp.status_code == 200, resp.text
    return api


# -- sessions and templates are namespaced by (tenant, name) --

def test_same_template_name_once_per_tenant(api: Api) -> None:
    none = put_template(api, "tpl", None, "untenanted")
    blue = put_template(api, "tpl", BLUE, "blue")
    red = put_template(api, "tpl", RED, "red")
    assert (none["tenant"], blue["tenant"], red["tenant"]) == (None, BLUE, RED)
    assert api.get("/v2/sessiontemplates/tpl").json() == none
    assert api.get("/v2/sessiontemplates/tpl", tenant=BLUE).json() == blue
    assert api.get("/v2/sessiontemplates/tpl", tenant=RED).json() == red
    assert api.get("/v2/sessiontemplates", tenant=BLUE).json() == [blue]
    assert api.get("/v2/sessiontemplates", tenant=EMPTY_TENANT).json() == []
    assert api.get("/v2/sessiontemplates").json() == [none, blue, red]  # administrator view


def test_d20_templates_are_sorted_by_tenant_then_name(api: Api) -> None:
    for name, tenant in [("b", RED), ("z", None), ("c", BLUE), ("a", RED), ("a", BLUE), ("y", None)]:
        put_template(api, name, tenant)
    assert keys_of(api.get("/v2/sessiontemplates")) == [(None, "y"), (None, "z"), (BLUE, "a"), (BLUE, "c"),
                                                         (RED, "a"), (RED, "b")]
    assert keys_of(api.get("/v2/sessiontemplates", tenant=RED)) == [(RED, "a"), (RED, "b")]


def test_template_patch_delete_and_validate_address_the_header_namespace(api: Api) -> None:
    put_template(api, "tpl", None, "untenanted")
    put_template(api, "tpl", BLUE, "blue")
    resp = api.patch("/v2/sessiontemplates/tpl", json={"description": "blue2"}, tenant=BLUE)
    assert resp.status_code == 200 and resp.json()["tenant"] == BLUE
    assert api.get("/v2/sessiontemplates/tpl").json()["description"] == "untenanted"
    assert api.get("/v2/sessiontemplatesvalid/tpl", tenant=BLUE).json() == "Valid"
    assert api.delete("/v2/sessiontemplates/tpl", tenant=BLUE).status_code == 204
    assert_problem(api.get("/v2/sessiontemplates/tpl", tenant=BLUE), 404, NOT_FOUND,
                   f"Session template for tenant '{BLUE}' 'tpl' does not exist")
    assert_problem(api.get("/v2/sessiontemplatesvalid/tpl", tenant=BLUE), 404, NOT_FOUND,
                   f"Session template for tenant '{BLUE}' 'tpl' does not exist")
    assert api.get("/v2/sessiontemplates/tpl").json()["description"] == "untenanted"


def test_template_patch_needs_no_tapms_check(api: Api, sim_stack: SimStack) -> None:
    put_template(api, "tpl", BLUE)
    sim_stack.sim.add_service_fault("tapms", status=404)  # every tenant now "does not exist"
    resp = api.patch("/v2/sessiontemplates/tpl", json={"description": "x"}, tenant=BLUE)
    assert resp.status_code == 200, resp.text


def test_same_session_name_once_per_tenant(api: Api) -> None:
    for tenant in (None, BLUE, RED):
        put_template(api, "tpl", tenant)
    none, blue, red = (create_session(api, "s1", t) for t in (None, BLUE, RED))
    assert (none["tenant"], blue["tenant"], red["tenant"]) == (None, BLUE, RED)
    assert api.get("/v2/sessions/s1").json() == none
    assert api.get("/v2/sessions/s1", tenant=BLUE).json() == blue
    assert api.get("/v2/sessions", tenant=RED).json() == [red]
    assert api.get("/v2/sessions").json() == [none, blue, red]


def test_d20_sessions_are_sorted_by_tenant_then_name(api: Api) -> None:
    for tenant in (None, BLUE, RED):
        put_template(api, "tpl", tenant)
    for name, tenant in [("b", RED), ("z", None), ("c", BLUE), ("a", RED), ("a", BLUE), ("y", None)]:
        create_session(api, name, tenant)
    assert keys_of(api.get("/v2/sessions")) == [(None, "y"), (None, "z"), (BLUE, "a"), (BLUE, "c"),
                                                (RED, "a"), (RED, "b")]
    assert keys_of(api.get("/v2/sessions", tenant=BLUE)) == [(BLUE, "a"), (BLUE, "c")]
    assert keys_of(api.get("/v2/sessions", tenant="")) == keys_of(api.get("/v2/sessions"))  # empty = no tenant


def test_session_create_resolves_the_template_in_the_tenant_namespace(api: Api) -> None:
    put_template(api, "shared", None)
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "shared"}, tenant=BLUE)
    assert_problem(resp, 400, BAD, "Session Template Name invalid: shared")
    put_template(api, "mine", BLUE)
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "mine"})
    assert_problem(resp, 400, BAD, "Session Template Name invalid: mine")
    assert create_session(api, "s1", BLUE, "mine", operation="boot")["tenant"] == BLUE


def test_duplicate_tenant_session_is_a_409_naming_the_tenant(api: Api) -> None:
    put_template(api, "tpl", BLUE)
    create_session(api, "s1", BLUE)
    resp = api.post("/v2/sessions", json={"name": "s1", "operation": "shutdown", "template_name": "tpl"}, tenant=BLUE)
    assert_problem(resp, 409, "The resource to be created already exists",
                   f"Session 's1' already exists for tenant '{BLUE}'")


def test_session_by_name_access_addresses_the_header_namespace(api: Api) -> None:
    put_template(api, "tpl", BLUE)
    create_session(api, "s1", BLUE)
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/status"), ("POST", "/status")]:
        body = {"components": ""} if method == "PATCH" else None
        assert_problem(api.request(method, f"/v2/sessions/s1{suffix}", json=body), 404, NOT_FOUND,
                       "Session 's1' does not exist")
        assert_problem(api.request(method, f"/v2/sessions/s1{suffix}", json=body, tenant=RED), 404, NOT_FOUND,
                       f"Session for tenant '{RED}' 's1' does not exist")
    resp = api.patch("/v2/sessions/s1", json={"status": {"status": "running"}}, tenant=BLUE)
    assert resp.status_code == 200 and resp.json()["tenant"] == BLUE
    assert api.delete("/v2/sessions/s1", tenant=BLUE).status_code == 204
    assert api.get("/v2/sessions").json() == []


def _complete(api: Api, name: str, tenant: Optional[str]) -> None:
    resp = api.patch(f"/v2/sessions/{name}", json={"status": {"status": "complete", "end_time": "2025-01-13T00:00:00"}},
                     tenant=tenant)
    assert resp.status_code == 200, resp.text


@pytest.fixture
def tenant_sessions(api: Api) -> Api:
    """Complete and running sessions for no tenant, blue and red."""
    for tenant in (None, BLUE, RED):
        put_template(api, "tpl", tenant)
        create_session(api, "done", tenant)
        _complete(api, "done", tenant)
        create_session(api, "busy", tenant)
    return api


def test_d10_bulk_delete_with_tenant_header_deletes_only_that_tenants_sessions(tenant_sessions: Api) -> None:
    assert tenant_sessions.delete("/v2/sessions", tenant=BLUE).status_code == 204
    assert keys_of(tenant_sessions.get("/v2/sessions")) == [(None, "busy"), (None, "done"), (BLUE, "busy"),
                                                            (RED, "busy"), (RED, "done")]


def test_d10_bulk_delete_without_header_deletes_every_tenants_sessions(tenant_sessions: Api) -> None:
    assert tenant_sessions.delete("/v2/sessions").status_code == 204
    assert keys_of(tenant_sessions.get("/v2/sessions")) == [(None, "busy"), (BLUE, "busy"), (RED, "busy")]
    assert tenant_sessions.delete("/v2/sessions", params={"status": "pending"}).status_code == 204
    assert tenant_sessions.get("/v2/sessions").json() == []


def test_d10_bulk_delete_removes_tenant_saved_statuses(components: Api) -> None:
    put_template(components, "tpl", BLUE)
    assert components.patch("/v2/components", json=[{"id": B0, "session": "s1", "error": "old"}]).status_code == 200
    create_session(components, "s1", BLUE)
    assert components.post("/v2/sessions/s1/status", tenant=BLUE).json()["error_summary"] != {}
    _complete(components, "s1", BLUE)
    assert components.delete("/v2/sessions").status_code == 204  # no header: deleted under its own tenant
    assert components.patch("/v2/components", json=[{"id": B0, "error": ""}]).status_code == 200
    create_session(components, "s1", BLUE)
    _complete(components, "s1", BLUE)
    assert components.get("/v2/sessions/s1/status", tenant=BLUE).json()["error_summary"] == {}


# -- extended status (§2.9, D25) --

def test_tenant_session_status_counts_only_the_tenants_components(components: Api) -> None:
    put_template(components, "tpl", BLUE)
    put_template(components, "tpl", None)
    body = [{"id": c, "session": "s1"} for c in (B0, RED0, FREE)] + [{"id": B1, "staged_state": {"session": "s1"}}]
    assert components.patch("/v2/components", json=body).status_code == 200
    create_session(components, "s1", BLUE)
    blue = components.get("/v2/sessions/s1/status", tenant=BLUE).json()
    assert (blue["managed_components_count"], blue["percent_staged"]) == (2, 50.0)
    create_session(components, "s1", None)
    # D25: the untenanted s1 ignores blue's nodes, because blue has its own session s1 (red has none)
    untenanted = components.get("/v2/sessions/s1/status").json()
    assert (untenanted["managed_components_count"], untenanted["percent_staged"]) == (2, 0.0)
    create_session(components, "other", None)
    assert components.patch("/v2/components", json=[{"id": B0, "session": "other"}]).status_code == 200
    assert components.get("/v2/sessions/other/status").json()["managed_components_count"] == 1


# -- components (§1.8, §3.3, §3.4, D17) --

def test_component_list_with_tenant_header_shows_only_owned_components(components: Api) -> None:
    assert ids_of(components.get("/v2/components", tenant=BLUE)) == [B0, B1]
    assert ids_of(components.get("/v2/components", tenant=RED)) == [RED0]
    assert ids_of(components.get("/v2/components", tenant=EMPTY_TENANT)) == []
    assert ids_of(components.get("/v2/components")) == sorted([B0, B1, RED0, FREE])
    assert ids_of(components.get("/v2/components", tenant="")) == sorted([B0, B1, RED0, FREE])
    assert ids_of(components.get("/v2/components", params={"ids": f"{RED0},{B1},{FREE}"}, tenant=BLUE)) == [B1]
    assert ids_of(components.get("/v2/components", params={"page_size": 1}, tenant=BLUE)) == [B0]
    assert ids_of(components.get("/v2/components", params={"start_after_id": B0}, tenant=BLUE)) == [B1]


def test_single_component_access_to_non_owned_ids_is_a_404(components: Api) -> None:
    detail = f"Component '{RED0}' does not exist"
    assert_problem(components.get(f"/v2/components/{RED0}", tenant=BLUE), 404, NOT_FOUND, detail)
    assert_problem(components.patch(f"/v2/components/{RED0}", json={"error": "x"}, tenant=BLUE), 404, NOT_FOUND, detail)
    assert_problem(components.delete(f"/v2/components/{RED0}", tenant=BLUE), 404, NOT_FOUND, detail)
    assert_problem(components.put(f"/v2/components/{RED0}", json={"error": "x"}, tenant=BLUE), 404, NOT_FOUND, detail)
    assert components.get(f"/v2/components/{RED0}").json()["error"] == ""
    assert components.get(f"/v2/components/{B0}", tenant=BLUE).status_code == 200
    assert components.patch(f"/v2/components/{B0}", json={"error": "mine"}, tenant=BLUE).json()["error"] == "mine"
    assert components.delete(f"/v2/components/{B1}", tenant=BLUE).status_code == 204
    assert ids_of(components.get("/v2/components")) == sorted([B0, RED0, FREE])


def test_d17_component_put_of_non_owned_ids_is_a_404_and_writes_nothing(components: Api) -> None:
    before = components.get("/v2/components").json()
    resp = components.put("/v2/components", json=[{"id": B0, "error": "x"}, {"id": "x9", "error": "x"},
                                                  {"id": RED0, "error": "x"}], tenant=BLUE)
    assert_problem(resp, 404, NOT_FOUND, "Component 'x9' does not exist")
    resp = components.put("/v2/components", params={"create_only": "true"}, json=[{"id": RED0}], tenant=BLUE)
    assert_problem(resp, 404, NOT_FOUND, f"Component '{RED0}' does not exist")
    assert components.get("/v2/components").json() == before
    resp = components.put("/v2/components", json=[{"id": B0, "error": "new"}], tenant=BLUE)
    assert resp.status_code == 200 and ids_of(resp) == [B0]
    resp = components.put(f"/v2/components/{B1}", json={"error": "new"}, tenant=BLUE)
    assert resp.status_code == 200 and resp.json()["error"] == "new"


def test_bulk_patch_with_tenant_header_treats_non_owned_ids_as_missing(components: Api) -> None:
    before = components.get("/v2/components").json()
    resp = components.patch("/v2/components", json=[{"id": B0, "error": "x"}, {"id": RED0, "error": "x"}], tenant=BLUE)
    assert_problem(resp, 404, NOT_FOUND, f"Component '{RED0}' does not exist")
    resp = components.patch("/v2/components", json={"patch": {"error": "x"}, "filters": {"ids": f"{B1},{FREE}"}},
                            tenant=BLUE)
    assert_problem(resp, 404, NOT_FOUND, f"Component '{FREE}' does not exist")
    assert components.get("/v2/components").json() == before
    resp = components.patch("/v2/components", params={"skip_bad_ids": "true"},
                            json=[{"id": RED0, "error": "x"}, {"id": B1, "error": "x"}], tenant=BLUE)
    assert ids_of(resp) == [B1]
    assert components.get(f"/v2/components/{RED0}").json()["error"] == ""


def test_bulk_patch_session_filter_is_restricted_to_owned_components(components: Api) -> None:
    body = [{"id": c, "session": "s1"} for c in (B0, RED0, FREE)]
    assert components.patch("/v2/components", json=body).status_code == 200
    resp = components.patch("/v2/components", json={"patch": {"error": "hit"}, "filters": {"session": "s1"}},
                            tenant=BLUE)
    assert ids_of(resp) == [B0]
    assert [c["id"] for c in components.get("/v2/components").json() if c["error"] == "hit"] == [B0]


@pytest.fixture
def staged_nodes(components: Api) -> Api:
    """blue's session sb (boot) and the untenanted session su (shutdown), staged on several nodes."""
    put_template(components, "tpl", BLUE)
    put_template(components, "tpl", None)
    create_session(components, "sb", BLUE, operation="boot")
    create_session(components, "su", None)
    body = [{"id": B0, "staged_state": {"session": "sb", "boot_artifacts": ARTIFACTS}},
            {"id": B1, "staged_state": {"session": "su"}},
            {"id": RED0, "staged_state": {"session": "sb", "boot_artifacts": ARTIFACTS}}]
    assert components.patch("/v2/components", json=body).status_code == 200
    return components


def test_applystaged_with_tenant_header_ignores_non_owned_and_uses_tenant_sessions(staged_nodes: Api) -> None:
    before = staged_nodes.get(f"/v2/components/{RED0}").json()
    resp = staged_nodes.post("/v2/applystaged", json={"xnames": [RED0, B1, B0, FREE]}, tenant=BLUE)
    assert resp.json() == {"succeeded": [B0], "failed": [B1], "ignored": [RED0, FREE]}
    assert staged_nodes.get(f"/v2/components/{RED0}").json() == before
    assert staged_nodes.get(f"/v2/components/{B0}").json()["session"] == "sb"
    # su is untenanted: not found in blue's namespace
    assert staged_nodes.get(f"/v2/components/{B1}").json()["error"] == \
        f"Staged session no longer exists (session: su, tenant: {BLUE})"


def test_applystaged_without_header_does_not_find_tenant_sessions(staged_nodes: Api) -> None:
    resp = staged_nodes.post("/v2/applystaged", json={"xnames": [B0, B1]})
    assert resp.json() == {"succeeded": [B1], "failed": [B0], "ignored": []}
    assert staged_nodes.get(f"/v2/components/{B0}").json()["error"] == \
        "Staged session no longer exists (session: sb, tenant: )"


# -- invalid tenants, TAPMS failures, header length --

def test_session_create_with_an_unknown_tenant_is_invalid_before_body_validation(api: Api) -> None:
    for body in ({"operation": "shutdown", "template_name": "tpl"}, {"bogus": 1}):
        assert_problem(api.post("/v2/sessions", json=body, tenant="nope"), 400, INVALID,
                       "The provided tenant does not exist")


def test_template_put_with_an_unknown_tenant_is_invalid(api: Api) -> None:
    resp = api.put("/v2/sessiontemplates/tpl", json={"boot_sets": {"b1": BOOT_SET}}, tenant="nope")
    assert_problem(resp, 400, INVALID, "The provided tenant does not exist")
    assert api.get("/v2/sessiontemplates").json() == []


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v2/components", None),
    ("GET", f"/v2/components/{B0}", None),
    ("PUT", f"/v2/components/{B0}", {"error": ""}),
    ("PATCH", f"/v2/components/{B0}", {"error": ""}),
    ("DELETE", f"/v2/components/{B0}", None),
    ("PUT", "/v2/components", [{"id": B0}]),
    ("PATCH", "/v2/components", [{"id": B0, "error": ""}]),
    ("POST", "/v2/applystaged", {"xnames": [B0]}),
])
def test_component_endpoints_with_an_unknown_tenant_are_invalid(components: Api, method: str, path: str,
                                                                 body: Any) -> None:
    resp = components.request(method, path, json=body, tenant="nope")
    assert_problem(resp, 400, INVALID, "Data not found for tenant nope")
    assert components.get(f"/v2/components/{B0}").status_code == 200


def test_d19_tapms_5xx_during_tenant_validation_is_a_503(api: Api, sim_stack: SimStack) -> None:
    tenant = "vcluster-spare0"  # never looked up before: not cached
    sim_stack.sim.add_service_fault("tapms", status=500, path_prefix=f"/tenants/{tenant}")
    put_template(api, "tpl", None)
    resp = api.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl"}, tenant=tenant)
    body = assert_problem(resp, 503, UNAVAILABLE)
    assert body["detail"].startswith(f"Unable to retrieve data for tenant {tenant}: "), body
    assert api.get("/v2/sessions").json() == []


def test_d19_tapms_5xx_on_component_endpoints_is_a_503(components: Api, sim_stack: SimStack) -> None:
    tenant = "vcluster-spare1"
    sim_stack.sim.add_service_fault("tapms", status=503, path_prefix=f"/tenants/{tenant}")
    body = assert_problem(components.get("/v2/components", tenant=tenant), 503, UNAVAILABLE)
    assert body["detail"].startswith(f"Unable to retrieve data for tenant {tenant}: "), body


@pytest.fixture(scope="module")
def tapms_down(workdir: Path, sim_stack: SimStack) -> Iterator[Api]:
    """A second API server (same Redis) whose TAPMS URL is a closed loopback port."""
    env = {**sim_stack.sim.env(), "BOS_TAPMS_URL": f"http://127.0.0.1:{free_port()}/v1alpha3"}
    server = ApiServer(workdir / "api-tapms-down", sim_stack.redis.url, env=env)
    yield Api(server.url)
    server.stop()


def test_d19_unreachable_tapms_is_a_503(sim_api: Api, tapms_down: Api) -> None:
    resp = tapms_down.put("/v2/sessiontemplates/tpl", json={"boot_sets": {"b1": BOOT_SET}}, tenant=BLUE)
    body = assert_problem(resp, 503, UNAVAILABLE)
    assert body["detail"].startswith(f"Unable to retrieve data for tenant {BLUE}: "), body
    assert tapms_down.get("/v2/sessiontemplates").json() == []
    assert tapms_down.get("/v2/sessions", tenant=BLUE).status_code == 200  # no TAPMS needed


@pytest.mark.parametrize("method,path", [
    ("GET", "/v2/sessions"), ("GET", "/v2/sessions/s1"), ("DELETE", "/v2/sessions"), ("POST", "/v2/sessions"),
    ("GET", "/v2/sessiontemplates"), ("GET", "/v2/sessiontemplates/tpl"), ("PUT", "/v2/sessiontemplates/tpl"),
    ("GET", "/v2/sessiontemplatesvalid/tpl"), ("GET", "/v2/components"), ("GET", f"/v2/components/{B0}"),
    ("POST", "/v2/applystaged"),
])
def test_a_tenant_header_longer_than_127_characters_is_a_400(api: Api, method: str, path: str) -> None:
    body = {"xnames": []} if path == "/v2/applystaged" else None
    assert_problem(api.request(method, path, json=body, tenant="t" * 128), 400, BAD)


def test_a_tenant_header_of_127_characters_is_accepted(api: Api) -> None:
    assert api.get("/v2/sessions", tenant="t" * 127).json() == []
    assert api.get("/v2/sessiontemplates", tenant="t" * 127).json() == []


@pytest.mark.parametrize("path", ["/v2/options", "/v2/version", "/v2/healthz", "/v2/sessiontemplatetemplate", "/"])
def test_endpoints_that_ignore_the_tenant_header(api: Api, path: str) -> None:
    assert api.get(path, tenant="t" * 200).status_code == 200
    assert api.get(path, tenant="nope").status_code == 200
