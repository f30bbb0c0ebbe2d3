"""`bos sessiontemplates ...` against the real API."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support.client import Api

from .conftest import MANIFEST, NODES, Runner, put_template


def test_list_shows_a_table_and_json_is_the_apis_own(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    put_template(api, "uan", nodes=["x3000c0s9b0n0"])
    table = bos("sessiontemplates", "list")
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:3] == ["NAME", "TENANT", "BOOT"]
    assert [r.split()[0] for r in rows] == ["compute", "uan"]
    assert "list:" + ",".join(NODES) in rows[0]
    as_json = bos("sessiontemplates", "list", "--format", "json")
    assert as_json.json() == api.get("/v2/sessiontemplates").json()


def test_list_says_so_when_there_are_none(bos: Runner) -> None:
    assert bos("sessiontemplates", "list").out.strip() == "No session templates."
    assert bos("sessiontemplates", "list", "--format", "json").json() == []


def test_describe_shows_dotted_fields_and_yaml_matches_the_api(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessiontemplates", "describe", "compute")
    assert result.code == 0
    assert "boot_sets.compute.path" in result.out
    assert MANIFEST in result.out
    as_yaml = bos("sessiontemplates", "describe", "compute", "--format", "yaml")
    assert yaml.safe_load(as_yaml.out) == api.get("/v2/sessiontemplates/compute").json()


def test_create_from_a_yaml_file(bos: Runner, api: Api, tmp_path: Path) -> None:
    doc = {"description": "from yaml", "enable_cfs": False,
           "boot_sets": {"uan": {"path": "s3://boot-images/x/manifest.json", "type": "s3",
                                 "node_roles_groups": ["Application"]}}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = bos("sessiontemplates", "create", "uan-tpl", "--file", str(path), "--format", "json")
    assert result.code == 0, result.err
    stored = api.get("/v2/sessiontemplates/uan-tpl").json()
    assert result.json() == stored
    assert stored["boot_sets"]["uan"]["node_roles_groups"] == ["Application"]
    assert stored["enable_cfs"] is False


def test_create_from_flags_alone(bos: Runner, api: Api) -> None:
    result = bos("sessiontemplates", "create", "flags", "--description", "by flags",
                 "--path", "s3://boot-images/i/manifest.json", "--node-list", "x1c0s1b0n0,x1c0s2b0n0",
                 "--node-groups", "blue", "green", "--cfs-configuration", "cfg", "--enable-cfs", "true")
    assert result.code == 0, result.err
    assert "Session template 'flags' saved." in result.out
    stored = api.get("/v2/sessiontemplates/flags").json()
    assert stored["boot_sets"]["compute"] == {"path": "s3://boot-images/i/manifest.json", "type": "s3",
                                              "node_list": ["x1c0s1b0n0", "x1c0s2b0n0"],
                                              "node_groups": ["blue", "green"], "arch": "X86"}
    assert stored["cfs"] == {"configuration": "cfg"} and stored["enable_cfs"] is True


def test_flags_override_the_file(bos: Runner, api: Api, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"description": "old", "boot_sets": {"compute": {
        "path": "s3://a/manifest.json", "type": "s3", "node_list": ["x1c0s1b0n0"]}}}))
    result = bos("sessiontemplates", "create", "t", "--file", str(path), "--description", "new",
                 "--kernel-parameters", "quiet")
    assert result.code == 0, result.err
    stored = api.get("/v2/sessiontemplates/t").json()
    assert stored["description"] == "new"
    assert stored["boot_sets"]["compute"]["kernel_parameters"] == "quiet"
    assert stored["boot_sets"]["compute"]["node_list"] == ["x1c0s1b0n0"]


def test_update_patches_only_the_given_fields(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessiontemplates", "update", "compute", "--description", "changed",
                 "--boot-set", "compute", "--kernel-parameters", "console=ttyS0")
    assert result.code == 0, result.err
    stored = api.get("/v2/sessiontemplates/compute").json()
    assert stored["description"] == "changed"
    assert stored["boot_sets"]["compute"]["kernel_parameters"] == "console=ttyS0"
    assert stored["boot_sets"]["compute"]["node_list"] == NODES


def test_update_without_changes_is_a_usage_error(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessiontemplates", "update", "compute")
    assert result.code == 2
    assert "nothing to update" in result.err


def test_create_refused_by_the_api_prints_title_and_detail(bos: Runner) -> None:
    result = bos("sessiontemplates", "create", "bad", "--path", "s3://a/m.json")
    assert result.code == 1
    assert result.out == ""
    line = result.err.strip()
    assert "\n" not in line
    assert line.startswith("bos: error: Bad Request: The session template could not be created:")
    assert "No hardware specifier" in line and line.endswith("(HTTP 400)")


def test_delete_then_describe_reports_not_found(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    deleted = bos("sessiontemplates", "delete", "compute")
    assert deleted.code == 0 and "deleted" in deleted.out
    missing = bos("sessiontemplates", "describe", "compute")
    assert missing.code == 1
    assert missing.err.strip() == ("bos: error: The resource was not found: "
                                   "Session template 'compute' does not exist (HTTP 404)")


def test_delete_in_json_mode_prints_nothing_like_the_api(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessiontemplates", "delete", "compute", "--format", "json")
    assert (result.code, result.out) == (0, "")


def test_validate_prints_the_apis_verdict(bos: Runner, api: Api) -> None:
    put_template(api, "compute")
    result = bos("sessiontemplates", "validate", "compute")
    assert (result.code, result.out.strip()) == (0, "compute: Valid")
    assert bos("sessiontemplates", "validate", "compute", "--format", "json").json() == "Valid"


def test_validate_shows_the_first_error_of_a_broken_template(bos: Runner, api: Api) -> None:
    bos("sessiontemplates", "create", "broken", "--path", "s3://boot-images/nothing/manifest.json",
        "--node-list", NODES[0])
    result = bos("sessiontemplates", "validate", "broken")
    assert result.code == 0
    assert result.out.startswith("broken: Session template: 'broken' boot set: 'compute': Can't find boot artifacts.")


def test_template_prints_the_example_as_json_even_in_table_mode(bos: Runner, api: Api) -> None:
    result = bos("sessiontemplates", "template")
    assert result.code == 0
    assert json.loads(result.out) == api.get("/v2/sessiontemplatetemplate").json()


def test_a_long_node_list_is_summarised_in_tables(bos: Runner, api: Api) -> None:
    nodes = [f"x1000c0s{i}b0n0" for i in range(40)]
    put_template(api, "big", nodes=nodes)
    listing = bos("sessiontemplates", "list")
    assert "list:40 nodes" in listing.out
    described = bos("sessiontemplates", "describe", "big")
    assert "(40 total)" in described.out


def test_unreadable_file_is_a_usage_error(bos: Runner, tmp_path: Path) -> None:
    result = bos("sessiontemplates", "create", "t", "--file", str(tmp_path / "missing.json"))
    assert result.code == 2
    assert "cannot read" in result.err
    bad = tmp_path / "bad.json"
    bad.write_text("{not: [valid")
    result = bos("sessiontemplates", "create", "t", "--file", str(bad))
    assert result.code == 2 and "neither valid JSON nor valid YAML" in result.err
