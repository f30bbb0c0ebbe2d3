"""BSS contract (services.md §4): tokens, stored parameters and the boot script rules."""

from __future__ import annotations

import re
import uuid
from typing import Optional

import pytest
from hypothesis import given, settings, strategies as st

from bos_sim.bss import BssEntry, cmdline_of_script, render_cmdline, render_script
from bos_sim.inventory import node_xname
from tests.sim.helpers import Services, problem_detail

A, B = node_xname(0), node_xname(1)
META = "http://10.92.100.81:8888"
PARAMS = "console=ttyS0,115200 spire_join_token=${SPIRE_JOIN_TOKEN} ip=dhcp root=sbps-s3:s3://boot-images/i/rootfs:e"


def put(svc: Services, hosts: list, params: str = PARAMS, kernel: str = "s3://boot-images/i/kernel",
        initrd: str = "s3://boot-images/i/initrd"):
    return svc.put("bss", "/bootparameters", json={"hosts": hosts, "params": params, "kernel": kernel,
                                                   "initrd": initrd})


def test_s4_1_put_answers_empty_json_with_a_new_uuid4_token_per_request(svc: Services) -> None:
    first = put(svc, [A, B])
    assert first.status_code == 200 and first.content == b""
    assert first.headers["Content-Type"] == "application/json; charset=UTF-8"
    token = first.headers["bss-referral-token"]
    assert uuid.UUID(token).version == 4
    second = put(svc, [A])
    assert second.headers["BSS-Referral-Token"] != token


def test_s4_1_nothing_to_store_is_400(svc: Services) -> None:
    problem_detail(svc.put("bss", "/bootparameters", json={"hosts": [], "params": "x"}), 400)
    problem_detail(svc.put("bss", "/bootparameters", data=b"not json"), 400)


def test_s4_2_get_bootparameters_returns_the_stored_values(svc: Services) -> None:
    put(svc, [B], params="quiet", kernel="s3://b/k", initrd="")
    assert svc.get("bss", "/bootparameters", params={"name": B}).json() == [
        {"hosts": [B], "params": "quiet", "kernel": "s3://b/k", "initrd": "", "cloud-init": {}}]
    problem_detail(svc.get("bss", "/bootparameters", params={"name": "x9999c0s0b0n0"}), 404)


def test_s4_1_same_token_for_every_host_of_one_put(svc: Services) -> None:
    token = put(svc, [A, B]).headers["BSS-Referral-Token"]
    for host in (A, B):
        script = svc.get("bss", "/bootscript", params={"name": host}).text
        assert f"bss_referral_token={token}" in script


ENTRY = BssEntry(PARAMS, "s3://boot-images/i/kernel", "s3://boot-images/i/initrd", "tok-1")


@pytest.mark.parametrize("params,expected", [
    # 1-5: start from P, append xname, nid, token, ds
    ("quiet", "quiet xname=x1c0s0b0n0 nid=7 bss_referral_token=tok-1 ds=nocloud-net;s=" + META + "/"),
    # 2-5: a word already present is kept and not appended again
    ("xname=other nid=3 bss_referral_token=mine ds=none quiet", "xname=other nid=3 bss_referral_token=mine ds=none quiet"),
    # words that merely contain the key are not "starting with" it
    ("myxname=1", "myxname=1 xname=x1c0s0b0n0 nid=7 bss_referral_token=tok-1 ds=nocloud-net;s=" + META + "/"),
])
def test_s4_3_steps_1_to_5_append_missing_words(params: str, expected: str) -> None:
    entry = BssEntry(params, "s3://b/k", "", "tok-1")
    assert render_cmdline(entry, "x1c0s0b0n0", 7, "join", META) == expected


def test_s4_3_step_3_no_nid_when_unknown_and_step_4_no_token_when_empty() -> None:
    entry = BssEntry("quiet", "s3://b/k", "", "")
    assert render_cmdline(entry, "x1c0s0b0n0", None, "join", META) == f"quiet xname=x1c0s0b0n0 ds=nocloud-net;s={META}/"


def test_s4_3_step_6_replaces_every_spire_join_token() -> None:
    entry = BssEntry("a=${SPIRE_JOIN_TOKEN} b=${SPIRE_JOIN_TOKEN}", "s3://b/k", "", "")
    line = render_cmdline(entry, "x1c0s0b0n0", 1, "JT", META)
    assert line.startswith("a=JT b=JT ") and "${" not in line


def test_s4_3_step_8_initrd_prefix_replaces_the_first_initrd_word() -> None:
    entry = BssEntry("initrd=old quiet initrd=second", "s3://b/k", "s3://b/i", "")
    line = render_cmdline(entry, "x1c0s0b0n0", 1, "JT", META)
    assert line.startswith("initrd=initrd quiet initrd=second xname=")


def test_s4_3_boot_script_shape_and_proc_cmdline(svc: Services) -> None:
    token = put(svc, [A]).headers["BSS-Referral-Token"]
    resp = svc.get("bss", "/bootscript", params={"name": A})
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    lines = resp.text.splitlines()
    s3 = svc.urls["s3"]
    assert lines[0] == "#!ipxe"
    assert lines[1].startswith(f"kernel --name kernel {s3}/boot-images/i/kernel initrd=initrd console=ttyS0,115200 ")
    assert lines[1].endswith(" || goto boot_retry")
    assert lines[2] == f"initrd --name initrd {s3}/boot-images/i/initrd || goto boot_retry"
    assert lines[3:7] == ["imgstat || echo Could not show image information.", "boot || goto boot_retry",
                          ":boot_retry", "sleep 30"]
    assert lines[7].startswith("chain ") and "retry=1" in lines[7]
    cmdline = cmdline_of_script(resp.text)
    # 7: artifact URLs become HTTP; parameters keep their s3:// form.
    assert "root=sbps-s3:s3://boot-images/i/rootfs:e" in cmdline
    words = cmdline.split()
    assert f"xname={A}" in words and "nid=1" in words and f"bss_referral_token={token}" in words
    assert re.fullmatch(r"spire_join_token=[0-9a-f-]{36}", words[2])
    assert words[-1].startswith("ds=nocloud-net;s=http://") and words[-1].endswith("/")


def test_s4_3_fresh_join_token_per_script(svc: Services) -> None:
    put(svc, [A])
    first = svc.get("bss", "/bootscript", params={"name": A}).text
    second = svc.get("bss", "/bootscript", params={"name": A}).text
    assert first != second


def test_s4_3_no_kernel_or_unknown_host_is_404(svc: Services) -> None:
    put(svc, [B], kernel="")
    problem_detail(svc.get("bss", "/bootscript", params={"name": B}), 404)
    problem_detail(svc.get("bss", "/bootscript", params={"name": "x9999c0s0b0n0"}), 404)


def test_s4_3_without_initrd_no_initrd_line() -> None:
    entry = BssEntry("quiet", "http://k", "", "")
    script = render_script(entry, render_cmdline(entry, "x1c0s0b0n0", 1, "j", META), "http://s3", "http://retry")
    assert "initrd" not in script


def steps_in_written_order(entry: BssEntry, xname: str, nid: Optional[int], join_token: str, meta: str) -> str:
    """services.md §4.3 steps 1-6 and 8 as written, one after the other (the reference for the
    simulator's rendering, which removes step 8's initrd word once per stored entry)."""
    line = entry.params
    given = {word.partition("=")[0] for word in line.split() if "=" in word}
    for key, word in (("xname", f"xname={xname}"), ("nid", None if nid is None else f"nid={nid}"),
                      ("bss_referral_token", f"bss_referral_token={entry.token}" if entry.token else None),
                      ("ds", f"ds=nocloud-net;s={meta}/")):
        if word is not None and key not in given:
            line = f"{line} {word}" if line else word
    line = line.replace("${SPIRE_JOIN_TOKEN}", join_token)
    if entry.initrd:
        line = "initrd=initrd " + re.sub(r"(^|\s)initrd\S*", "", line, count=1).strip()
    return line


WORDS = st.sampled_from(["initrd=a", "initrd", "initrdx=1", "xinitrd=2", "a=initrd", "xname=x1", "nid=7",
                         "ds=d", "bss_referral_token=t", "k=${SPIRE_JOIN_TOKEN}", "${SPIRE_JOIN_TOKEN}",
                         "initrd=${SPIRE_JOIN_TOKEN}", "quiet", "root=sbps-s3:s3://b/k", '"q=a b"', "=v"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDS, st.sampled_from([" ", "  ", "\t", "\n"])), max_size=8),
       st.sampled_from(["", " ", "\t"]), st.booleans(), st.booleans(), st.sampled_from([None, 0, 12]))
def test_s4_3_rendering_equals_the_steps_in_written_order(words, lead: str, initrd: bool, token: bool,
                                                          nid: Optional[int]) -> None:
    params = lead + "".join(word + space for word, space in words)
    entry = BssEntry(params, "s3://b/kernel", "s3://b/initrd" if initrd else "", "tok-1" if token else "")
    for join_token in (str(uuid.uuid4()), str(uuid.uuid4())):  # two nodes sharing the entry
        assert render_cmdline(entry, A, nid, join_token, META) == steps_in_written_order(entry, A, nid,
                                                                                         join_token, META)
