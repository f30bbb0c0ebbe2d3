"""reporter.md §3 (identity precedence) and §1 (the PATCH body and path)."""

from __future__ import annotations

import json

from bos_reporter.identity import node_identity
from bos_reporter.payload import report_body, report_path


def test_node_identity_env_takes_precedence_over_xname() -> None:
    assert node_identity({"xname": "x1c0s0b0n0"}, {"NODE_IDENTITY": "x9c0s0b0n0"}) == "x9c0s0b0n0"


def test_xname_is_used_when_node_identity_is_unset() -> None:
    assert node_identity({"xname": "x1c0s0b0n0"}, {}) == "x1c0s0b0n0"


def test_empty_or_blank_node_identity_counts_as_unset() -> None:
    assert node_identity({"xname": "x1c0s0b0n0"}, {"NODE_IDENTITY": ""}) == "x1c0s0b0n0"
    assert node_identity({"xname": "x1c0s0b0n0"}, {"NODE_IDENTITY": "  "}) == "x1c0s0b0n0"


def test_r4_no_identity_without_node_identity_or_xname() -> None:
    assert node_identity({}, {}) is None
    assert node_identity({"xname": ""}, {"NODE_IDENTITY": ""}) is None


def test_no_other_source_is_consulted() -> None:
    assert node_identity({"nid": "1", "hostname": "nid000001"}, {"HOSTNAME": "nid000001"}) is None


def test_report_body_is_id_and_bss_token_only() -> None:
    body = report_body("x3000c0s19b1n0", "5b0c1f3e")
    assert body == {"id": "x3000c0s19b1n0", "actual_state": {"bss_token": "5b0c1f3e"}}
    assert json.loads(json.dumps(body)) == body


def test_report_path_is_the_component() -> None:
    assert report_path("x3000c0s19b1n0") == "/components/x3000c0s19b1n0"


def test_report_path_cannot_escape_the_component() -> None:
    assert report_path("../options") == "/components/..%2Foptions"
    assert report_path("x1?a=b") == "/components/x1%3Fa%3Db"
