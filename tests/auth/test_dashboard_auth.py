"""The dashboard with auth on (docs/auth.md, docs/dashboard.md), in headless Chromium.

EventSource cannot send a bearer token, so the page reads the event stream with fetch()
and an Authorization header; the token is pasted into a form, kept in the tab's
sessionStorage and never appears in a URL or the server's log. A tenant admin's view is
its token's tenant: another tenant's session is not found and `?tenant=` cannot choose one.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import pytest
import requests

from tests.auth.conftest import AuthStack
from tests.observe.browser import chromium, console_errors, wait_for
from tests.support.auth import TENANT, bearer
from tests.support.client import Api

pytestmark = pytest.mark.timeout(180)

MANIFEST = "s3://boot-images/9e3c75e1-ac42-42c7-873c-e758048897d6/manifest.json"
NODES = ["x1000c0s0b0n0", "x1000c0s0b0n1", "x1000c0s0b1n0", "x1000c0s0b1n1", "x1000c0s1b0n0"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()



def session(api: Api, name: str, nodes: List[str]) -> None:
    """A session (pending: this stack runs no operators) whose members are `nodes`."""
    template = {"boot_sets": {"compute": {"path": MANIFEST, "type": "s3", "node_list": nodes}}, "enable_cfs": False}
    assert api.put(f"/v2/sessiontemplates/{name}", json=template).status_code == 200
    resp = api.post("/v2/sessions", json={"name": name, "template_name": name, "operation": "boot"})
    assert resp.status_code == 201, resp.text
    for node in nodes:
        resp = api.patch(f"/v2/components/{node}", json={"session": name, "enabled": False})
        assert resp.status_code == 200, resp.text


def machine_counts(browser: Any) -> Dict[str, int]:
    raw = browser.execute_script("const m = document.getElementById('machine'); return m && m.dataset.counts;")
    return json.loads(raw) if raw else {}


def sign_in(browser: Any, token: str) -> None:
    wait_for(lambda: browser.find_element("id", "signin").is_displayed(), 20, "the sign-in form")
    browser.find_element("id", "signin-token").send_keys(token)
    browser.find_element("css selector", "#signin button[type=submit]").click()


def test_the_dashboard_follows_a_session_with_a_bearer_token(auth_stack: AuthStack, admin: Api, browser: Any) -> None:
    assert admin.put("/v2/components", json=[{"id": n, "enabled": False} for n in NODES]).status_code == 200
    session(admin, "dash-auth", NODES)
    token = auth_stack.issuer.read_only()

    browser.get(auth_stack.url + "/dashboard/#/session/dash-auth")
    sign_in(browser, token)  # every request so far was a 401
    wait_for(lambda: sum(machine_counts(browser).values()) == len(NODES), 20, "the machine view of every member")
    wait_for(lambda: browser.find_element("id", "live").text == "live", 20, "the event stream (fetch + token)")
    # a change pushed over the authenticated stream reaches the machine view
    assert admin.patch(f"/v2/components/{NODES[0]}", json={"enabled": True}).status_code == 200  # -> on_hold
    wait_for(lambda: machine_counts(browser).get("on_hold") == 1, 20, "the change to arrive over the stream")

    assert token not in browser.current_url
    assert token not in auth_stack.log(), "the token reached the server's log"
    assert browser.execute_script("return document.cookie") == ""
    errors = console_errors(browser)
    assert all(" 401 " in e["message"] for e in errors), errors  # only the refused requests before signing in


def test_a_tenant_admin_sees_only_its_tenant(auth_stack: AuthStack, admin: Api, browser: Any) -> None:
    assert admin.put("/v2/components", json=[{"id": n, "enabled": False} for n in NODES]).status_code == 200
    session(admin, "untenanted", NODES[2:4])
    tenant = auth_stack.client(auth_stack.issuer.tenant_admin())
    session(tenant, "blue-only", NODES[:2])
    token = auth_stack.issuer.tenant_admin()
    url = auth_stack.url + "/dashboard/api"

    def get(path: str, **headers: str) -> requests.Response:
        return requests.get(url + path, headers={**bearer(token), **headers}, timeout=10, stream=True)
    assert get("/sessions/untenanted/nodes").status_code == 404  # not its session
    assert get("/events?session=untenanted").status_code == 404
    assert get("/events?session=blue-only&tenant=vcluster-red").status_code == 400  # ?tenant= cannot choose
    assert get("/sessions/blue-only/nodes", **{"Cray-Tenant-Name": "vcluster-red"}).status_code == 403
    nodes = get("/sessions/blue-only/nodes").json()
    assert sorted(i for ids in nodes["statuses"].values() for i in ids) == NODES[:2]
    assert requests.get(url + "/events", timeout=10, stream=True).status_code == 401  # no token, no stream

    browser.execute_script("sessionStorage.clear()")
    browser.get(auth_stack.url + "/dashboard/#/")
    sign_in(browser, token)
    wait_for(lambda: browser.find_elements("css selector", "tr[data-session='blue-only']"), 20, "the tenant's session")
    assert not browser.find_elements("css selector", "tr[data-session='untenanted']")
    assert not browser.find_elements("css selector", "tr[data-session='dash-auth']")
    assert TENANT in json.dumps(tenant.get("/v2/sessions/blue-only").json())
