"""Session setup (operators.md §6): target state, patches, setup errors and isolation (D24, D30)."""

from __future__ import annotations

import json

import pytest

from bos_server.clients.bos import PatchInvariantError
from bos_server.clients.s3 import S3Error
from bos_server.operators.session_setup import SessionSetupOperator
from bos_server.operators.target import configuration_for

from .conftest import run
from .fakes import FakeServices, fail, node
from .helpers import component

IMG = "9e3c75e1-ac42-42c7-873c-e758048897d6"
MANIFEST_URL = f"s3://boot-images/{IMG}/manifest.json"
N = [f"x1000c0s{i}b0n0" for i in range(4)]


def manifest(rootfs: bool = True, params: bool = True) -> dict:
    arts = [{"type": "application/vnd.cray.image.kernel", "link": {"type": "s3", "path": f"s3://boot-images/{IMG}/kernel"}},
            {"type": "application/vnd.cray.image.initrd", "link": {"type": "s3", "path": f"s3://boot-images/{IMG}/initrd"}}]
    if rootfs:
        arts.append({"type": "application/vnd.cray.image.rootfs.squashfs",
                     "link": {"type": "s3", "path": f"s3://boot-images/{IMG}/rootfs", "etag": "e-1"}})
    if params:
        arts.append({"type": "application/vnd.cray.image.parameters.boot",
                     "link": {"type": "s3", "path": f"s3://boot-images/{IMG}/boot_parameters"}})
    return {"version": "1.0", "artifacts": arts}


class FakeS3:
    def __init__(self, objects: dict) -> None:
        self.objects = objects
        self.reads = []

    async def get(self, url: str, max_bytes=None) -> bytes:
        self.reads.append(url)
        if url not in self.objects:
            raise S3Error(f"Unable to read {url}: NoSuchKey")
        value = self.objects[url]
        return value if isinstance(value, bytes) else value.encode()


def s3(**overrides) -> FakeS3:
    objects = {MANIFEST_URL: json.dumps(manifest()),
               f"s3://boot-images/{IMG}/boot_parameters": "console=ttyS0 spire_join_token=${SPIRE_JOIN_TOKEN}"}
    objects.update(overrides)
    return FakeS3({k: v for k, v in objects.items() if v is not None})


def boot_set(**kw) -> dict:
    base = {"path": MANIFEST_URL, "type": "s3", "node_list": N[:2], "kernel_parameters": "quiet",
            "rootfs_provider": "sbps", "rootfs_provider_passthrough": "sbps:v1:x"}
    base.update(kw)
    return base


def session(name="s1", operation="boot", **kw) -> dict:
    base = {"name": name, "tenant": None, "operation": operation, "template_name": "t1", "limit": "",
            "stage": False, "components": "", "include_disabled": False,
            "status": {"start_time": "2025-01-13T15:00:00", "end_time": None, "status": "pending", "error": None}}
    base.update(kw)
    return base


def setup(sessions, template=None, templates=None, known=None, **kw):
    templates = templates or {(None, "t1"): template or {"name": "t1", "cfs": {"configuration": "cfg"},
                                                         "boot_sets": {"compute": boot_set()}}}
    svc = FakeServices(sessions=sessions, templates=templates, nodes=[node(x) for x in N],
                       components=[component(x, session="") for x in (known if known is not None else N)],
                       s3=kw.pop("s3", None) or s3(), **kw)
    return svc


def run_setup(make_ctx, svc, **options):
    run(SessionSetupOperator().run_pass(make_ctx(svc, **options)))


def patches(svc):
    return [p for c in svc.calls if c[0] == "bos.patch_components" for p in c[1]]


def test_boot_writes_desired_state_enables_and_marks_running(make_ctx):
    svc = setup([session()])
    run_setup(make_ctx, svc)
    written = patches(svc)
    assert [p["id"] for p in written] == N[:2]
    params = (f"console=ttyS0 spire_join_token=${{SPIRE_JOIN_TOKEN}} quiet root=sbps-s3:s3://boot-images/{IMG}/rootfs:e-1:"
              f"sbps:v1:x nmd_data=url=s3://boot-images/{IMG}/rootfs,etag=e-1 bos_update_frequency=4h")
    assert written[0] == {
        "id": N[0], "error": "", "session": "s1", "enabled": True,
        "desired_state": {"boot_artifacts": {"kernel": f"s3://boot-images/{IMG}/kernel", "kernel_parameters": params,
                                             "initrd": f"s3://boot-images/{IMG}/initrd"},
                          "configuration": "cfg"},
        "last_action": {"action": "session_setup", "failed": False}}
    assert svc.bos.session("s1", None)["status"]["status"] == "running"
    assert svc.bos.session("s1", None)["components"] == ",".join(N[:2])
    assert svc.s3.reads == [MANIFEST_URL, f"s3://boot-images/{IMG}/boot_parameters"]  # once per boot set


def test_reboot_clears_actual_state_boot_does_not(make_ctx):
    svc = setup([session(operation="reboot")])
    run_setup(make_ctx, svc)
    assert patches(svc)[0]["actual_state"] == {"boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""},
                                              "bss_token": ""}
    svc = setup([session(operation="boot")])
    run_setup(make_ctx, svc)
    assert "actual_state" not in patches(svc)[0]


def test_shutdown_needs_no_s3_and_writes_empty_desired_state(make_ctx):
    svc = setup([session(operation="shutdown")], s3=FakeS3({}))
    run_setup(make_ctx, svc)
    assert patches(svc)[0]["desired_state"] == {"configuration": "", "bss_token": "",
                                                "boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""}}
    assert svc.s3.reads == []


def test_staged_sessions_write_only_staged_state(make_ctx):
    svc = setup([session(stage=True)])
    run_setup(make_ctx, svc)
    patch = patches(svc)[0]
    assert set(patch) == {"id", "error", "staged_state"}
    assert patch["staged_state"]["session"] == "s1" and patch["staged_state"]["configuration"] == "cfg"
    assert svc.bos.session("s1", None)["status"]["status"] == "running"


def test_staged_shutdown_records_the_session(make_ctx):  # D24
    svc = setup([session(operation="shutdown", stage=True)])
    run_setup(make_ctx, svc)
    assert patches(svc)[0]["staged_state"] == {
        "boot_artifacts": {"kernel": "", "kernel_parameters": "", "initrd": ""}, "configuration": "", "session": "s1"}


def test_last_boot_set_wins(make_ctx):
    template = {"name": "t1", "boot_sets": {
        "a": boot_set(node_list=N[:3], cfs={"configuration": "A"}),
        "b": boot_set(node_list=N[1:2], cfs={"configuration": "B"})}}
    svc = setup([session()], template=template)
    run_setup(make_ctx, svc)
    by_id = {p["id"]: p["desired_state"]["configuration"] for p in patches(svc)}
    assert by_id == {N[0]: "A", N[1]: "B", N[2]: "A"}


def test_configuration_choice():
    assert configuration_for({"cfs": {"configuration": "t"}}, {}) == "t"
    assert configuration_for({"cfs": {"configuration": "t"}}, {"cfs": {"configuration": "b"}}) == "b"
    assert configuration_for({"cfs": {"configuration": "t"}}, {"cfs": {"configuration": ""}}) == "t"
    assert configuration_for({"enable_cfs": False, "cfs": {"configuration": "t"}}, {"cfs": {"configuration": "b"}}) == ""
    assert configuration_for({}, {}) == ""


def _completed_with(svc, name="s1"):
    record = svc.bos.session(name, None)
    assert record["status"]["status"] == "complete"
    assert record["status"]["end_time"]
    # PATCH complete, then POST status
    names = [c[0] for c in svc.calls if c[0] in ("bos.patch_session", "bos.save_session_status") and c[1] == name]
    assert names == ["bos.patch_session", "bos.save_session_status"]
    return record["status"]["error"]


def test_no_nodes_is_a_setup_error(make_ctx):
    svc = setup([session(limit="x9999c0s0b0n0")])
    run_setup(make_ctx, svc)
    assert _completed_with(svc) == "No nodes were found to act upon."
    assert patches(svc) == []


@pytest.mark.parametrize("limit", [",", "&", "!", " , "])
def test_a_limit_of_only_separators_is_no_nodes_not_all_nodes(make_ctx, limit):  # D21: fails closed
    svc = setup([session(limit=limit)])
    run_setup(make_ctx, svc)
    assert _completed_with(svc) == "No nodes were found to act upon."
    assert patches(svc) == []


def test_unknown_to_bos_are_dropped(make_ctx):
    svc = setup([session()], known=[N[1]])
    run_setup(make_ctx, svc)
    assert svc.bos.session("s1", None)["components"] == N[1]


def test_all_unknown_to_bos_is_a_setup_error(make_ctx):
    svc = setup([session()], known=[])
    run_setup(make_ctx, svc)
    assert _completed_with(svc) == "All nodes found to act upon do not exist as BOS components"


def test_missing_template_completes_with_error(make_ctx):
    svc = setup([session(template_name="nope")])
    run_setup(make_ctx, svc)
    assert "nope" in _completed_with(svc)


@pytest.mark.parametrize("objects,fragment", [
    ({MANIFEST_URL: None}, "NoSuchKey"),
    ({MANIFEST_URL: "[1, 2]"}, "not a JSON object"),
    ({MANIFEST_URL: json.dumps(manifest(rootfs=False))}, "rootfs.squashfs"),
    ({f"s3://boot-images/{IMG}/boot_parameters": b"\xff\xfe"}, "boot parameters"),
])
def test_artifact_problems_complete_the_session(make_ctx, objects, fragment):
    svc = setup([session()], s3=s3(**objects))
    run_setup(make_ctx, svc)
    error = _completed_with(svc)
    assert fragment in error and "\n" not in error


def test_unsupported_provider_message(make_ctx):
    template = {"name": "t1", "boot_sets": {"compute": boot_set(rootfs_provider="cpss3")}}
    svc = setup([session()], template=template)
    run_setup(make_ctx, svc)
    assert _completed_with(svc).startswith("Unsupported rootfs_provider ('cpss3') specified in boot set")


def test_bos_unavailable_leaves_session_pending_and_continues(make_ctx):  # D30
    svc = setup([session("s1"), session("s2")])
    svc.bos.fail_template = fail("bos", 503)
    run_setup(make_ctx, svc)
    assert svc.bos.session("s1", None)["status"]["status"] == "pending"
    assert svc.bos.session("s2", None)["status"]["status"] == "pending"
    assert [c[1] for c in svc.calls if c[0] == "bos.get_template"] == ["t1", "t1"]
    svc.bos.fail_template = None
    run_setup(make_ctx, svc)
    assert svc.bos.session("s1", None)["status"]["status"] == "running"


def test_bos_unavailable_while_patching_components_leaves_pending(make_ctx):  # D30
    svc = setup([session()])
    svc.bos.fail_patch = fail("bos", 503)
    run_setup(make_ctx, svc)
    assert svc.bos.session("s1", None)["status"]["status"] == "pending"


def test_hsm_failure_completes_with_error(make_ctx):
    svc = setup([session()])
    svc.hsm.fail = fail("hsm", 500)
    run_setup(make_ctx, svc)
    assert "hsm" in _completed_with(svc)


def test_patch_invariant_is_enforced():
    svc = FakeServices()
    with pytest.raises(PatchInvariantError):
        run(svc.bos.patch_components([{"id": "x", "desired_state": {"bss_token": "t"}}]))


def test_a_setup_redone_after_a_replica_stopped_half_way_leaves_what_it_wrote_alone(make_ctx):
    """A replica killed after writing some of a session's components, before marking it running:
    the status operator may already have powered those on. The replica that sets the session up
    again must not set them up anew (a second power cycle for one session: docs/ha.md §4); the
    others are written, and all are the session's components."""
    svc = setup([session()])
    run_setup(make_ctx, svc)  # the first setup: both nodes written
    assert sorted(p["id"] for p in patches(svc)) == N[:2]
    svc.bos.components[N[0]]["last_action"] = {"action": "powering_on", "failed": False}  # acted on
    svc.bos.components[N[1]]["session"] = ""  # as if the first setup stopped before this one
    svc.bos.sessions[0]["status"]["status"] = "pending"  # never marked running
    svc.calls.clear()
    run_setup(make_ctx, svc)
    assert [p["id"] for p in patches(svc)] == [N[1]]
    assert svc.bos.components[N[0]]["last_action"]["action"] == "powering_on"
    assert svc.bos.sessions[0]["status"]["status"] == "running"


def test_a_session_created_again_under_the_same_name_is_set_up_in_full(make_ctx):
    """The begun note is of one session (its start time): a session deleted and created again
    under the same name is not a redo, and every component is written for it."""
    svc = setup([session()])
    run_setup(make_ctx, svc)
    svc.bos.sessions[0]["status"].update(status="pending", start_time="2025-01-13T16:00:00")
    svc.calls.clear()
    run_setup(make_ctx, svc)
    assert sorted(p["id"] for p in patches(svc)) == N[:2]
