"""A limit that names nothing fails closed at creation when a limit is required (api.md §3.6.1, D21)."""

from __future__ import annotations

import pytest

from tests.support.client import Api, assert_problem

BOOT_SET = {"path": "s3://boot-images/manifest.json", "type": "s3", "node_list": ["x3000c0s19b1n0"]}


@pytest.fixture
def tpl(api: Api) -> Api:
    assert api.put("/v2/sessiontemplates/tpl", json={"boot_sets": {"b1": BOOT_SET}}).status_code == 200
    return api


@pytest.mark.parametrize("limit", [",", "&", "!", " , ", " ", "&!,! &"])
def test_session_limit_required_rejects_a_limit_that_names_nothing(tpl: Api, limit: str) -> None:
    assert tpl.patch("/v2/options", json={"session_limit_required": True}).status_code == 200
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl", "limit": limit})
    assert_problem(resp, 400, "Bad Request",
                   f"session_limit_required option is set, but this session's limit names no nodes: {limit!r}")
    assert tpl.get("/v2/sessions").json() == []


def test_without_the_option_such_a_limit_is_stored_as_given(tpl: Api) -> None:
    """Accepted (wire compatibility); session setup then finds no node (operators.md §6.3)."""
    resp = tpl.post("/v2/sessions", json={"operation": "shutdown", "template_name": "tpl", "limit": ","})
    assert resp.status_code == 201, resp.text
    assert resp.json()["limit"] == ","
