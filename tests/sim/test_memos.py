"""The simulator's memos answer what the computation they stand for answers (issue 13: each
was measured in a 100,000-node boot). In-process, on a small generated cluster."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Dict, List, Optional

import msgspec
from aiohttp.test_utils import make_mocked_request
import pytest
from hypothesis import given, settings, strategies as st

from bos_shared.cmdline import parse_cmdline
from bos_sim.bss import REPORTER_KEYS, BssEntry, render_cmdline, reporter_params
from bos_sim.cfs import Configuration, Query, make_routes
from bos_sim.cluster import Cluster
from bos_sim.config import SimConfig
from bos_sim.determinism import _digest, seeded_uuid
from bos_sim.faults import NodeFaults
from bos_sim.control import Control
from bos_sim.hsm import (all_components, component_filter, components_answer, components_by_id, node_entry, node_json,
                          node_struct)
from bos_sim.httputil import SimError, json_body
from bos_sim.inventory import generate, node_xname
from bos_sim.report_http import report_request, request_bytes
from bos_sim.reporting import report_period

from bos_reporter.payload import report_body, report_path
from bos_reporter.schedule import DEFAULT_FREQUENCY_SECONDS, frequency_seconds, period_seconds


@given(st.integers(min_value=0, max_value=2**32), st.text(max_size=20), st.integers())
def test_a_seeded_uuid_is_the_uuid4_of_its_digest(seed: int, what: str, count: int) -> None:
    expected = str(uuid.UUID(bytes=_digest(seed, (what, count), 16), version=4))
    assert seeded_uuid(seed, what, count) == expected


def _cluster() -> Cluster:
    return Cluster(generate(4), SimConfig())


def test_a_power_status_entry_is_encoded_anew_when_the_power_changes() -> None:
    cluster = _cluster()
    xname = node_xname(0)
    node = cluster.nodes[xname]

    def fresh() -> bytes:
        return msgspec.json.encode(cluster.pcs.status_entry(xname))

    first = cluster.pcs.status_json(xname)
    assert first == fresh()
    assert cluster.pcs.status_json(xname) is first  # memoised while nothing changed
    cluster.engine.set_power(node, "on")  # a new power state and power time
    assert json.loads(cluster.pcs.status_json(xname))["powerState"] == "on"
    assert cluster.pcs.status_json(xname) == fresh()
    node.power_time += 1.5  # the same state, a later time
    assert cluster.pcs.status_json(xname) == fresh() != first


def test_a_node_with_faults_is_never_answered_from_the_memo() -> None:
    cluster = _cluster()
    xname = node_xname(1)
    node = cluster.nodes[xname]
    cluster.pcs.status_json(xname)
    node.faults = NodeFaults(pcs_error="broken")
    assert json.loads(cluster.pcs.status_json(xname))["error"] == "broken"
    node.faults.pcs_error = "broken differently"  # changed in place by the control API
    assert json.loads(cluster.pcs.status_json(xname))["error"] == "broken differently"


def test_the_report_period_is_the_reporters() -> None:
    for value in ("10m", "4H", "0s", "garbage", None, "10m"):
        params = {} if value is None else {"bos_update_frequency": value}
        expected = period_seconds(frequency_seconds(value) or DEFAULT_FREQUENCY_SECONDS)
        assert report_period(params) == expected


REPORTER_WORDS = st.sampled_from([
    "xname=x9", "xname=", "xname=${SPIRE_JOIN_TOKEN}", "bss_referral_token=given",
    "bss_referral_token=${SPIRE_JOIN_TOKEN}x", "bos_update_frequency=4h", "bos_update_frequency=10m",
    "xname", "bss_referral_token", "initrd=a", "initrdxname=1", "${SPIRE_JOIN_TOKEN}=x", "k=${SPIRE_JOIN_TOKEN}",
    "ds=d", "nid=3", "quiet", '"xname=q x"', 'k="a', "=v", "a\x1cxname=z", "é=1"])
META = "http://10.92.100.81:8888"


def _reported_by_parsing(entry: BssEntry, xname: str, nid: Optional[int], join_token: str, meta: str) -> dict:
    params = parse_cmdline(render_cmdline(entry, xname, nid, join_token, meta))
    return {key: params[key] for key in REPORTER_KEYS if key in params}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(REPORTER_WORDS, st.sampled_from([" ", "\t", "\n  "])), max_size=8),
       st.booleans(), st.sampled_from(["tok-1", "", "t ok", "${SPIRE_JOIN_TOKEN}"]),
       st.sampled_from([node_xname(0), "x1 y", 'x"1', "x${SPIRE_JOIN_TOKEN}", "x/1", "x=1"]),
       st.sampled_from([META, "http://a b", 'http://"q', "http://${SPIRE_JOIN_TOKEN}"]),
       st.sampled_from([None, 7]))
def test_the_reporter_params_of_an_entry_are_those_parsed_from_the_rendered_line(
        words, initrd: bool, token: str, xname: str, meta: str, nid: Optional[int]) -> None:
    entry = BssEntry("".join(word + space for word, space in words), "s3://b/kernel",
                     "s3://b/initrd" if initrd else "", token)
    found = reporter_params(entry, xname, meta)
    if found is not None:  # None: the caller renders and parses
        for join_token in (str(uuid.uuid4()), str(uuid.uuid4())):
            assert found == _reported_by_parsing(entry, xname, nid, join_token, meta)


def test_a_bss_entry_as_bos_writes_it_tells_the_reporter_params_without_rendering() -> None:
    params = ("console=ttyS0,115200 bad_page=panic crashkernel=360M spire_join_token=${SPIRE_JOIN_TOKEN} "
              "root=sbps-s3:s3://boot-images/i/rootfs:e:sbps:v1:x nmd_data=url=s3://boot-images/i/rootfs,etag=e "
              "bos_update_frequency=4h")
    entry = BssEntry(params, "s3://boot-images/i/kernel", "s3://boot-images/i/initrd", seeded_uuid(0, "bss", 1))
    xname = node_xname(5)
    assert reporter_params(entry, xname, META) == _reported_by_parsing(entry, xname, 6, "jt", META) == {
        "xname": xname, "bss_referral_token": entry.token, "bos_update_frequency": "4h"}


def test_a_node_booted_to_another_command_line_reports_what_that_line_says() -> None:
    cluster = _cluster()
    node = cluster.nodes[node_xname(2)]
    cluster.bss.put([node.xname], "quiet bos_update_frequency=1h", "s3://b/kernel", "")
    node.power, node.booted, node.boot, node.boot_count = "on", True, cluster.bss.hosts[node.xname], 1
    assert cluster.reporting._params(node) == {"xname": node.xname, "bss_referral_token": node.boot.token,
                                               "bos_update_frequency": "1h"}
    node.faults = NodeFaults(boot_cmdline="xname=x7c0s0b0n0 bss_referral_token=other")
    assert cluster.reporting._params(node) == {"xname": "x7c0s0b0n0", "bss_referral_token": "other"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.just(node_xname(3)), st.text(min_size=1, max_size=12)), st.text(max_size=40))
def test_a_report_request_is_the_reporters_patch_byte_for_byte(xname: str, token: str) -> None:
    expected = request_bytes("127.0.0.1:9000", "/v2" + report_path(xname), "node-token", report_body(xname, token))
    assert report_request("127.0.0.1:9000", "/v2", xname, "node-token", token) == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["", "compute-23.4.0", "fail-config"]), st.booleans(), st.integers(0, 5),
       st.sampled_from(["", "compute-23.4.0", "fail-config"]), st.booleans(), st.sampled_from([None, 0, 2]),
       st.sampled_from([None, {"a": "b"}, {"a": "b", "c": "d"}]))
def test_a_listed_cfs_component_is_encoded_as_its_description(desired: str, enabled: bool, errors: int,
                                                              applied: str, failed: bool,
                                                              policy: Optional[int], tags) -> None:
    store = _cluster().cfs
    comp = store.components[node_xname(0)]
    comp.desired_config, comp.enabled, comp.error_count, comp.applied = desired, enabled, errors, applied
    comp.last_failed, comp.retry_policy, comp.tags = failed, policy, tags
    assert msgspec.json.encode(store.listed(comp)) == msgspec.json.encode(store.describe(comp))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["on", "off"]), st.booleans(), st.booleans(), st.sampled_from(["Compute", "Application"]),
       st.sampled_from([None, "", "UAN"]), st.sampled_from([None, 0, 17]), st.sampled_from([None, "X86", "ARM"]))
def test_an_hsm_node_is_encoded_as_its_json(power: str, booted: bool, enabled: bool, role: str,
                                            subrole: Optional[str], nid: Optional[int], arch: Optional[str]) -> None:
    node = _cluster().nodes[node_xname(1)]
    node.power, node.booted, node.enabled, node.role, node.subrole, node.nid, node.arch = (
        power, booted, enabled, role, subrole, nid, arch)
    assert msgspec.json.encode(node_struct(node)) == msgspec.json.encode(node_json(node))


@pytest.mark.parametrize("params", [{}, {"enabled": ["True"]}, {"enabled": ["false"]}, {"enabled": ["True", "False"]},
                                    {"role": ["compute"]}, {"enabled": ["True"], "type": ["Node"]}])
@pytest.mark.parametrize("ids", [None, [node_xname(3), node_xname(0), node_xname(3), "x9c0s0b0n0"]])
def test_an_hsm_component_answer_is_the_filtered_list_of_component_objects(params, ids) -> None:
    cluster = Cluster(generate(12), SimConfig())
    cluster.nodes[node_xname(0)].enabled = False
    for other in cluster.others.values():
        ids = None if ids is None else ids + [other.xname]
        break
    keep = component_filter(cluster, params)
    source = components_by_id(cluster, ids) if ids is not None else all_components(cluster)
    expected = msgspec.json.encode({"Components": [c for c in source if keep(c)]})
    assert components_answer(cluster, ids, keep).body == expected


def test_a_booted_nodes_cfs_reporter_enables_and_clears_as_the_patch_does() -> None:
    """CfsStore.node_booted sets what apply(comp, {"enabled": True, "state": []}) sets."""
    cluster, twin = _cluster(), _cluster()
    comps = []
    for store in (cluster.cfs, twin.cfs):
        comp = store.components[node_xname(0)]
        comp.desired_config, comp.applied, comp.last_failed, comp.error_count = "", "old", True, 2
        comps.append(comp)
    cluster.cfs.node_booted(node_xname(0))
    twin.cfs.apply(comps[1], {"enabled": True, "state": []})
    fields = ("enabled", "desired_config", "error_count", "applied", "last_failed", "gen")
    assert [getattr(comps[0], f) for f in fields] == [getattr(comps[1], f) for f in fields]
    assert comps[0].enabled and comps[0].applied == "" and comps[0].gen == 1


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)


class _Body:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def read(self) -> bytes:
        return self.raw


def _decoded(raw: bytes) -> object:
    try:
        return asyncio.run(json_body(_Body(raw)))  # type: ignore[arg-type]
    except SimError as exc:
        return ("error", exc.status, exc.detail)


def _by_json_loads(raw: bytes) -> object:
    if not raw.strip():
        return ("error", 400, "The request body is empty")
    try:
        return json.loads(raw)
    except ValueError as exc:
        return ("error", 400, f"The request body is not valid JSON: {exc}")


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON_VALUES.map(lambda value: json.dumps(value).encode()),
                 JSON_VALUES.map(lambda value: json.dumps(value, ensure_ascii=False, indent=1).encode()),
                 st.sampled_from([b"NaN", b"[1e400]", b'"\\ud800"', b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"),
                                  b"[1,]", b"{} {}", b'{"a":1,"a":2}', b" ", b""]),
                 st.binary(max_size=12)))
def test_a_request_body_decodes_as_json_loads_decodes_it(raw: bytes) -> None:
    decoded, expected = _decoded(raw), _by_json_loads(raw)
    assert decoded == expected or (decoded != decoded and expected != expected)  # NaN is never equal


def test_a_cfs_components_listing_entry_follows_every_change() -> None:
    """The memoised entry (CfsStore.listed_json) is dropped by each way a component changes: a
    patch, the node's CFS state reporter at boot, and a configuration attempt (done or failed)."""

    async def changes() -> None:  # configuration attempts go on the scheduler: a running loop
        cluster = _cluster()
        store = cluster.cfs
        comp = store.components[node_xname(0)]

        def fresh() -> bytes:
            return msgspec.json.encode(store.describe(comp))

        assert store.listed_json(comp) == fresh()
        assert store.listed_json(comp) is store.listed_json(comp)  # memoised while nothing changed
        patches: List[Dict[str, Any]] = [{"enabled": True}, {"desired_config": "compute-23.4.0"}, {"tags": {"a": "b"}},
                                         {"retry_policy": 1}, {"error_count": 2}, {"state": []}, {"enabled": False}]
        for patch in patches:
            before = store.listed_json(comp)
            store.apply(comp, patch)
            assert store.listed_json(comp) == fresh() != before, patch
        store.node_booted(comp.id)  # enabled again, state cleared: pending
        assert store.listed_json(comp) == fresh()
        assert json.loads(store.listed_json(comp))["configuration_status"] == "pending"
        store._attempt(comp, comp.gen, 0.0)  # the node is off: CFS cannot reach it, nothing changes
        cluster.nodes[comp.id].booted = True
        store._attempt(comp, comp.gen, 0.0)
        assert json.loads(store.listed_json(comp))["configuration_status"] == "configured"
        assert store.listed_json(comp) == fresh()
        store.apply(comp, {"desired_config": "fail-config"})
        store.configurations["fail-config"] = Configuration("fail-config", fails=True)
        store._attempt(comp, comp.gen, 0.0)  # a failed attempt counts an error
        assert json.loads(store.listed_json(comp))["error_count"] == 1
        assert store.listed_json(comp) == fresh()

    asyncio.run(changes())


@pytest.mark.parametrize("query", ["", "?limit=2", "?limit=2&after_id=" + node_xname(1), "?ids=" + node_xname(2)])
def test_a_cfs_components_page_is_the_json_of_its_listed_entries(query: str) -> None:
    """The page joined from memoised entries is what encoding the page's entries and `next` gives."""
    store = _cluster().cfs
    store.apply(store.components[node_xname(2)], {"tags": {"k": "v"}, "retry_policy": 1})
    handler = next(r.handler for r in make_routes(store) if r.method == "GET" and r.path == "/v3/components")
    answer = asyncio.run(handler(make_mocked_request("GET", "/v3/components" + query)))  # type: ignore[arg-type]
    body = json.loads(answer.body)
    listed = [store.listed(store.components[c["id"]]) for c in body["components"]]
    assert answer.body == msgspec.json.encode({"components": listed, "next": body["next"]})
    assert answer.content_type == "application/json" and (body["next"] is None) == (query != "?limit=2")


def test_power_status_entries_read_in_one_loop_are_each_nodes_status_json() -> None:
    """PcsState.status_jsons answers from a node's memo only while its power state and time are
    the memo's, and never for a node with faults or an unknown xname."""
    cluster = Cluster(generate(6), SimConfig())
    xnames = [node_xname(i) for i in range(6)] + ["x9c0s0b0n0"]

    def fresh() -> List[bytes]:
        return [msgspec.json.encode(cluster.pcs.status_entry(x)) for x in xnames]

    assert cluster.pcs.status_jsons(xnames) == fresh()  # every memo filled
    nodes = [cluster.nodes[node_xname(i)] for i in range(4)]
    nodes[0].power = "on"  # the state alone (the same time)
    nodes[1].power_time += 2.0  # the time alone
    nodes[2].faults = NodeFaults(pcs_error="broken")
    cluster.engine.set_power(nodes[3], "on")
    assert cluster.pcs.status_jsons(xnames) == fresh()
    assert json.loads(cluster.pcs.status_jsons(xnames)[0])["powerState"] == "on"


@settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from([node_xname(i) for i in range(6)] + ["x9c0s0b0n0", "a", "z"])),
       st.sampled_from(["", node_xname(2), "a", "x9", "zz"]))
def test_cfs_components_selected_by_id_are_the_known_ones_after_after_id_in_order(ids, after_id: str) -> None:
    store = _cluster().cfs
    chosen = [c.id for c in store.select(Query(ids=set(ids)), after_id)]
    assert chosen == sorted(i for i in ids if i > after_id and i in store.components)


@pytest.mark.parametrize("patch", [{"enabled": True}, {"desired_config": "compute-23.4.0"}, {"state": []},
                                   {"retry_policy": 2}, {"error_count": 0}, {"tags": {"a": "b"}}])
def test_a_patch_of_a_field_configuration_depends_on_reschedules(patch: Dict[str, Any]) -> None:
    async def patched() -> int:  # a rescheduled configuration attempt goes on the scheduler: a running loop
        store = _cluster().cfs
        comp = store.components[node_xname(0)]
        comp.enabled, comp.desired_config = True, "compute-23.4.0"
        store.apply(comp, patch)
        return comp.gen

    assert asyncio.run(patched()) == (0 if "tags" in patch else 1)  # tags alone change nothing CFS acts on


def test_an_hsm_entry_follows_the_node() -> None:
    """hsm.node_entry answers from its memo while the node's power, boot and enabled flag are the
    memo's; the control API's changes of the other fields it shows drop the memo."""
    cluster = _cluster()
    node = cluster.nodes[node_xname(1)]
    control = Control(cluster, dict)

    def fresh() -> bytes:
        return msgspec.json.encode(node_json(node))

    assert node_entry(node) == fresh() and node_entry(node) is node_entry(node)
    for change in ({"power": "on"}, {"booted": True}, {"enabled": False}):
        before = node_entry(node)
        for key, value in change.items():
            setattr(node, key, value)
        assert node_entry(node) == fresh() != before, change
    for body in ({"role": "Application"}, {"subrole": "UAN"}, {"arch": "ARM"}, {"nid": 77}):
        before = node_entry(node)
        control._patch_hsm(node, body)
        assert node_entry(node) == fresh() != before, body
