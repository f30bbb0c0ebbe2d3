"""Session setup node selection (operators.md §6.3) and limit algebra (D21, D22)."""

from __future__ import annotations

import pytest

from bos_server.operators.selection import HsmInventory, SetupError, arch_matches, select_nodes
from bos_shared.limits import evaluate_limit

from .conftest import run
from .fakes import FakeServices, node

NODES = [f"x1000c0s{i}b0n0" for i in range(6)]
N0, N1, N2, N3, N4, N5 = NODES
GROUPS = {"compute": [N0, N1, N2, N3], "blue": [N1, N2], "red": [N4], "clash": [N0]}
PARTITIONS = {"p1": [N2, N3], "clash": [N1]}


def services(**kw):
    nodes = kw.pop("nodes", None) or [node(N0), node(N1), node(N2), node(N3), node(N4, role="Application",
                                                                                  subrole="UAN"),
                                       node(N5, role="Service")]
    return FakeServices(nodes=nodes, groups=kw.pop("groups", GROUPS), partitions=kw.pop("partitions", PARTITIONS),
                        **kw)


def select(boot_set, session=None, **kw):
    svc = kw.pop("svc", None) or services(**kw)
    warnings = []
    nodes = run(select_nodes(boot_set, session or {"name": "s"}, HsmInventory(svc.hsm, svc.tapms), warnings))
    return nodes, warnings, svc


# -- limit algebra (pure) --

RESOLVE = {"compute": set(GROUPS["compute"]), "blue": {N1, N2}, "p1": {N2, N3}}.get
CANDIDATES = set(GROUPS["compute"])


@pytest.mark.parametrize("limit,expected", [
    ("", CANDIDATES),
    (None, CANDIDATES),
    ("compute", CANDIDATES),
    ("compute,!" + N1, CANDIDATES - {N1}),
    ("!" + N1 + ",compute", CANDIDATES),  # order matters
    ("&" + N1, set()),  # intersecting the empty start yields nothing
    ("all", CANDIDATES),
    ("*", CANDIDATES),
    ("*,&blue", {N1, N2}),
    ("blue,p1", {N1, N2, N3}),
    ("compute,&p1", {N2, N3}),
    ("compute,!p1", {N0, N1}),
    (N0 + "," + N5, {N0}),  # literal xnames; N5 is not a candidate
    (N0 + ",," + N1, {N0, N1}),  # D21: empty items ignored
    ("compute,", CANDIDATES),
    (" blue , ,& ,!, " + N3, {N1, N2, N3}),  # items of only & or ! ignored, whitespace trimmed
    ("nosuchgroup", set()),  # unknown names are literal xnames
    (",", set()),  # D21: a limit present but naming nothing selects nothing (fails closed)
    ("&", set()),
    ("!", set()),
    (" , ", set()),
    (" ", set()),
    (",,&,!,&!", set()),
], ids=lambda v: repr(v) if isinstance(v, (str, type(None))) else None)
def test_limit_algebra(limit, expected):
    assert evaluate_limit(limit, CANDIDATES, RESOLVE) == expected


# -- architecture (D22) --

@pytest.mark.parametrize("boot_set_arch,hsm_arch,matches", [
    ("X86", "X86", True), ("X86", None, True), ("X86", "", True), ("X86", "UNKNOWN", True),
    ("X86", "Unknown", True), ("X86", "ARM", False), ("X86", "Other", False), (None, "x86", True),
    ("ARM", "ARM", True), ("ARM", "arm", True), ("ARM", "X86", False), ("ARM", None, False),
    ("Other", "Other", True), ("Other", "UNKNOWN", False),
    ("Unknown", None, True), ("Unknown", "UNKNOWN", True), ("Unknown", "unknown", True), ("Unknown", "X86", False),
])
def test_arch_matching(boot_set_arch, hsm_arch, matches):
    assert arch_matches(boot_set_arch, hsm_arch) is matches


# -- selection steps against inventory --

def test_node_list_groups_and_roles_are_united():
    nodes, warnings, _ = select({"node_list": [N5], "node_groups": ["red"], "node_roles_groups": ["Compute"]})
    assert nodes == set(NODES)
    assert warnings == []


def test_role_with_subrole():
    nodes, _, _ = select({"node_roles_groups": ["Application_UAN"]})
    assert nodes == {N4}


def test_unknown_labels_and_roles_warn():
    nodes, warnings, _ = select({"node_groups": ["nope"], "node_roles_groups": ["Nope"], "node_list": [N0]})
    assert nodes == {N0}
    assert warnings == ["No hardware matching label nope", "No hardware matching role Nope"]


def test_role_matching_is_case_sensitive():
    nodes, warnings, _ = select({"node_roles_groups": ["compute"]})
    assert nodes == set() and warnings == ["No hardware matching role compute"]


def test_empty_candidates_stop_before_any_hsm_query():
    nodes, _, svc = select({"node_groups": ["nope"]}, {"name": "s", "limit": "compute"})
    assert nodes == set()
    assert "hsm.query" not in svc.calls.names() and "hsm.locked_nodes" not in svc.calls.names()


def test_limit_names_prefer_roles_then_partitions_then_groups():
    groups = dict(GROUPS, Service=[N0])
    nodes, _, _ = select({"node_list": NODES}, {"name": "s", "limit": "clash"}, groups=groups)
    assert nodes == {N1}  # partition beats group
    nodes, _, _ = select({"node_list": NODES}, {"name": "s", "limit": "Service"}, groups=groups)
    assert nodes == {N5}  # role beats group


def test_limit_with_group_partition_role_and_literal():
    session = {"name": "s", "limit": f"blue,p1,Application_UAN,{N5},!{N2}"}
    nodes, _, _ = select({"node_list": NODES}, session)
    assert nodes == {N1, N3, N4, N5}


def test_limit_all_means_this_boot_sets_candidates():
    nodes, _, _ = select({"node_groups": ["blue"]}, {"name": "s", "limit": "all"})
    assert nodes == {N1, N2}


def test_locked_nodes_are_removed():
    nodes, _, _ = select({"node_list": [N0, N1]}, locked=[N1])
    assert nodes == {N0}


def test_tenant_foreign_node_list_is_a_setup_error():
    with pytest.raises(SetupError) as info:
        select({"node_list": [N2, N0, N1]}, {"name": "s", "tenant": "blue"}, tenants={"blue": [N0]})
    assert str(info.value) == ("The session template includes nodes which do not exist or are not available "
                               f"to this tenant: {N1},{N2}")


def test_unknown_tenant_is_a_setup_error():
    with pytest.raises(SetupError) as info:
        select({"node_groups": ["compute"]}, {"name": "s", "tenant": "ghost"}, tenants={})
    assert str(info.value) == "Data not found for tenant ghost"


def test_tenant_restricts_group_members():
    nodes, _, _ = select({"node_groups": ["compute"]}, {"name": "s", "tenant": "blue"}, tenants={"blue": [N1, N2]})
    assert nodes == {N1, N2}


def test_arch_filter_uses_hsm_query():
    svc = services(nodes=[node(N0, "X86"), node(N1, None), node(N2, "ARM"), node(N3, "UNKNOWN")])
    assert select({"node_list": [N0, N1, N2, N3]}, svc=svc)[0] == {N0, N1, N3}
    assert select({"node_list": [N0, N1, N2, N3], "arch": "ARM"}, svc=svc)[0] == {N2}
    assert select({"node_list": [N0, N1, N2, N3], "arch": "Unknown"}, svc=svc)[0] == {N1, N3}


def test_nodes_unknown_to_hsm_are_dropped_by_the_arch_step():
    nodes, _, _ = select({"node_list": [N0, "x9999c0s0b0n0"]})
    assert nodes == {N0}


def test_disabled_nodes_dropped_unless_include_disabled():
    svc = services(nodes=[node(N0), node(N1, enabled=False)])
    assert select({"node_list": [N0, N1]}, svc=svc)[0] == {N0}
    assert select({"node_list": [N0, N1]}, {"name": "s", "include_disabled": True}, svc=svc)[0] == {N0, N1}
    assert [c[2] for c in svc.calls if c[0] == "hsm.query"] == [False, False]  # step 8's answer says Enabled


def test_arch_and_enabled_steps_share_one_hsm_query():
    """Issue 13 (session start): steps 8 and 9 read the same HSM answer, one query of the nodes;
    when HSM leaves `Enabled` out of it, step 9 asks with the `enabled` filter (§6.3)."""
    svc = services(nodes=[node(N0), node(N1, enabled=False), node(N2, "ARM")])
    assert select({"node_list": [N0, N1, N2]}, svc=svc)[0] == {N0}
    assert [c[1:] for c in svc.calls if c[0] == "hsm.query"] == [([N0, N1, N2], False)]
    for entry in svc.hsm.nodes.values():
        del entry["Enabled"]
    svc.calls.clear()
    assert select({"node_list": [N0, N1, N2]}, svc=svc)[0] == {N0, N1}  # the fake: no Enabled = enabled
    assert [c[1:] for c in svc.calls if c[0] == "hsm.query"] == [([N0, N1, N2], False), ([N0, N1], True)]


def test_hsm_failure_propagates():
    svc = services()
    from .fakes import fail
    svc.hsm.fail = fail("hsm")
    with pytest.raises(Exception) as info:
        select({"node_list": [N0]}, svc=svc)
    assert "hsm" in str(info.value)


@pytest.mark.parametrize("limit", [",", "&", "!", " , ", "&!,"])
def test_a_limit_of_only_separators_selects_no_node(limit):  # D21: fails closed
    nodes, _warnings, _svc = select({"node_groups": ["compute"]}, {"name": "s", "limit": limit})
    assert nodes == set()


@pytest.mark.parametrize("limit", ["", None])
def test_no_limit_keeps_every_candidate(limit):
    nodes, _warnings, _svc = select({"node_groups": ["compute"]}, {"name": "s", "limit": limit})
    assert nodes == set(GROUPS["compute"])
